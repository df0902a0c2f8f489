"""What every public document shares: the version field and its JSON form."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict


class Document(BaseModel):
    """A versioned public document; subclasses declare `schema_` (JSON: "schema") as their first field."""

    model_config = ConfigDict(populate_by_name=True)

    def to_json(self) -> dict[str, Any]:
        """The documented JSON shape."""
        return self.model_dump(mode="json", by_alias=True)
