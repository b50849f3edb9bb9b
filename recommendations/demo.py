"""Demo interactions drawn from hidden tastes, so that evaluation has something real to find.

Each customer gets a taste that is never stored: buy or rent, a city, a spot in it (homes
within a couple of kilometres are preferred), one or two property types and a price band.
Their interactions (mostly views, then photo galleries, search clicks, favorites, shares and
bookings) are drawn from the homes matching that taste, weighted by each home's own appeal
(shared by everyone: what makes some homes popular), with one in ten drawn from the whole
catalogue by appeal alone. Times spread over the last `days` days. Written with COPY.
"""

import math
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from recommendations.models import Interaction

KINDS = (("view", 0.70), ("gallery_opened", 0.12), ("search_click", 0.08), ("favorite", 0.06), ("share", 0.02),
         ("booking", 0.02))
COLUMNS = ("user_id", "session", "listing_id", "kind", "weight", "created_at")


def _catalogue():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT id, listing_type, property_type, lower(city),
                   CASE WHEN rent_period = 'week' THEN price * 52 / 12 ELSE price END,
                   ST_Y(location::geometry), ST_X(location::geometry)
              FROM listings_listing WHERE status IN ('active', 'pending', 'sold', 'rented') ORDER BY id""")
        rows = cursor.fetchall()
    if not rows:
        return None
    ids, listing_type, property_type, city, price, lat, lng = zip(*rows, strict=True)
    return {"ids": np.array(ids), "listing_type": np.array(listing_type), "property_type": np.array(property_type),
            "city": np.array(city), "log_price": np.log(np.maximum(np.array(price, dtype=float), 1.0)),
            "lat": np.array(lat, dtype=float), "lng": np.array(lng, dtype=float)}


def generate(*, customers, seed=42, per_user=40, days=90, now=None):
    """[(user id, listing id, kind, time)] for the customers (deterministic for a seed)."""
    data = _catalogue()
    if data is None or not customers:
        return []
    now = now or timezone.now()
    rng = np.random.default_rng(seed)
    appeal = rng.lognormal(0.0, 0.8, len(data["ids"]))
    global_p = appeal / appeal.sum()
    groups = {}
    for index, key in enumerate(zip(data["listing_type"].tolist(), data["city"].tolist(), strict=True)):
        groups.setdefault(key, []).append(index)
    groups = {key: np.array(members) for key, members in groups.items() if len(members) >= 5}
    keys = sorted(groups)
    if not keys:  # too few homes in any one city to have a taste for
        return []
    sizes = np.array([len(groups[key]) for key in keys], dtype=float)
    kinds, kind_p = zip(*KINDS, strict=True)
    out = []
    for user_id in customers:
        key = keys[rng.choice(len(keys), p=sizes / sizes.sum())]
        members = groups[key]
        anchor = members[rng.integers(len(members))]
        types = list({data["property_type"][members[rng.integers(len(members))]] for _ in range(2)})
        centre = np.quantile(data["log_price"][members], rng.uniform(0.15, 0.85))
        km_lat = (data["lat"][members] - data["lat"][anchor]) * 111.0
        km_lng = (data["lng"][members] - data["lng"][anchor]) * 111.0 * math.cos(math.radians(data["lat"][anchor]))
        taste = (appeal[members] * np.exp(-(km_lat ** 2 + km_lng ** 2) / (2 * 2.0 ** 2))
                 * np.where(np.isin(data["property_type"][members], types), 1.0, 0.1)
                 * np.exp(-((data["log_price"][members] - centre) ** 2) / (2 * 0.25 ** 2)))
        if taste.sum() <= 0:
            continue
        taste = taste / taste.sum()
        count = max(2, int(per_user * rng.uniform(0.5, 1.5)))
        noise = rng.random(count) < 0.1
        chosen = np.where(noise, rng.choice(len(data["ids"]), count, p=global_p),
                          members[rng.choice(len(members), count, p=taste)])
        seconds = np.sort(rng.uniform(0, days * 86400, count))
        picked_kinds = rng.choice(len(kinds), count, p=kind_p)
        for listing_index, offset, kind_index in zip(chosen.tolist(), seconds.tolist(), picked_kinds.tolist(),
                                                     strict=True):
            at = now - timedelta(days=days) + timedelta(seconds=offset)
            out.append((user_id, int(data["ids"][listing_index]), kinds[kind_index], at))
    return out


def seed_interactions(*, customers, seed=42, per_user=40, days=90, now=None):
    """Write generated interactions for the customers (user ids); returns how many."""
    rows = generate(customers=customers, seed=seed, per_user=per_user, days=days, now=now)
    weights = settings.RECO_WEIGHTS
    table = connection.ops.quote_name(Interaction._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(name) for name in COLUMNS)
    with transaction.atomic(), connection.cursor() as cursor, \
            cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # names from the model
        for user_id, listing_id, kind, at in rows:
            copy.write_row((user_id, "", listing_id, kind, weights.get(kind, 1.0), at))
    return len(rows)


def demo_customers():
    from accounts.models import User

    return list(User.objects.filter(role=User.Role.CUSTOMER, email__endswith="@demo.realio")
                .order_by("pk").values_list("pk", flat=True))

