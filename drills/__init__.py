"""Tabletop incident-response drills (engine arrives with its issue)."""
