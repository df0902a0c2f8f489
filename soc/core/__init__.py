"""The core: models, observations, settings, errors, clock, text — no I/O, imported by everything."""
