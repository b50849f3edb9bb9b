"""The hybrid recommender: fitting, fold-in scoring and similar homes (no Django views here).

- Collaborative filtering, PureSVD style: the user × listing matrix holds, per pair, the
  log of the summed interaction weights (clipped at zero: an unfavorite cancels a favorite);
  `TruncatedSVD` factorises it and a person's scores are r·Q·Qᵀ, where Q holds the item
  factors. That product needs nothing of the person but their row r, so a new interaction is
  folded in at once against the current Q, without retraining.
- Content: each listing becomes one L2-normalised vector of weighted blocks: scaled numbers
  (log price within sale or rent, bedrooms, bathrooms, log area, year), one-hot listing and
  property type, the features, its place as random Fourier features of an RBF kernel at two
  length scales (about a city, about a neighbourhood: a dot product then approximates
  "how close"), and TF-IDF of the title and description reduced by TruncatedSVD. A person's
  content profile is the weighted mean of the vectors of what they interacted with.
- Popularity: the summed, log-damped weights per listing.
- Blend: score = a_cf·cf/max|cf| + a_content·cosine + a_pop·popularity, the weights chosen
  on a time-split validation set inside the training data.

Similar homes are precomputed: for each listing, its nearest neighbours by content among the
listings of the same type (sale/rent) in the same city.
"""

import logging
import math
import time
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from django.db import connection
from sklearn.decomposition import TruncatedSVD
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.kernel_approximation import RBFSampler
from sklearn.preprocessing import normalize

from listings.models import Feature, Listing

logger = logging.getLogger(__name__)

PROPERTY_TYPES = list(Listing.PropertyType.values)
LISTING_TYPES = list(Listing.ListingType.values)
FEATURES = list(Feature.values)
EARTH_KM = 6371.0
NEIGHBOURS = 30
BLOCK_WEIGHTS = {"numbers": 1.0, "listing_type": 2.0, "property_type": 1.0, "features": 0.3, "city": 2.0,
                 "area": 1.0, "text": 0.3}
BLEND_GRID = [(a_cf, a_ct, a_pop) for a_cf in (0.0, 0.5, 1.0) for a_ct in (0.0, 0.5, 1.0) for a_pop in (0.0, 0.3)
              if a_cf or a_ct or a_pop]


# --- data ---------------------------------------------------------------------------------------

@dataclass
class ListingFrame:
    """Columns of the listings a model knows (every listing ever public)."""

    ids: np.ndarray
    listing_type: np.ndarray
    property_type: np.ndarray
    price: np.ndarray  # monthly for rents
    bedrooms: np.ndarray
    bathrooms: np.ndarray
    area: np.ndarray
    year: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    features: list
    text: list
    city: np.ndarray
    building: np.ndarray
    active: np.ndarray

    def __len__(self):
        return len(self.ids)


LISTING_SQL = """
    SELECT id, listing_type, property_type,
           CASE WHEN rent_period = 'week' THEN price * 52 / 12 ELSE price END,
           bedrooms, bathrooms, area_sqm, year_built, ST_Y(location::geometry), ST_X(location::geometry),
           features, title || ' ' || description, lower(city),
           lower(city) || '|' || lower(street) || '|' || postal_code, status = 'active'
      FROM listings_listing
"""


def frame_from_rows(rows):
    def column(i, dtype=object):
        return np.array([row[i] for row in rows], dtype=dtype)

    def floats(i):
        return np.array([math.nan if row[i] is None else float(row[i]) for row in rows], dtype=np.float64)

    return ListingFrame(
        ids=column(0, np.int64), listing_type=column(1), property_type=column(2), price=floats(3),
        bedrooms=floats(4), bathrooms=floats(5), area=floats(6), year=floats(7), lat=floats(8), lng=floats(9),
        features=[row[10] or [] for row in rows], text=[row[11] or "" for row in rows], city=column(12),
        building=column(13), active=column(14, bool))


def load_listings(*, ids=None):
    """Every listing that was ever public (or exactly `ids`), ordered by id."""
    with connection.cursor() as cursor:
        if ids is None:
            cursor.execute(LISTING_SQL + " WHERE status NOT IN ('draft', 'withdrawn') OR id IN "  # noqa: S608
                           "(SELECT DISTINCT listing_id FROM recommendations_interaction) ORDER BY id")
        else:
            cursor.execute(LISTING_SQL + " WHERE id = ANY(%s) ORDER BY id", [list(ids)])
        return frame_from_rows(cursor.fetchall())


