"""Finding rules shared by every store backend: the lifecycle (pure)."""
