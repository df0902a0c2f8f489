"""The public JSON contracts: the documented examples are valid documents of their models, carry exactly
the models' fields, and the generated JSON Schemas in docs/schemas/ are current."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from soc.schemas import PUBLIC_SCHEMAS
from soc.schemas.__main__ import schema_text

DOCS = Path(__file__).resolve().parents[2] / "docs"
EXAMPLES = {"json-output.md": ("soc.scan", "soc.findings", "soc.diff"), "compliance.md": ("soc.compliance",)}


def strip_comments(text: str) -> str:
    """JSON with `// …` comments (as the docs show it) → JSON; '//' inside strings is kept."""
    out, in_string, escaped, i = [], False, False, 0
    while i < len(text):
        char = text[i]
        if in_string:
            out.append(char)
            in_string = not (char == '"' and not escaped)
            escaped = char == "\\" and not escaped
        elif char == '"':
            in_string = True
            out.append(char)
        elif text.startswith("//", i):
            while i < len(text) and text[i] != "\n":
                i += 1
            continue
        else:
            out.append(char)
        i += 1
    return "".join(out)


def documented_examples() -> dict[str, dict[str, Any]]:
    """Schema name → the example document of the docs."""
    found: dict[str, dict[str, Any]] = {}
    for page in EXAMPLES:
        for block in re.findall(r"```json\n(.*?)```", (DOCS / page).read_text(encoding="utf-8"), re.DOTALL):
            document = json.loads(strip_comments(block))
            found[document["schema"].split("/")[0]] = document
    return found


def key_paths(value: Any, prefix: str = "") -> set[str]:
    """Every key path of a JSON value ('portals[].findings[].check_id'), list items merged."""
    if isinstance(value, dict):
        return {p for key, item in value.items() for p in {f"{prefix}{key}"} | key_paths(item, f"{prefix}{key}.")}
    if isinstance(value, list):
        return {p for item in value for p in key_paths(item, prefix.rstrip(".") + "[].")}
    return set()


def test_every_public_document_has_a_documented_example() -> None:
    assert set(documented_examples()) == set(PUBLIC_SCHEMAS)


@pytest.mark.parametrize("name", sorted(PUBLIC_SCHEMAS))
def test_documented_example_is_a_valid_document_with_exactly_the_models_fields(name: str) -> None:
    example = documented_examples()[name]
    model: type[BaseModel] = PUBLIC_SCHEMAS[name]
    document = model.model_validate(example)
    assert example["schema"] == model.model_fields["schema_"].default
    dumped = document.model_dump(mode="json", by_alias=True)
    assert key_paths(example) == key_paths(dumped), f"docs and {model.__name__} disagree"


@pytest.mark.parametrize("name", sorted(PUBLIC_SCHEMAS))
def test_generated_json_schemas_are_current(name: str) -> None:
    written = (DOCS / "schemas" / f"{name}.schema.json").read_text(encoding="utf-8")
    assert written == schema_text(name), "run `.venv/bin/python -m soc.schemas` and commit docs/schemas/"


def test_a_document_without_its_version_is_refused() -> None:
    example = dict(documented_examples()["soc.diff"])
    example["schema"] = "soc.diff/2"
    with pytest.raises(ValueError, match=r"soc\.diff/1"):
        PUBLIC_SCHEMAS["soc.diff"].model_validate(example)