@dataclass
class InteractionLog:
    """Interactions as columns: who (user id, or a negative number for an anonymous session),
    which listing, weight, time (epoch seconds)."""

    who: np.ndarray
    listing: np.ndarray
    weight: np.ndarray
    time: np.ndarray

    def __len__(self):
        return len(self.who)

    def subset(self, mask):
        return InteractionLog(self.who[mask], self.listing[mask], self.weight[mask], self.time[mask])


def load_interactions():
    with connection.cursor() as cursor:
        cursor.execute("""
            SELECT COALESCE(user_id, -abs(hashtextextended(session, 0))), listing_id, weight,
                   extract(epoch FROM created_at)
              FROM recommendations_interaction""")
        rows = cursor.fetchall()
    if not rows:
        empty = np.zeros(0)
        return InteractionLog(empty.astype(np.int64), empty.astype(np.int64), empty, empty)
    who, listing, weight, at = zip(*rows, strict=True)
    return InteractionLog(np.array(who, dtype=np.int64), np.array(listing, dtype=np.int64),
                          np.array(weight, dtype=np.float64), np.array(at, dtype=np.float64))


# --- content ------------------------------------------------------------------------------------

class ContentEncoder:
    """Listing → content vector (see the module docstring). Fitted once per model version and
    kept in the artefact, so a listing published after training is encoded the same way."""

    def __init__(self, *, text_components=24, location_components=48, random_state=0):
        self.text_components = text_components
        self.location_components = location_components
        self.random_state = random_state

    def _numbers(self, frame):
        log_price = np.log1p(np.nan_to_num(frame.price, nan=0.0))
        for index, listing_type in enumerate(LISTING_TYPES):
            mask = frame.listing_type == listing_type
            log_price = np.where(mask, (log_price - self.price_mean_[index]) / self.price_std_[index], log_price)
        columns = [log_price, frame.bedrooms, frame.bathrooms, np.log1p(frame.area), frame.year]
        out = np.column_stack(columns)
        for j in range(1, out.shape[1]):
            out[:, j] = np.where(np.isnan(out[:, j]), self.medians_[j], out[:, j])
            out[:, j] = (out[:, j] - self.means_[j]) / self.stds_[j]
        return np.clip(out, -3, 3) / math.sqrt(out.shape[1])

    @staticmethod
    def _xyz(frame):
        lat, lng = np.radians(frame.lat), np.radians(frame.lng)
        return np.column_stack([np.cos(lat) * np.cos(lng), np.cos(lat) * np.sin(lng), np.sin(lat)]) * EARTH_KM

    def fit(self, frame):
        log_price = np.log1p(np.nan_to_num(frame.price, nan=0.0))
        self.price_mean_, self.price_std_ = [], []
        for listing_type in LISTING_TYPES:
            values = log_price[frame.listing_type == listing_type]
            self.price_mean_.append(float(values.mean()) if len(values) else 0.0)
            self.price_std_.append(float(values.std()) or 1.0 if len(values) > 1 else 1.0)
        raw = np.column_stack([log_price, frame.bedrooms, frame.bathrooms, np.log1p(frame.area), frame.year])
        self.medians_ = [0.0] + [float(np.nanmedian(raw[:, j])) if np.isfinite(raw[:, j]).any() else 0.0
                                 for j in range(1, raw.shape[1])]
        filled = np.where(np.isnan(raw), np.array(self.medians_), raw)
        self.means_ = filled.mean(axis=0)
        self.stds_ = np.where(filled.std(axis=0) > 0, filled.std(axis=0), 1.0)
        xyz = self._xyz(frame)
        # exp(-gamma d²) with d in km: gamma = 1 / (2 ℓ²) for a length scale ℓ of 15 km and 2 km.
        self.city_ = RBFSampler(gamma=1 / 450, n_components=self.location_components,
                                random_state=self.random_state).fit(xyz)
        self.area_ = RBFSampler(gamma=1 / 8, n_components=self.location_components,
                                random_state=self.random_state + 1).fit(xyz)
        self.tfidf_ = TfidfVectorizer(max_features=20_000, sublinear_tf=True, min_df=2 if len(frame) > 50 else 1,
                                      stop_words="english", dtype=np.float32)
        text = self.tfidf_.fit_transform(frame.text)
        components = max(1, min(self.text_components, text.shape[1] - 1, len(frame) - 1))
        self.svd_ = TruncatedSVD(n_components=components, random_state=self.random_state).fit(text)
        return self

    def transform(self, frame):
        if not len(frame):
            return np.zeros((0, 1), dtype=np.float32)
        xyz = self._xyz(frame)
        blocks = {
            "numbers": self._numbers(frame),
            "listing_type": (frame.listing_type[:, None] == np.array(LISTING_TYPES)[None, :]).astype(float),
            "property_type": (frame.property_type[:, None] == np.array(PROPERTY_TYPES)[None, :]).astype(float),
            "features": normalize(np.array([[slug in chosen for slug in FEATURES] for chosen in frame.features],
                                           dtype=float).reshape(len(frame), len(FEATURES))),
            "city": self.city_.transform(xyz),
            "area": self.area_.transform(xyz),
            "text": normalize(self.svd_.transform(self.tfidf_.transform(frame.text))),
        }
        out = np.hstack([blocks[name] * math.sqrt(weight) for name, weight in BLOCK_WEIGHTS.items()])
        return normalize(out).astype(np.float32)


