"""Serving recommendations and similar homes from the promoted model.

Each signed-in person's candidates (the best RECO_CANDIDATES listings with their scores) are
precomputed and kept in Redis under `realio:reco:user:<id>` with the model version they came
from: `refresh_user` recomputes them by folding the person's interactions in against the
current model (a few milliseconds, no retraining), and the interaction handlers call it on
every new signal. A request reads that list and only re-ranks it cheaply: drop what is no
longer active, favorited or booked, spread the picks over buildings and streets, and load the
few listings shown. A model promoted since the list was made (another version) or a missing
list is recomputed on the spot.
"""

import json
import logging

import numpy as np
from django.conf import settings
from django.db import connection
from django.db.models import Q

from bookings.models import Viewing
from listings import selectors as listing_selectors
from listings.bodies import listing_body
from listings.models import Favorite, Listing
from realio.redis import get_redis
from realio.redis import key as redis_key
from recommendations import recommender, store
from recommendations.models import Interaction, ModelVersion

logger = logging.getLogger(__name__)
RECOMMENDER = ModelVersion.Kind.RECOMMENDER
PROFILE_INTERACTIONS = 500
FRESH_LISTINGS = 500
PER_BUILDING = 1
PER_STREET = 2
PICK_WINDOW = 4
WARM_BODIES = 40
BODY_PREFIX = "reco:body:"

_fresh_vectors: dict[tuple[str, int], np.ndarray] = {}

# Active listings among the ids, less those the person (if any) favorited or booked.
ELIGIBLE_SQL = f"""
    SELECT l.id, lower(l.city), lower(l.street), l.postal_code, l.updated_at
      FROM {Listing._meta.db_table} l
     WHERE l.id = ANY(%s) AND l.status = 'active'
       AND NOT EXISTS (SELECT 1 FROM {Favorite._meta.db_table} f WHERE f.user_id = %s AND f.listing_id = l.id)
       AND NOT EXISTS (SELECT 1 FROM {Viewing._meta.db_table} v WHERE v.customer_id = %s AND v.listing_id = l.id)
"""  # noqa: S608 (table names from the models; values are parameters)


def candidates_key(user_id):
    return redis_key("reco", "user", user_id)


def interactions_of(user_id):
    rows = list(Interaction.objects.filter(user_id=user_id).order_by("-created_at")
                .values_list("listing_id", "weight")[:PROFILE_INTERACTIONS])
    return [listing for listing, _w in rows], [weight for _l, weight in rows]


# --- computing candidates -----------------------------------------------------------------------

def _fresh(model):
    """(listing ids, content vectors) of active listings published after the model was trained:
    they have no interactions in it yet, so they compete on content alone."""
    from datetime import UTC, datetime

    trained = datetime.fromtimestamp(model.trained_at, tz=UTC)
    ids = [pk for pk in Listing.objects.filter(status=Listing.Status.ACTIVE, published_at__gt=trained)
           .order_by("-published_at").values_list("pk", flat=True)[:FRESH_LISTINGS] if pk not in model.index]
    missing = [pk for pk in ids if (model.version, pk) not in _fresh_vectors]
    if missing:
        frame = recommender.load_listings(ids=missing)
        for listing_id, vector in zip(frame.ids.tolist(), model.encoder.transform(frame), strict=True):
            _fresh_vectors[(model.version, listing_id)] = vector
    ids = [pk for pk in ids if (model.version, pk) in _fresh_vectors]
    if not ids:
        return [], None
    return ids, np.vstack([_fresh_vectors[(model.version, pk)] for pk in ids])


