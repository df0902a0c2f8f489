"""Core of the Đồng Nai SOC toolkit: settings, models, inventory, store, pipeline, CLI."""