# --- the model ----------------------------------------------------------------------------------

@dataclass
class Recommender:
    version: str
    trained_at: float
    item_ids: np.ndarray
    content: np.ndarray
    factors: np.ndarray | None
    popularity: np.ndarray
    blend: tuple
    encoder: ContentEncoder
    listing_type: np.ndarray
    price: np.ndarray
    lat: np.ndarray
    lng: np.ndarray
    property_type: np.ndarray
    group: np.ndarray
    group_keys: dict
    neighbours: np.ndarray
    popular_order: np.ndarray
    active: np.ndarray
    metrics: dict = field(default_factory=dict)
    index: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        self.index = {int(listing_id): row for row, listing_id in enumerate(self.item_ids)}

    def __setstate__(self, state):
        self.__dict__.update(state)
        self.index = {int(listing_id): row for row, listing_id in enumerate(self.item_ids)}

    def __getstate__(self):
        return {key: value for key, value in self.__dict__.items() if key != "index"}

    def rows_of(self, listing_ids):
        return [self.index[i] for i in listing_ids if i in self.index]

    # ----- scoring a person

    def user_vector(self, listing_ids, weights):
        """(rows, values): the person's row r as the model sees it (summed, clipped, log-damped)."""
        totals = {}
        for listing_id, weight in zip(listing_ids, weights, strict=True):
            row = self.index.get(int(listing_id))
            if row is not None:
                totals[row] = totals.get(row, 0.0) + float(weight)
        rows = np.array([row for row, total in totals.items() if total > 0], dtype=np.int64)
        values = np.log1p(np.array([totals[row] for row in rows], dtype=np.float32))
        seen = np.array(list(totals), dtype=np.int64)
        return rows, values, seen

    def parts(self, rows, values):
        """The three scores of every item for one person: cf, content, popularity."""
        n = len(self.item_ids)
        if not len(rows):
            return np.zeros(n, np.float32), np.zeros(n, np.float32), self.popularity
        cf = np.zeros(n, np.float32)
        if self.factors is not None:
            cf = self.factors @ (values @ self.factors[rows])
            peak = float(np.abs(cf).max())
            if peak > 0:
                cf = cf / peak
        profile = values @ self.content[rows]
        norm = float(np.linalg.norm(profile))
        content = self.content @ (profile / norm) if norm > 0 else np.zeros(n, np.float32)
        return cf, content, self.popularity

    def score(self, rows, values, blend=None):
        a_cf, a_ct, a_pop = blend or self.blend
        cf, content, popularity = self.parts(rows, values)
        return a_cf * cf + a_ct * content + a_pop * popularity

    def top(self, scores, *, exclude=(), k=200, allowed=None):
        scores = scores.astype(np.float32, copy=True)
        if allowed is not None:
            scores[~allowed] = -np.inf
        if len(exclude):
            scores[np.asarray(exclude, dtype=np.int64)] = -np.inf
        k = min(k, len(scores))
        if k <= 0:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best], kind="stable")]
        best = best[np.isfinite(scores[best])]
        return best, scores[best]

    # ----- similar homes

    def similar_rows(self, listing_id, frame=None):
        """Rows of the homes most similar to `listing_id`, best first (a new listing is encoded now)."""
        row = self.index.get(int(listing_id))
        if row is not None:
            found = self.neighbours[row]
            return found[found >= 0]
        if frame is None or not len(frame):
            return np.zeros(0, np.int64)
        vector = self.encoder.transform(frame)[0]
        key = (frame.listing_type[0], frame.city[0])
        group = self.group_keys.get(key)
        candidates = (np.flatnonzero(self.group == group) if group is not None
                      else np.flatnonzero(self.listing_type == frame.listing_type[0]))
        if not len(candidates):
            return np.zeros(0, np.int64)
        scores = self.content[candidates] @ vector
        order = np.argsort(-scores)[:NEIGHBOURS]
        return candidates[order]


