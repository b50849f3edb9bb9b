"""Search: run a query on the configured backend and hydrate the page; the keyword vocabulary."""

from dataclasses import dataclass

from django.db import connection, transaction

from listings import selectors as listing_selectors
from search.backends import get_backend
from search.query import SearchQuery, SearchResult


@dataclass
class SearchPage:
    query: SearchQuery
    result: SearchResult
    listings: list  # in result order, with details prefetched

    @property
    def total(self):
        return self.result.total


def search(query: SearchQuery, *, backend=None) -> SearchPage:
    result = (backend or get_backend()).search(query)
    found = listing_selectors.with_details(listing_selectors.listings_listed_for(None)).in_bulk(result.ids)
    return SearchPage(query=query, result=result, listings=[found[pk] for pk in result.ids if pk in found])


VOCABULARY_SQL = """
    INSERT INTO search_searchterm (word)
    SELECT DISTINCT word FROM (
        SELECT regexp_split_to_table(lower(concat_ws(' ', title, city, region, street, description,
               replace(array_to_string(features, ' '), '-', ' '))), '[^[:alpha:]]+') AS word
          FROM listings_listing WHERE status = 'active' {only}
    ) words
    WHERE char_length(word) BETWEEN 3 AND 64
    ON CONFLICT (word) DO NOTHING
"""


def vocabulary_refresh(*, listing_ids=None):
    """Add the words of active listings (all, or these) to the keyword vocabulary.

    Words are only added: a word that left every listing costs nothing (it matches none).
    """
    only, params = ("AND id = ANY(%s)", [list(listing_ids)]) if listing_ids is not None else ("", [])
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(VOCABULARY_SQL.format(only=only), params)
        return cursor.rowcount
