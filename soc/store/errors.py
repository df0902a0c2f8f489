"""The store's one error type: the store named by the settings cannot be used, and what to do about it."""

from __future__ import annotations

from soc.core.errors import InputError


class StoreError(InputError):
    """The store cannot be used (unknown backend, read-only, damaged, not creatable); the message names the
    location, what is wrong and what to do. Front ends show it like any bad input (the CLI exits 2)."""
