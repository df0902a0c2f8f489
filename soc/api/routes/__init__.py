"""The API's routers, one module per resource (each defines `router`)."""
