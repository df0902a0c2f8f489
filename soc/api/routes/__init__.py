"""The API's routers, one module per resource."""

from __future__ import annotations

from fastapi import APIRouter


def EXTRA_ROUTERS() -> list[APIRouter]:
    """The routers of portals, runs, the register, jobs and exports (each module has `router`)."""
    import importlib

    routers = []
    for name in ("portals", "runs", "register", "jobs", "exports"):
        try:
            module = importlib.import_module(f"soc.api.routes.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"soc.api.routes.{name}":
                raise
            continue
        routers.append(module.router)
    return routers
