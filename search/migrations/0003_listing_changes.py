"""A change log of the listing columns search counts on (search/snapshot.py).

Triggers record the id of every listing inserted, deleted, or updated in a column that search
filters or counts by, with the id of the writing transaction (xid8): a reader that remembers
the snapshot it last read at asks for exactly the changes that snapshot did not see, committed
since or still running then. TRUNCATE records a row without an id: "reload everything".
Rows older than a day are deleted by the `search.prune_listing_changes` beat task.
"""

from django.db import migrations

COLUMNS = ("status", "price", "bedrooms", "bathrooms", "area_sqm", "year_built", "property_type",
           "listing_type", "features", "published_at", "search_vector")
# Geography's `=` compares single-precision boxes: the location is compared exactly, as WKB.
CHANGED = " OR ".join([*(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column in COLUMNS),
                       "ST_AsBinary(OLD.location) IS DISTINCT FROM ST_AsBinary(NEW.location)"])

FORWARD = f"""
CREATE TABLE search_listing_change (
    id bigserial PRIMARY KEY,
    listing_id bigint,
    xid xid8 NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_listing_change_xid_idx ON search_listing_change (xid);
CREATE INDEX search_listing_change_changed_at_idx ON search_listing_change (changed_at);

CREATE FUNCTION search_listing_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        INSERT INTO search_listing_change (listing_id) VALUES (OLD.id);
    ELSE
        INSERT INTO search_listing_change (listing_id) VALUES (NEW.id);
    END IF;
    RETURN NULL;
END $$;

CREATE FUNCTION search_listings_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_listing_change (listing_id) VALUES (NULL);
    RETURN NULL;
END $$;

CREATE TRIGGER search_listing_inserted AFTER INSERT ON listings_listing
    FOR EACH ROW WHEN (NEW.status = 'active') EXECUTE FUNCTION search_listing_changed();
CREATE TRIGGER search_listing_updated AFTER UPDATE ON listings_listing
    FOR EACH ROW WHEN ({CHANGED}) EXECUTE FUNCTION search_listing_changed();
CREATE TRIGGER search_listing_deleted AFTER DELETE ON listings_listing
    FOR EACH ROW WHEN (OLD.status = 'active') EXECUTE FUNCTION search_listing_changed();
CREATE TRIGGER search_listings_truncated AFTER TRUNCATE ON listings_listing
    FOR EACH STATEMENT EXECUTE FUNCTION search_listings_truncated();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS search_listings_truncated ON listings_listing;
DROP TRIGGER IF EXISTS search_listing_deleted ON listings_listing;
DROP TRIGGER IF EXISTS search_listing_updated ON listings_listing;
DROP TRIGGER IF EXISTS search_listing_inserted ON listings_listing;
DROP FUNCTION IF EXISTS search_listings_truncated();
DROP FUNCTION IF EXISTS search_listing_changed();
DROP TABLE IF EXISTS search_listing_change;
"""


class Migration(migrations.Migration):

    dependencies = [
        ("listings", "0003_search_facets_index"),
        ("search", "0002_savedsearchmatch"),
    ]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
