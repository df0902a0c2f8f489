"""`python -m soc.schemas [DIR]`: write the public JSON Schemas (default docs/schemas/)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from soc.core.files import atomic_write_text
from soc.schemas import PUBLIC_SCHEMAS


def schema_text(name: str) -> str:
    """The JSON Schema of one public document, as written to docs/schemas/."""
    model = PUBLIC_SCHEMAS[name]
    return json.dumps(model.model_json_schema(by_alias=True, mode="serialization"), ensure_ascii=False,
                      indent=2, sort_keys=True) + "\n"


def main(directory: Path) -> None:
    """Write every schema file."""
    for name in PUBLIC_SCHEMAS:
        atomic_write_text(directory / f"{name}.schema.json", schema_text(name))


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/schemas"))
