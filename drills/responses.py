"""Scripted mode: a file of recorded responses replayed on the exercise clock.

The file is a JSON list (`[]`: nobody responds), or an object with `participants` and `responses`. Each
response happens at an exercise-clock offset and is one of: an action against an expectation, a decision,
a note, or a facilitator's early release of an inject. The clock advances to each response in order
(releasing injects due on the way), then to the end of the exercise.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from drills.engine import DrillError, Engine
from drills.scenario import Offset
from soc.core.drill_records import Participant
from soc.core.errors import ProblemsError
from soc.core.errors import problems as validation_problems

MAX_RESPONSES = 10_000


class Response(BaseModel):
    """One recorded response."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: Offset
    expectation: str | None = None
    role: str | None = None
    participant: str | None = None
    quality: Literal["full", "partial"] = "full"
    decision: str | None = None
    option: str | None = None
    note: str | None = Field(default=None, max_length=4_000)
    release: str | None = None
    actor: str = "script"


class ResponsesFile(BaseModel):
    """The object form of a responses file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    participants: list[Participant] = []
    responses: list[Response] = Field(default_factory=list, max_length=MAX_RESPONSES)


class ResponsesError(ProblemsError):
    """A responses file that cannot be replayed (every problem listed with its index)."""


def read_responses(path: Path) -> ResponsesFile:
    """Parse and check a responses file; ResponsesError lists every problem as `FILE: [i].field: message`."""
    source = str(path)
    try:
        data: Any = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise ResponsesError([f"{source}: cannot be read ({exc})"]) from None
    except json.JSONDecodeError as exc:
        raise ResponsesError([f"{source}:{exc.lineno}: not valid JSON ({exc.msg})"]) from None
    if isinstance(data, list):
        data = {"responses": data}
    try:
        parsed = ResponsesFile.model_validate(data)
    except ValidationError as exc:
        raise ResponsesError(validation_problems(source, exc)) from None
    problems = []
    for index, item in enumerate(parsed.responses):
        kinds = [item.expectation is not None, item.decision is not None, item.release is not None,
                 item.note is not None and item.expectation is None]
        if sum(kinds) != 1:
            problems.append(f"{source}: responses[{index}]: give one of 'expectation' (with 'role'), 'decision' "
                            f"(with 'option'), 'release' or 'note'")
        elif item.expectation is not None and item.role is None:
            problems.append(f"{source}: responses[{index}].role: an action needs the role that took it")
        elif item.decision is not None and item.option is None:
            problems.append(f"{source}: responses[{index}].option: a decision needs the option chosen")
    if problems:
        raise ResponsesError(problems)
    return parsed


def replay_responses(engine: Engine, responses: Sequence[Response], real: datetime, facilitator: str) -> None:
    """Start the session, play every response at its time, and end the exercise at its full duration.

    A response the engine refuses (an expectation of a branch not taken, a decision not open yet) stops the
    replay with DrillError naming the response's index."""
    engine.start(real, facilitator)
    for index, item in enumerate(sorted(responses, key=lambda r: r.at)):
        try:
            engine.advance(item.at, real, facilitator)
            if item.expectation is not None and item.role is not None:
                engine.act(item.expectation, item.role, real, item.actor, participant=item.participant,
                           quality=item.quality, note=item.note or "")
            elif item.decision is not None and item.option is not None:
                engine.decide(item.decision, item.option, real, item.actor)
            elif item.release is not None:
                engine.release(item.release, real, facilitator)
            elif item.note is not None:
                engine.note(item.note, real, item.actor)
        except DrillError as exc:
            raise DrillError(f"responses[{index}] (at {item.at}): {exc}") from None
    engine.end(real, facilitator, at=engine.state.scenario.duration)
