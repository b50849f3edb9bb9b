"""The Elasticsearch document of a listing: its mapping, and how a listing becomes a document.

Only active listings are indexed. The index follows the listing events (search/indexing.py),
never model signals: `ignore_signals` here and ELASTICSEARCH_DSL_AUTOSYNC=False in settings,
because bulk writes fire no signals and a signal would call Elasticsearch inside the request.
`manage.py search_index --rebuild` (django-elasticsearch-dsl) builds it from scratch, reading
the listings in keyset batches. Importing this module connects to nothing.
"""

from django.conf import settings
from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry

from listings.models import Listing

INDEX_NAME = getattr(settings, "ELASTICSEARCH_INDEX", "realio-listings")
BATCH_SIZE = 500


def english_text(*, raw=False):
    """Text analysed for English (stemming, stop words); `.raw` keeps the exact value for
    sorting and exact matches."""
    return fields.TextField(analyzer="english", fields={"raw": fields.KeywordField()} if raw else {})


@registry.register_document
class ListingDocument(Document):
    # The id as a field as well as the document _id: sorting on _id is disabled in Elasticsearch
    # 8+, and every sort ends with the id to make pages stable (as in the PostgreSQL backend).
    id = fields.IntegerField()
    title = english_text(raw=True)
    description = english_text()
    street = english_text()
    city = english_text(raw=True)
    region = english_text(raw=True)
    listing_type = fields.KeywordField()
    property_type = fields.KeywordField()
    status = fields.KeywordField()
    country = fields.KeywordField()
    # Slugs for filters and facets; `.text` splits "sea-view" into words for keyword search.
    features = fields.KeywordField(multi=True, fields={"text": fields.TextField(analyzer="english")})
    price = fields.ScaledFloatField(scaling_factor=100)
    area_sqm = fields.ScaledFloatField(scaling_factor=100)
    bedrooms = fields.IntegerField()
    bathrooms = fields.IntegerField()
    year_built = fields.IntegerField()
    published_at = fields.DateField()
    # Compared with the database's by the reconcile job (search.indexing.reconcile): kept as
    # the exact ISO string the database gave, so equality means "this version".
    updated_at = fields.DateField()
    location = fields.GeoPointField()

    class Index:
        name = INDEX_NAME

    class Django:
        model = Listing
        ignore_signals = True
        auto_refresh = False
        queryset_pagination = BATCH_SIZE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # django-elasticsearch-dsl 9.0 keeps its field preparers in an attribute that the
        # elasticsearch client from 9.4 stores among the document's values instead, so every
        # document came out empty (django-es/django-elasticsearch-dsl#505): keep them on the
        # instance itself. Harmless with the versions that did not break.
        object.__setattr__(self, "_prepared_fields", self.init_prepare())

    def get_queryset(self):
        return Listing.objects.filter(status=Listing.Status.ACTIVE)

    def get_indexing_queryset(self):
        """Active listings in keyset batches (`pk > last`), for `search_index --populate/--rebuild`."""
        last_pk = 0
        while True:
            batch = list(self.get_queryset().filter(pk__gt=last_pk).order_by("pk")[:BATCH_SIZE])
            if not batch:
                return
            yield from batch
            last_pk = batch[-1].pk

    def should_index_object(self, obj):
        return obj.status == Listing.Status.ACTIVE

    def prepare_features(self, listing):
        return list(listing.features or [])

    def prepare_price(self, listing):
        return float(listing.price)

    def prepare_area_sqm(self, listing):
        return None if listing.area_sqm is None else float(listing.area_sqm)

    def prepare_published_at(self, listing):
        return listing.published_at.isoformat() if listing.published_at else None

    def prepare_updated_at(self, listing):
        return listing.updated_at.isoformat()

    def prepare_location(self, listing):
        return {"lat": listing.location.y, "lon": listing.location.x}