def _neighbours(content, group, k=NEIGHBOURS, chunk=1024):
    """For each row, the k most content-similar rows of the same group (−1 padded)."""
    n = len(group)
    out = np.full((n, k), -1, dtype=np.int32)
    order = np.argsort(group, kind="stable")
    bounds = np.flatnonzero(np.diff(group[order])) + 1
    for members in np.split(order, bounds):
        vectors = content[members]
        for start in range(0, len(members), chunk):
            block = vectors[start:start + chunk] @ vectors.T
            for i in range(block.shape[0]):
                block[i, start + i] = -np.inf
            take = min(k, len(members) - 1)
            if take <= 0:
                continue
            best = np.argpartition(-block, take - 1, axis=1)[:, :take]
            best_scores = np.take_along_axis(block, best, axis=1)
            ranked = np.take_along_axis(best, np.argsort(-best_scores, axis=1), axis=1)
            out[members[start:start + chunk], :take] = members[ranked]
    return out


def _matrix(log, item_ids):
    """The users × items matrix of log1p(summed weights clipped at 0), and the user keys.

    `item_ids` is sorted (listings are loaded by id), so rows are found by binary search.
    """
    position = np.searchsorted(item_ids, log.listing)
    known = position < len(item_ids)
    known[known] = item_ids[position[known]] == log.listing[known]
    log = log.subset(known)
    users, user_rows = np.unique(log.who, return_inverse=True)
    matrix = sp.coo_matrix((log.weight, (user_rows, position[known])), shape=(len(users), len(item_ids))).tocsr()
    matrix.sum_duplicates()
    matrix.data = np.log1p(np.clip(matrix.data, 0, None)).astype(np.float32)
    matrix.eliminate_zeros()
    return matrix.astype(np.float32), users


def _factorise(matrix, factors, random_state=0):
    k = min(factors, matrix.shape[0] - 1, matrix.shape[1] - 1)
    if k < 2 or matrix.nnz == 0:
        return None
    svd = TruncatedSVD(n_components=k, algorithm="randomized", n_iter=5, random_state=random_state)
    svd.fit(matrix)
    return svd.components_.T.astype(np.float32)


def _popularity(matrix):
    counts = np.asarray(matrix.sum(axis=0)).ravel().astype(np.float32)
    peak = counts.max() if len(counts) else 0
    return counts / peak if peak > 0 else counts


@dataclass
class ContentBase:
    """What depends on the listings only: computed once per training run, shared by the fits."""

    frame: ListingFrame
    encoder: ContentEncoder
    content: np.ndarray
    group: np.ndarray
    group_keys: dict
    neighbours: np.ndarray


def content_base(frame, *, random_state=0):
    encoder = ContentEncoder(random_state=random_state).fit(frame)
    content = encoder.transform(frame)
    keys = list(zip(frame.listing_type.tolist(), frame.city.tolist(), strict=True))
    group_keys = {}
    group = np.array([group_keys.setdefault(key, len(group_keys)) for key in keys], dtype=np.int32)
    neighbours = _neighbours(content, group)
    return ContentBase(frame, encoder, content, group, group_keys, neighbours)


def fit(base, log, *, factors=48, blend=None, version="", trained_at=None, random_state=0):
    """A Recommender on the interactions `log` over the listings of `base`.

    `blend` (a_cf, a_content, a_pop) defaults to the one tuned on a time split of `log`.
    """
    frame = base.frame
    matrix, _users = _matrix(log, frame.ids)
    model = Recommender(
        version=version, trained_at=trained_at or time.time(), item_ids=frame.ids, content=base.content,
        factors=_factorise(matrix, factors, random_state), popularity=_popularity(matrix),
        blend=blend or (0.5, 0.5, 0.3),
        encoder=base.encoder, listing_type=frame.listing_type, price=frame.price, lat=frame.lat, lng=frame.lng,
        property_type=frame.property_type, group=base.group, group_keys=base.group_keys,
        neighbours=base.neighbours, popular_order=np.zeros(0, np.int64), active=frame.active)
    order = np.argsort(-model.popularity, kind="stable")
    model.popular_order = order[(model.popularity[order] > 0) & frame.active[order]][:1000]
    if blend is None and len(log):
        model.blend, model.metrics["validation"] = tune_blend(base, log, factors=factors, random_state=random_state)
    return model