def _saved_search_mask(model, user_id):
    """Listings of the model matching any of the person's saved searches (type, price, area box)."""
    from search.models import SavedSearch

    searches = list(SavedSearch.objects.filter(user_id=user_id).order_by("-created_at")[:10])
    if not searches:
        return None
    mask = np.zeros(len(model.item_ids), dtype=bool)
    for search in searches:
        match = model.active.copy()
        if search.listing_types:
            match &= np.isin(model.listing_type, search.listing_types)
        if search.property_types:
            match &= np.isin(model.property_type, search.property_types)
        if search.min_price is not None:
            match &= model.price >= float(search.min_price)
        if search.max_price is not None:
            match &= model.price <= float(search.max_price)
        if search.area is not None:
            west, south, east, north = search.area.extent
            match &= (model.lng >= west) & (model.lng <= east) & (model.lat >= south) & (model.lat <= north)
        mask |= match
    return mask


def compute_candidates(model, user_id, *, k=None):
    """[(listing id, score)] for a person, best first: the hybrid scores of their folded-in
    profile, or, for someone with no usable interactions yet, what is popular among homes
    matching their saved searches (the whole catalogue's popular homes without any)."""
    k = k or settings.RECO_CANDIDATES
    listing_ids, weights = interactions_of(user_id)
    rows, values, seen = model.user_vector(listing_ids, weights)
    if len(rows):
        cf, content, popularity = model.parts(rows, values)
        a_cf, a_ct, a_pop = model.blend
        best, scores = model.top(a_cf * cf + a_ct * content + a_pop * popularity, exclude=seen, k=k,
                                 allowed=model.active)
        out = list(zip(model.item_ids[best].tolist(), scores.tolist(), strict=True))
        fresh_ids, vectors = _fresh(model)
        if fresh_ids:
            profile = values @ model.content[rows]
            profile = profile / (np.linalg.norm(profile) or 1.0)
            fresh_scores = (vectors @ profile) * max(a_ct, 0.5)
            seen_ids = set(listing_ids)
            out += [(pk, float(s)) for pk, s in zip(fresh_ids, fresh_scores.tolist(), strict=True)
                    if pk not in seen_ids]
            out.sort(key=lambda pair: -pair[1])
        return out[:k]
    mask = _saved_search_mask(model, user_id)
    if mask is not None and mask.any():
        best, scores = model.top(model.popularity + 1e-3, exclude=seen, k=k, allowed=mask)
        return list(zip(model.item_ids[best].tolist(), scores.tolist(), strict=True))
    return popular_candidates(model, k=k, exclude=set(listing_ids))


def popular_candidates(model, *, k=None, exclude=()):
    k = k or settings.RECO_CANDIDATES
    rows = [row for row in model.popular_order[: k + len(exclude)].tolist()
            if int(model.item_ids[row]) not in exclude][:k]
    return [(int(model.item_ids[row]), float(model.popularity[row])) for row in rows]


def refresh_user(user_id):
    """Fold the person's interactions in against the serving model and store their candidates."""
    model = store.current(RECOMMENDER)
    client = get_redis()
    if model is None:
        client.delete(candidates_key(user_id))
        return None
    candidates = compute_candidates(model, user_id)
    client.set(candidates_key(user_id), json.dumps({"v": model.version, "c": candidates}),
               ex=settings.RECO_CACHE_SECONDS)
    if settings.RECO_LISTING_CACHE_SECONDS:
        warm_bodies(candidates)
    return candidates


def cached_candidates(model, user_id):
    try:
        raw = get_redis().get(candidates_key(user_id))
    except Exception:
        logger.warning("could not read cached recommendations of %s", user_id, exc_info=True)
        raw = None
    if raw is not None:
        entry = json.loads(raw)
        if entry.get("v") == model.version:
            return [tuple(pair) for pair in entry["c"]]
    return refresh_user(user_id) or []


# --- re-ranking and loading ---------------------------------------------------------------------

def pick(candidates, *, user=None, limit=10, exclude_ids=()):
    """The first `limit` candidates still active and not favorited or booked by `user`, at most
    PER_BUILDING per building and PER_STREET per street while there are enough others.

    Looks at the best PICK_WINDOW × limit candidates first (one query), at all of them only when
    too few of those are left. Returns [(listing id, score)], best first."""
    ranked = [(int(pk), float(score)) for pk, score in candidates if int(pk) not in exclude_ids]
    window = PICK_WINDOW * limit
    chosen, ordered = _diverse(ranked[:window], user, limit)
    if len(chosen) < limit and len(ranked) > window:
        chosen, ordered = _diverse(ranked, user, limit)
    if len(chosen) < limit:  # not enough variety: fill with the next best
        taken = set(chosen)
        chosen += [pk for pk in ordered if pk not in taken][: limit - len(chosen)]
    scores = dict(ranked)
    return [(pk, scores[pk]) for pk in chosen]


