"""Public contracts: the JSON the CLI prints and the API will serve, as versioned pydantic models.

Each document carries `"schema": "<name>/<version>"`; within a version fields are only ever added.
`python -m soc.schemas` writes their JSON Schemas into docs/schemas/ (a test keeps them current).
"""

from __future__ import annotations

from pydantic import BaseModel

from soc.schemas.compliance import ComplianceOutput
from soc.schemas.findings import DiffOutput, FindingsOutput
from soc.schemas.scan import ScanOutput

PUBLIC_SCHEMAS: dict[str, type[BaseModel]] = {
    "soc.scan": ScanOutput,
    "soc.findings": FindingsOutput,
    "soc.diff": DiffOutput,
    "soc.compliance": ComplianceOutput,
}
"""Document name → model; the file in docs/schemas/ is `<name>.schema.json`."""

__all__ = ["PUBLIC_SCHEMAS", "ComplianceOutput", "DiffOutput", "FindingsOutput", "ScanOutput"]
