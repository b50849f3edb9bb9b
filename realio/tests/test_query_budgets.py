"""Query budgets: the main pages and the API lists run a bounded number of queries, the same
for 3 items as for 30 (no query per item: N+1 regressions fail here)."""

import datetime as dt

import pytest
from django.utils import timezone

from accounts.tests.factories import AgentFactory, UserFactory
from bookings.tests.factories import ViewingFactory
from chat.tests.factories import ConversationFactory, MessageFactory
from listings.models import Favorite, ListingPhoto, PriceChange, RecentlyViewed
from listings.tests.factories import ListingFactory
from notifications.models import Notification
from search import services as search_services
from search.query import SearchQuery

pytestmark = pytest.mark.django_db

SIZES = (3, 30)


def homes(n, *, agent=None):
    """`n` active homes of one agent, each with two photos and a price cut."""
    agent = agent or AgentFactory()
    listings = [ListingFactory(agent=agent, title=f"Home {i}") for i in range(n)]
    ListingPhoto.objects.bulk_create([ListingPhoto(listing=listing, image=f"listings/{listing.pk}-{k}.jpg",
                                                   width=640, height=480, position=k)
                                      for listing in listings for k in range(2)])
    PriceChange.objects.bulk_create([PriceChange(listing=listing, price=listing.price + 1000,
                                                 changed_at=timezone.now() - dt.timedelta(days=30))
                                     for listing in listings])
    return listings


def customer_with_favorites(n):
    user = UserFactory()
    listings = homes(n)
    Favorite.objects.bulk_create([Favorite(user=user, listing=listing) for listing in listings])
    RecentlyViewed.objects.bulk_create([RecentlyViewed(user=user, listing=listing, viewed_at=timezone.now())
                                        for listing in listings])
    return user


def customer_with_viewings(n):
    user = UserFactory()
    start = (timezone.now() + dt.timedelta(days=3)).replace(minute=0, second=0, microsecond=0)
    for i, listing in enumerate(homes(n, agent=AgentFactory())):
        at = start + dt.timedelta(hours=i)
        ViewingFactory(listing=listing, customer=user, start=at, end=at + dt.timedelta(minutes=30),
                       blocked_until=at + dt.timedelta(minutes=45))
    return user


def customer_with_conversations(n):
    user = UserFactory()
    for listing in homes(n):
        conversation = ConversationFactory(listing=listing, customer=user)
        MessageFactory(conversation=conversation, sender=user)
        MessageFactory(conversation=conversation, sender=listing.agent)
    return user


def customer_with_notifications(n):
    user = UserFactory()
    Notification.objects.bulk_create([Notification(user=user, kind="listing.price_cut", source=f"test:{i}",
                                                    title=f"Price cut {i}", url="/") for i in range(n)])
    return user


def customer_with_saved_searches(n):
    user = UserFactory()
    for i in range(n):
        search_services.saved_search_create(user=user, name=f"Search {i}", query=SearchQuery.from_params(
            {"q": "flat", "max_price": str(300000 + i)}))
    return user


def anonymous_with_homes(n):
    homes(n)
    return None


def signed_in_with_homes(n):
    return customer_with_favorites(n)


def customer_and_homes(n):
    """A new customer (nothing seen or saved yet) on a site with `n` homes."""
    homes(n)
    return UserFactory()


def listing_with_history(n):
    """One home with `n` photos and `n` prices, its page asked for by a signed-in customer."""
    listing = homes(1)[0]
    ListingPhoto.objects.bulk_create([ListingPhoto(listing=listing, image=f"listings/x-{k}.jpg", width=640,
                                                   height=480, position=k + 2) for k in range(n)])
    PriceChange.objects.bulk_create([PriceChange(listing=listing, price=listing.price + k,
                                                 changed_at=timezone.now() - dt.timedelta(days=60 + k))
                                     for k in range(n)])
    return UserFactory(), listing


# (name, builder of n items → the user (or None), path, text the page shows of its items, budget).
# Budgets are what the page ran when written, plus 2.
PAGES = [
    ("home, anonymous", anonymous_with_homes, "/", "Home 2", 11),
    ("home, signed in", signed_in_with_homes, "/", "Home 2", 10),
    ("search page", anonymous_with_homes, "/search/?page_size={n}", "Home 2", 7),
    ("listing page", listing_with_history, "/listings/{listing}/", "x-2.jpg", 8),
    ("favorites page", customer_with_favorites, "/favorites/", "Home 2", 7),
    ("messages inbox", customer_with_conversations, "/messages/", "Home 2", 7),
    ("bookings page", customer_with_viewings, "/bookings/", "Home 2", 7),
    ("notifications page", customer_with_notifications, "/notifications/", "Price cut 2", 8),
    ("saved searches page", customer_with_saved_searches, "/saved-searches/", "Search 2", 5),
]
# (name, builder, path, budget): budgets as above.
API = [
    ("listings", anonymous_with_homes, "/api/v1/listings/?page_size={n}", 6),
    ("search", anonymous_with_homes, "/api/v1/search/?page_size={n}", 7),
    ("bookings", customer_with_viewings, "/api/v1/bookings/?page_size={n}", 5),
    ("conversations", customer_with_conversations, "/api/v1/conversations/?page_size={n}", 6),
    ("notifications", customer_with_notifications, "/api/v1/notifications/?page_size={n}", 7),
    ("favorites", customer_with_favorites, "/api/v1/favorites/?page_size={n}", 7),
    ("saved searches", customer_with_saved_searches, "/api/v1/saved-searches/?page_size={n}", 5),
    ("recommendations", customer_and_homes, "/api/v1/recommendations/?limit={n}", 9),
]


def _prepare(builder, path, n):
    made = builder(n)
    user, listing = made if isinstance(made, tuple) else (made, None)
    return user, path.format(n=n, listing=listing.pk if listing else "")


def _ask(client, path):
    response = client.get(path)
    assert response.status_code == 200, response.content[:500]
    return response


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("name", "builder", "path", "shows", "budget"), PAGES, ids=[page[0] for page in PAGES])
def test_pages(client, django_assert_max_num_queries, name, builder, path, shows, budget, n):
    user, path = _prepare(builder, path, n)
    if user is not None:
        client.force_login(user)
    _ask(client, path)  # the first request of a session saves it; the budget is for the next ones

    with django_assert_max_num_queries(budget):
        response = _ask(client, path)

    assert shows in response.content.decode()  # the items are really on the page


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize(("name", "builder", "path", "budget"), API, ids=[api[0] for api in API])
def test_api_lists(api_client, auth_client, django_assert_max_num_queries, name, builder, path, budget, n):
    user, path = _prepare(builder, path, n)
    client = auth_client(user) if user is not None else api_client

    with django_assert_max_num_queries(budget):
        response = _ask(client, path)

    body = response.json()
    items = body.get("results", body) if isinstance(body, dict) else body
    assert len(items) >= min(n, 3)  # the list is really there