def _diverse(ranked, user, limit):
    """(diverse picks, every eligible id in order) among `ranked`."""
    ids = [pk for pk, _score in ranked]
    if not ids:
        return [], []
    # Hand-written: one array parameter keeps the statement's text constant, so psycopg prepares
    # it once per connection (measured 1.1 ms against 4.2 ms for the ORM's IN list + EXISTS).
    user_id = user.pk if getattr(user, "is_authenticated", False) else None
    places = {}
    with connection.cursor() as cursor:
        cursor.execute(ELIGIBLE_SQL, [ids, user_id, user_id])
        for pk, city, street, postal_code, updated_at in cursor.fetchall():
            places[pk] = (city, street, postal_code)
            _stamps[pk] = updated_at.timestamp()
    ordered = [pk for pk in ids if pk in places]
    chosen, buildings, streets = [], {}, {}
    for pk in ordered:
        city, street, postal_code = places[pk]
        building, road = (city, street, postal_code), (city, _street_name(street))
        if buildings.get(building, 0) >= PER_BUILDING or streets.get(road, 0) >= PER_STREET:
            continue
        chosen.append(pk)
        buildings[building] = buildings.get(building, 0) + 1
        streets[road] = streets.get(road, 0) + 1
        if len(chosen) == limit:
            break
    return chosen, ordered


def load(picked):
    """[(listing with details, score)] for [(listing id, score)], in order (pages)."""
    found = listing_selectors.with_details(Listing.objects.filter(pk__in=[pk for pk, _s in picked])).in_bulk()
    return [(found[pk], score) for pk, score in picked if pk in found]


def _street_name(street):
    """The street without its number ("12 rue de Rivoli" and "rue de Rivoli 3" → "rue de rivoli")."""
    return " ".join(word for word in street.split() if not any(ch.isdigit() for ch in word))


# --- listing bodies -----------------------------------------------------------------------------
# The API's listing representation, cached per listing and `updated_at` (a change of the
# listing makes a new key; a photo change, which does not touch `updated_at`, drops the key
# through `listing.updated`) for RECO_LISTING_CACHE_SECONDS, without the host: URLs are made
# absolute per request. After each promotion every active listing's body is cached, and the
# fold-in warms a person's best candidates, so a request rarely builds one. View counts may
# lag by the cache's lifetime.

_stamps: dict[int, float] = {}  # updated_at of listings seen by pick() in this process (bounded below)


def _body_key(pk, stamp):
    return f"{BODY_PREFIX}{pk}:{stamp}"


def listing_bodies(ids):
    """{id: body with site-relative URLs} for listings whose `updated_at` pick() just read."""
    from django.core.cache import cache

    seconds = settings.RECO_LISTING_CACHE_SECONDS
    keys = {pk: _body_key(pk, _stamps.get(pk)) for pk in ids}
    found = cache.get_many(list(keys.values())) if seconds else {}
    bodies = {pk: found[key] for pk, key in keys.items() if key in found}
    missing = [pk for pk in ids if pk not in bodies]
    if missing:
        listings = listing_selectors.with_details(Listing.objects.filter(pk__in=missing))
        fresh = {listing.pk: listing_body(listing) for listing in listings}
        if seconds:
            cache.set_many({_body_key(pk, listing_stamp): body for pk, body in fresh.items()
                            for listing_stamp in [_stamps.get(pk)]}, seconds)
        bodies.update(fresh)
    if len(_stamps) > 200_000:
        _stamps.clear()
    return bodies


