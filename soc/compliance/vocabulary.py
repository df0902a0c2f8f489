"""The words of the agencies' spreadsheets (column headers and values) as data: `vocabulary.yaml`, extended
by the SOC's own file (SOC_VOCABULARY_FILE) without a code change. An extension only adds words.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Annotated, Final, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from soc.compliance.models import (
    ApprovalStatus,
    CoverageRecord,
    Environment,
    ProtectionLayers,
    RequirementStatus,
    SystemRecord,
)
from soc.core.errors import ProblemsError
from soc.core.safe_yaml import load_yaml

BASE_PATH: Final = Path(__file__).with_name("vocabulary.yaml")
Sheet = Literal["systems", "coverage"]
ValueKind = Literal["status", "environment", "requirements", "bool"]
MAX_FILE_BYTES: Final = 1024 * 1024

Word = Annotated[str, Field(min_length=1, max_length=200)]


def fold(text: str) -> str:
    """Fold case, diacritics (đ→d), punctuation, spacing and a trailing '(*)', for tolerant matching."""
    text = re.sub(r"\(\s*\*\s*\)\s*$", "", text.strip()).replace("đ", "d").replace("Đ", "D")
    decomposed = unicodedata.normalize("NFD", text)
    bare = "".join(char for char in decomposed if not unicodedata.combining(char))
    return " ".join(re.sub(r"[\W_]+", " ", bare.casefold()).split())


class VocabularyError(ProblemsError):
    """A vocabulary file cannot be used; every problem names the file and the place in it."""


class Words(BaseModel):
    """The words for one column or value; the first Vietnamese (English) one is the one written out."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    vi: tuple[Word, ...] = ()
    en: tuple[Word, ...] = ()

    def plus(self, other: Words) -> Words:
        """These words, then the other's that are new."""
        return Words(vi=self.vi + tuple(w for w in other.vi if w not in self.vi),
                     en=self.en + tuple(w for w in other.en if w not in self.en))


def _fields(model: type[BaseModel]) -> set[str]:
    """Record fields a column can fill ('layers.<field>' for the protection layers)."""
    names = set(model.model_fields) - {"layers"}
    if "layers" in model.model_fields:
        names |= {f"layers.{name}" for name in ProtectionLayers.model_fields}
    return names


COLUMN_FIELDS: Final[Mapping[str, set[str]]] = {"systems": _fields(SystemRecord), "coverage": _fields(CoverageRecord)}
VALUE_CHOICES: Final[Mapping[str, set[str]]] = {
    "status": {s.value for s in ApprovalStatus},
    "environment": {e.value for e in Environment},
    "requirements": {r.value for r in RequirementStatus},
    "bool": {"true", "false"},
}


class VocabularyFile(BaseModel):
    """The shape of `vocabulary.yaml` and of an extension file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: dict[str, dict[str, Words]] = Field(default_factory=dict)
    values: dict[str, dict[str, Words]] = Field(default_factory=dict)
    ignored_headers: tuple[Word, ...] = ()

    @model_validator(mode="after")
    def _known_keys(self) -> VocabularyFile:
        problems = []
        for section, known in (("columns", COLUMN_FIELDS), ("values", VALUE_CHOICES)):
            table: dict[str, dict[str, Words]] = getattr(self, section)
            for group, entries in table.items():
                if group not in known:
                    problems.append(f"{section}.{group}: not one of {', '.join(sorted(known))}")
                    continue
                allowed = known[group]
                problems += [f"{section}.{group}.{key}: not one of {', '.join(sorted(allowed))}"
                             for key in entries if key not in allowed]
        if problems:
            raise ValueError("; ".join(problems))
        return self


@dataclass(frozen=True)
class Vocabulary:
    """Every accepted header and value word, base and extension merged."""

    columns: Mapping[str, Mapping[str, Words]]
    values: Mapping[str, Mapping[str, Words]]
    ignored_headers: tuple[str, ...]
    sources: tuple[str, ...]

    def column(self, sheet: Sheet, key: str) -> Words:
        """The header words of one column (empty when the vocabulary has none)."""
        return self.columns.get(sheet, {}).get(key, Words())

    def value(self, kind: ValueKind, choice: str) -> Words:
        """The words of one value."""
        return self.values.get(kind, {}).get(choice, Words())


def _read(path: Path) -> VocabularyFile:
    try:
        if path.stat().st_size > MAX_FILE_BYTES:
            raise VocabularyError([f"{path}: larger than {MAX_FILE_BYTES // 1024} KiB; not a vocabulary file"])
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise VocabularyError([f"{path}: cannot be read ({exc.strerror or exc})"]) from None
    except UnicodeDecodeError:
        raise VocabularyError([f"{path}: not UTF-8 text"]) from None
    except yaml.YAMLError as exc:
        raise VocabularyError([f"{path}: not valid YAML ({exc})"]) from None
    try:
        return VocabularyFile.model_validate(raw if raw is not None else {})
    except ValidationError as exc:
        raise VocabularyError([f"{path}: {'.'.join(str(p) for p in error['loc']) or 'top level'}: {error['msg']}"
                               for error in exc.errors()]) from None


def _merge(base: VocabularyFile, extra: VocabularyFile) -> VocabularyFile:
    def tables(one: dict[str, dict[str, Words]], two: dict[str, dict[str, Words]]) -> dict[str, dict[str, Words]]:
        result = {group: dict(entries) for group, entries in one.items()}
        for group, entries in two.items():
            for key, words in entries.items():
                result.setdefault(group, {})[key] = result.get(group, {}).get(key, Words()).plus(words)
        return result

    return VocabularyFile(columns=tables(base.columns, extra.columns), values=tables(base.values, extra.values),
                          ignored_headers=base.ignored_headers + tuple(w for w in extra.ignored_headers
                                                                       if w not in base.ignored_headers))


def _ambiguities(data: VocabularyFile) -> list[str]:
    """Words that, folded, would mean two columns of one sheet or two values of one kind."""
    problems = []
    for section, table in (("columns", data.columns), ("values", data.values)):
        for group, entries in table.items():
            meaning: dict[str, str] = {}
            for key, words in entries.items():
                for word in (*words.vi, *words.en):
                    other = meaning.setdefault(fold(word), key)
                    if other != key:
                        problems.append(f"{section}.{group}: '{word}' would mean both '{other}' and '{key}' "
                                        "(words are compared without case, diacritics and punctuation)")
    return problems


@cache
def _base() -> VocabularyFile:
    base = _read(BASE_PATH)
    problems = _ambiguities(base)
    if problems:
        raise VocabularyError([f"{BASE_PATH}: {problem}" for problem in problems])
    return base


def load_vocabulary(extension: Path | None = None) -> Vocabulary:
    """The base vocabulary, plus the words of `extension` when given (VocabularyError names every problem)."""
    data, sources = _base(), [BASE_PATH.name]
    if extension is not None:
        data = _merge(data, _read(extension))
        sources.append(str(extension))
        problems = _ambiguities(data)
        if problems:
            raise VocabularyError([f"{extension}: {problem}" for problem in problems])
    return Vocabulary(data.columns, data.values, data.ignored_headers, tuple(sources))


BASE_VOCABULARY: Final = load_vocabulary()
