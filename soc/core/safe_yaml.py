"""YAML written by people (inventories, vocabulary extensions) parsed so that every failure is a YAML error.

`yaml.safe_load` fails in two ways no caller expects. Its composer recurses once per nesting level, so a
document nested 100,000 deep (`[[[[…`, 200 KB) raises RecursionError; and a scalar that resolves to a
value Python refuses (the date 2024-02-30, an integer of more than 4,300 digits) raises ValueError. Both
are tracebacks instead of a message. `load_yaml` refuses nesting past `MAX_DEPTH` and turns a refused
value into a `yaml.MarkedYAMLError` with its line, so each caller's `except yaml.YAMLError` names the file.
"""

from __future__ import annotations

from typing import Any, Final

import yaml
from yaml.constructor import ConstructorError
from yaml.nodes import Node

MAX_DEPTH: Final = 64
"""Nesting levels a document may have (an inventory has four or five); far below Python's recursion limit."""


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's safe loader with a nesting limit and value errors reported where they are."""

    depth = 0

    def compose_node(self, parent: Node | None, index: int) -> Node | None:
        if self.depth >= MAX_DEPTH:
            raise ConstructorError(None, None, f"nested more than {MAX_DEPTH} levels deep; a file of settings "
                                   "needs a few", self.get_mark())
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except ValueError as exc:  # e.g. "day is out of range for month", "Exceeds the limit (4300 digits)"
            text = str(node.value)
            shown = text if len(text) <= 40 else text[:40] + "…"
            raise ConstructorError(None, None, f"'{shown}' cannot be read: {exc}", node.start_mark) from None


def load_yaml(text: str) -> Any:
    """The document in `text`, like `yaml.safe_load`; any problem is a `yaml.YAMLError` (most with a line)."""
    loader = _BoundedLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


__all__ = ["MAX_DEPTH", "load_yaml"]