# --- evaluation ---------------------------------------------------------------------------------

def time_split(log, share=0.2):
    """(train, test) at the time quantile that leaves `share` of the interactions for the test."""
    if not len(log):
        return log, log
    cutoff = float(np.quantile(log.time, 1 - share))
    return log.subset(log.time < cutoff), log.subset(log.time >= cutoff)


def test_cases(model, train, test, *, max_users=2000, seed=0):
    """[(user, train listing ids, train weights, relevant rows)] for users seen before and after the
    split whose later positive interactions are with listings new to them."""
    by_user_train = {}
    for who, listing, weight in zip(train.who.tolist(), train.listing.tolist(), train.weight.tolist(), strict=True):
        entry = by_user_train.setdefault(who, ([], []))
        entry[0].append(listing)
        entry[1].append(weight)
    relevant = {}
    for who, listing, weight in zip(test.who.tolist(), test.listing.tolist(), test.weight.tolist(), strict=True):
        if weight > 0 and who in by_user_train:
            relevant.setdefault(who, set()).add(listing)
    cases = []
    for who in sorted(relevant):
        listings, weights = by_user_train[who]
        seen = set(listings)
        rows = {model.index[i] for i in relevant[who] - seen if i in model.index}
        if rows:
            cases.append((who, listings, weights, rows))
    if len(cases) > max_users:
        rng = np.random.default_rng(seed)
        cases = [cases[i] for i in sorted(rng.choice(len(cases), max_users, replace=False))]
    return cases


def ranking_metrics(recommended, relevant, k=10):
    hits = [1.0 if row in relevant else 0.0 for row in recommended[:k]]
    dcg = sum(hit / math.log2(position + 2) for position, hit in enumerate(hits))
    ideal = sum(1 / math.log2(position + 2) for position in range(min(len(relevant), k)))
    return sum(hits) / k, sum(hits) / len(relevant), dcg / ideal if ideal else 0.0


def evaluate(model, cases, *, k=10, blend=None, popularity_only=False, catalogue=None):
    """precision@k, recall@k, NDCG@k and catalogue coverage over the test cases."""
    totals = np.zeros(3)
    shown = set()
    for _who, listings, weights, relevant in cases:
        rows, values, seen = model.user_vector(listings, weights)
        scores = model.popularity if popularity_only else model.score(rows, values, blend)
        best, _scores = model.top(scores, exclude=seen, k=k)
        totals += ranking_metrics(best.tolist(), relevant, k)
        shown.update(best.tolist())
    count = max(len(cases), 1)
    size = catalogue if catalogue is not None else len(model.item_ids)
    return {"users": len(cases), f"precision@{k}": totals[0] / count, f"recall@{k}": totals[1] / count,
            f"ndcg@{k}": totals[2] / count, "coverage": len(shown) / size if size else 0.0}


def tune_blend(base, log, *, factors, random_state=0, max_users=300):
    """The blend with the best NDCG@10 on the last 20 % (by time) of `log`, fitted on the rest."""
    inner_train, validation = time_split(log, 0.2)
    inner = fit(base, inner_train, factors=factors, blend=(1, 1, 1), random_state=random_state)
    cases = test_cases(inner, inner_train, validation, max_users=max_users, seed=random_state)
    if not cases:
        return (0.5, 0.5, 0.3), {}
    parts = []
    for _who, listings, weights, relevant in cases:
        rows, values, seen = inner.user_vector(listings, weights)
        parts.append((inner.parts(rows, values), seen, relevant))
    results = {}
    for blend in BLEND_GRID:
        total = 0.0
        for (cf, content, popularity), seen, relevant in parts:
            scores = blend[0] * cf + blend[1] * content + blend[2] * popularity
            best, _ = inner.top(scores, exclude=seen, k=10)
            total += ranking_metrics(best.tolist(), relevant)[2]
        results[blend] = total / len(parts)
    best = max(results, key=lambda b: (results[b], -sum(b)))
    return best, {"users": len(parts), "ndcg@10": results[best],
                  "grid": {f"{a}/{b}/{c}": round(v, 4) for (a, b, c), v in results.items()}}
