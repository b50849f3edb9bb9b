"""Saved-search alerts (filled in by the saved searches work)."""
