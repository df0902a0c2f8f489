"""The use cases, one function each, shared by every entry point (CLI now; API, web, scheduler next).

Each takes a `ServiceContext` (settings, store backend, clock, acting user) and is the only place
that writes the audit log. Front ends parse input, call a service and render what it returns.
"""
