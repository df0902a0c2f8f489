"""Bilingual text: Vietnamese first, English second."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]


class Text(BaseModel):
    """A text in Vietnamese (first) and English (second); neither may be empty."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vi: NonEmpty
    en: NonEmpty

