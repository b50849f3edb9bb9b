"""Reads on saved searches: a person's own, and the reverse query — which searches a listing matches."""

from django.db.models import BooleanField, Q, QuerySet
from django.db.models.expressions import RawSQL

from search.models import SavedSearch

# The exact location tests, evaluated only on the searches that passed the indexed filters.
# `area` is a slightly generous polygon (a circle is stored as a polygon around it, a box with
# its edges following the parallels); these replay the search backend's own tests
# (search/backends/postgres.py) from the canonical parameters, so an alert fires for exactly
# the listings the saved search shows. `polygon` needs replaying only when the area is
# another shape (the search combines several).
EXACT_LOCATION_SQL = """
    ((search_savedsearch.query ->> 'radius_km') IS NULL
      OR ST_DWithin(ST_SetSRID(ST_MakePoint((search_savedsearch.query ->> 'lng')::float8,
                                            (search_savedsearch.query ->> 'lat')::float8), 4326)::geography,
                    %s::geography, (search_savedsearch.query ->> 'radius_km')::float8 * 1000))
    AND ((search_savedsearch.query ->> 'bbox') IS NULL
      OR (%s BETWEEN split_part(search_savedsearch.query ->> 'bbox', ',', 1)::float8
                 AND split_part(search_savedsearch.query ->> 'bbox', ',', 3)::float8
          AND %s BETWEEN split_part(search_savedsearch.query ->> 'bbox', ',', 2)::float8
                     AND split_part(search_savedsearch.query ->> 'bbox', ',', 4)::float8))
    AND ((search_savedsearch.query ->> 'polygon') IS NULL
      OR ((search_savedsearch.query ->> 'radius_km') IS NULL AND (search_savedsearch.query ->> 'bbox') IS NULL)
      OR ST_Intersects(%s::geography, ST_GeomFromText(
             'POLYGON((' || replace(replace(search_savedsearch.query ->> 'polygon', ',', ' '), ';', ',') || '))',
             4326)::geography))
"""

# Keywords are checked last, on the candidates only, against the listing's stored tsvector:
# the corrected keywords (what the search ran when it was saved) or the words as typed (a word
# unknown then, e.g. one no active listing had yet, is found once a listing has it).
KEYWORDS_SQL = """
    (search_savedsearch.keywords = ''
     OR EXISTS (SELECT 1 FROM listings_listing l
                 WHERE l.id = %s
                   AND (l.search_vector @@ websearch_to_tsquery('english', search_savedsearch.keywords)
                        OR l.search_vector @@ websearch_to_tsquery('english',
                                                               search_savedsearch.query ->> 'q'))))
"""


def saved_searches_of(user) -> QuerySet[SavedSearch]:
    """A person's saved searches, newest first (none for an anonymous visitor)."""
    if not getattr(user, "is_authenticated", False):
        return SavedSearch.objects.none()
    return SavedSearch.objects.filter(user=user).order_by("-created_at", "-id")


def _at_least(column, value):
    """`column` (a minimum) is unset or at most `value`; an unknown value passes only an unset one."""
    if value is None:
        return Q(**{f"{column}__isnull": True})
    return Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__lte": value})


def _at_most(column, value):
    if value is None:
        return Q(**{f"{column}__isnull": True})
    return Q(**{f"{column}__isnull": True}) | Q(**{f"{column}__gte": value})


def saved_searches_matching(listing) -> QuerySet[SavedSearch]:
    """The saved searches `listing` (as it is now) matches, in one SQL statement.

    The reverse of a search: each search's extracted criteria (empty or NULL meaning "any") are
    compared with the listing's values, the area with an indexed containment test, the exact
    location and keywords only on the remaining candidates. The listing's own agent's searches
    are left out. Status is the caller's business (alerts only ask for active listings).
    """
    location = listing.location.ewkt
    # The raw fragments are this module's constants; every value is a bound parameter.
    return (
        SavedSearch.objects
        .filter(Q(listing_types=[]) | Q(listing_types__contains=[listing.listing_type]))
        .filter(Q(property_types=[]) | Q(property_types__contains=[listing.property_type]))
        .filter(features__contained_by=list(listing.features or []))
        .filter(_at_least("min_price", listing.price), _at_most("max_price", listing.price))
        .filter(_at_least("min_beds", listing.bedrooms), _at_least("min_baths", listing.bathrooms))
        .filter(_at_least("min_area", listing.area_sqm), _at_most("max_area", listing.area_sqm))
        .filter(_at_least("min_year", listing.year_built), _at_most("max_year", listing.year_built))
        .filter(Q(area__isnull=True) | Q(area__covers=listing.location))
        .filter(RawSQL(EXACT_LOCATION_SQL, [location, listing.location.x, listing.location.y, location],  # noqa: S611
                       output_field=BooleanField()))
        .filter(RawSQL(KEYWORDS_SQL, [listing.pk], output_field=BooleanField()))  # noqa: S611
        .exclude(user_id=listing.agent_id)
    )


def saved_searches_export(user) -> list[dict]:
    """A person's saved searches for their data export (`me/export/`)."""
    return [
        {"id": s.pk, "name": s.name, "query": s.query, "alert_frequency": s.alert_frequency,
         "created_at": s.created_at.isoformat(),
         "last_alerted_at": s.last_alerted_at.isoformat() if s.last_alerted_at else None}
        for s in SavedSearch.objects.filter(user=user).order_by("created_at", "id")
    ]