def forget_body(listing_id):
    """Drop a listing's cached body (its photos changed: `updated_at` did not)."""
    from django.core.cache import cache

    stamp = Listing.objects.filter(pk=listing_id).values_list("updated_at", flat=True).first()
    if stamp is not None:
        cache.delete(_body_key(listing_id, stamp.timestamp()))


def warm_all_bodies(*, batch_size=1000):
    """Cache the body of every active listing, in keyset batches (after a model is promoted, so
    that similar homes and recommendations rarely build one on a request). Returns how many."""
    from django.core.cache import cache

    seconds = settings.RECO_LISTING_CACHE_SECONDS
    if not seconds:
        return 0
    last, count = 0, 0
    while True:
        batch = list(listing_selectors.with_details(
            Listing.objects.filter(status=Listing.Status.ACTIVE, pk__gt=last).order_by("pk"))[:batch_size])
        if not batch:
            return count
        cache.set_many({_body_key(listing.pk, listing.updated_at.timestamp()): listing_body(listing)
                        for listing in batch}, seconds)
        last, count = batch[-1].pk, count + len(batch)


def warm_bodies(candidates):
    """Cache the bodies of the first candidates (run by the fold-in, off the request path)."""
    ids = [int(pk) for pk, _score in candidates[:WARM_BODIES]]
    for pk, updated_at in Listing.objects.filter(pk__in=ids).values_list("pk", "updated_at"):
        _stamps[pk] = updated_at.timestamp()
    listing_bodies([pk for pk in ids if pk in _stamps])


def recommend(user, *, limit=10):
    """[(listing id, score)] for `user`: their candidates re-ranked, or popular homes for anyone
    anonymous (and for everyone while no model is trained: the most viewed active homes)."""
    model = store.current(RECOMMENDER)
    if model is None:
        return _most_viewed(user, limit)
    if getattr(user, "is_authenticated", False):
        candidates = cached_candidates(model, user.pk)
    else:
        candidates = popular_candidates(model)
    picked = pick(candidates, user=user, limit=limit)
    if len(picked) < limit:
        shown = {pk for pk, _score in picked}
        picked += pick(popular_candidates(model, exclude=shown), user=user, limit=limit - len(picked),
                       exclude_ids=shown)
    return picked


def recommended_listings(user, *, limit=6):
    """Listings (with details) recommended to `user`: for pages and emails (the digest)."""
    return [listing for listing, _score in load(recommend(user, limit=limit))]


def _most_viewed(user, limit):
    queryset = Listing.objects.filter(status=Listing.Status.ACTIVE).order_by("-view_count", "-published_at")
    ids = list(queryset.values_list("pk", "view_count")[: limit * 3])
    peak = max((views for _pk, views in ids), default=0) or 1
    return pick([(pk, views / peak) for pk, views in ids], user=user, limit=limit)


def similar(listing, *, limit=10):
    """Ids of the active homes most like `listing` (same kind of deal, same city), best first."""
    model = store.current(RECOMMENDER)
    if model is None:
        return _similar_without_model(listing, limit)
    frame = None if listing.pk in model.index else recommender.load_listings(ids=[listing.pk])
    rows = model.similar_rows(listing.pk, frame)
    candidates = [(int(model.item_ids[row]), 1.0 - position / 1000) for position, row in enumerate(rows.tolist())]
    return [pk for pk, _score in pick(candidates, limit=limit, exclude_ids={listing.pk})]


def _similar_without_model(listing, limit):
    """Before any model: same deal and property type in the same city, closest in price."""
    from django.db.models import F, Func

    queryset = (Listing.objects.filter(status=Listing.Status.ACTIVE, listing_type=listing.listing_type,
                                       city__iexact=listing.city)
                .exclude(pk=listing.pk).filter(Q(property_type=listing.property_type) | Q(bedrooms=listing.bedrooms))
                .annotate(gap=Func(F("price") - listing.price, function="ABS")).order_by("gap"))
    ids = list(queryset.values_list("pk", flat=True)[: limit * 3])
    return [pk for pk, _score in pick([(pk, 0.0) for pk in ids], limit=limit)]
