"""Report builders and templates (arrive with the reporting issue)."""
