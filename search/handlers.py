"""Search's reactions to listing events: the index and vocabulary (search/indexing.py) and
saved-search alerts (search/alerts.py). Importing them registers their handlers."""

from search import alerts, indexing  # noqa: F401
