"""Writing files so that a reader never sees half of one: write beside it, flush, then rename over it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any


def atomic_write(path: Path, write: Callable[[Path], object], suffix: str = ".tmp", new_mode: int = 0o600) -> None:
    """Call `write(tmp)` on a temporary file in `path`'s folder, make it durable, then rename it to `path`.

    The target keeps its permissions; a new file gets `new_mode` (owner-only by default: reports carry
    text from scanned servers and the inventory's addresses). A failure or a kill leaves `path` as it was
    and the temporary file is removed where it can be. `suffix` matters to writers that go by the extension.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.chmod(tmp, path.stat().st_mode & 0o777 if path.exists() else new_mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 text atomically."""

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)


def atomic_write_json(path: Path, document: Any, indent: int = 2) -> None:
    """Write a JSON document (UTF-8, non-ASCII kept) atomically, with a final newline."""
    atomic_write_text(path, json.dumps(document, ensure_ascii=False, indent=indent) + "\n")
