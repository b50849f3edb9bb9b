"""Keeping search current after listing changes (filled in by the search indexing work)."""
