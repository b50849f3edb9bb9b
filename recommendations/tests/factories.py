"""Small worlds for recommendation tests: demo listings, customers, interactions from hidden tastes."""

from django.contrib.gis.geos import Point
from django.utils import timezone

from accounts.models import User
from accounts.tests.factories import AgentFactory
from listings import demo as listing_demo
from listings.tests.factories import ListingFactory
from recommendations import demo
from recommendations.models import Interaction

PARIS = Point(2.3522, 48.8566, srid=4326)
BERLIN = Point(13.4050, 52.5200, srid=4326)
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def customers(count, prefix="taste"):
    User.objects.bulk_create([User(email=f"{prefix}{n}@example.com", role=User.Role.CUSTOMER) for n in range(count)])
    return list(User.objects.filter(email__startswith=prefix).order_by("pk").values_list("pk", flat=True))


def seeded_world(*, listings=400, users=80, per_user=30, seed=3):
    """Demo listings over twenty cities and interactions drawn from hidden tastes."""
    agent = AgentFactory()
    listing_demo.seed_listings(agents=[agent.pk], count=listings, seed=seed)
    people = customers(users)
    demo.seed_interactions(customers=people, seed=seed, per_user=per_user)
    return people


def interact(user, listing, kind="view", *, when=None):
    from django.conf import settings

    return Interaction.objects.create(user=user, listing=listing, kind=kind, weight=settings.RECO_WEIGHTS[kind],
                                      created_at=when or timezone.now())


def homes(n, *, where=PARIS, city="Paris", **fields):
    """`n` active homes around `where`, each on its own street."""
    out = []
    for i in range(n):
        point = Point(where.x + 0.002 * (i % 7), where.y + 0.002 * (i // 7), srid=4326)
        street = f"{i + 1} {city} street {LETTERS[i % 26]}{LETTERS[i // 26]}"  # a name of its own, not a number
        out.append(ListingFactory(location=point, city=city, street=street, **fields))
    return out
