"""The REST API (`soc serve`): FastAPI routes that parse, authorise, call a service and answer a schema."""

from soc.api.app import create_app

__all__ = ["create_app"]
