"""Turning pydantic validation errors into messages that name the file, the entry and the field."""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import ValidationError


class InputError(ValueError):
    """Input that cannot be acted on; the message names what is wrong. Front ends show it (CLI: exit 2)."""


class ProblemsError(InputError):
    """Input that cannot be used; `problems` lists every problem, each naming file, entry and field."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def location(loc: tuple[int | str, ...]) -> str:
    """('portals', 3, 'url') → 'portals[3].url'."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def problems(source: str, error: ValidationError) -> list[str]:
    """One line per problem: 'inventory.yaml: portals[3].url: not a valid https URL'.

    A model-level validator reports several problems in one message, joined by '; ' and each
    starting with its field: they are split back into lines.
    """
    lines = []
    for item in error.errors():
        message = str(item["msg"]).removeprefix("Value error, ")
        where = location(tuple(item["loc"]))
        if not where and "; " in message:
            lines += [f"{source}: {part}" for part in message.split("; ")]
        else:
            lines.append(f"{source}: {where}: {message}" if where else f"{source}: {message}")
    return lines
