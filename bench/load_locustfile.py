"""The users bench/load.py runs with locust (headless, one process). Data (listing ids, access
tokens, conversations) come from the JSON file named by LOAD_DATA, written by bench/load.py.

- HelloUser: the floor, `GET /bench/hello/` (bench-only URLconf) as fast as it answers;
- DetailUser: `GET /api/v1/listings/{id}/` as fast as it answers (compared with the floor);
- Visitor (anonymous): search, listing detail (API) and the listing's page;
- Customer (JWT): favorites (list, add, remove), viewing slots and booking requests;
- Chatter (JWT, websocket through the proxy's /ws/): a message, timed until it comes back stored.

Every 5xx is a failure named "5xx"; 409 (slot taken, already a favorite) and 400 (a slot gone
meanwhile) are normal answers under load.
"""

import datetime as dt
import json
import os
import random
import time
import uuid

import websocket
from locust import FastHttpUser, User, between, constant, task

DATA = json.loads(open(os.environ["LOAD_DATA"]).read())  # noqa: SIM115 (read once at start)
WORDS = ["garden", "balcony", "apartment", "house", "quiet", "bright", "terrace", "renovated", "view", "garage"]
CITIES = [(48.8566, 2.3522), (45.7640, 4.8357), (52.5200, 13.4050), (40.4168, -3.7038), (51.5074, -0.1278)]


def check(response, ok=(200,)):
    if response.status_code in ok:
        response.success()
    elif response.status_code >= 500 or response.status_code == 0:
        response.failure(f"5xx ({response.status_code})" if response.status_code else "no answer")
    else:
        response.failure(f"unexpected {response.status_code}")


class HelloUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def hello(self):
        with self.client.get("/bench/hello/", name="floor: /bench/hello/", catch_response=True) as response:
            check(response)


class DetailUser(FastHttpUser):
    wait_time = constant(0)

    @task
    def detail(self):
        listing = random.choice(DATA["hot"])
        with self.client.get(f"/api/v1/listings/{listing}/", name="/api/v1/listings/[id]/",
                             catch_response=True) as response:
            check(response)


class Visitor(FastHttpUser):
    weight = 6
    wait_time = constant(0)

    @task(3)
    def search(self):
        lat, lng = random.choice(CITIES)
        params = random.choice([
            {"q": random.choice(WORDS)},
            {"q": random.choice(WORDS), "lat": lat, "lng": lng, "radius_km": 5,
             "max_price": random.choice([300_000, 500_000, 900_000])},
            {"listing_type": random.choice(["sale", "rent"]), "min_beds": random.choice([1, 2, 3])},
            {"bbox": f"{lng - 0.1:.3f},{lat - 0.1:.3f},{lng + 0.1:.3f},{lat + 0.1:.3f}", "sort": "newest"},
        ])
        query = "&".join(f"{key}={value}" for key, value in params.items())
        with self.client.get(f"/api/v1/search/?{query}", name="/api/v1/search/", catch_response=True) as response:
            check(response)

    @task(4)
    def detail(self):
        listing = random.choice(DATA["listings"])
        with self.client.get(f"/api/v1/listings/{listing}/", name="/api/v1/listings/[id]/",
                             catch_response=True) as response:
            check(response)

    @task(2)
    def page(self):
        listing = random.choice(DATA["listings"])
        with self.client.get(f"/listings/{listing}/", name="/listings/[id]/ (page)", catch_response=True) as response:
            check(response)


class Customer(FastHttpUser):
    weight = 3
    wait_time = constant(0)

    def on_start(self):
        self.headers = {"Authorization": f"Bearer {random.choice(DATA['tokens'])}"}

    @task(2)
    def favorites(self):
        with self.client.get("/api/v1/favorites/", headers=self.headers, name="/api/v1/favorites/",
                             catch_response=True) as response:
            check(response)

    @task(2)
    def favorite_toggle(self):
        listing = random.choice(DATA["listings"])
        with self.client.post("/api/v1/favorites/", json={"listing": listing}, headers=self.headers,
                              name="/api/v1/favorites/ POST", catch_response=True) as response:
            check(response, ok=(200, 201, 409))
        with self.client.delete(f"/api/v1/favorites/{listing}/", headers=self.headers,
                                name="/api/v1/favorites/[id]/ DELETE", catch_response=True) as response:
            check(response, ok=(204, 404))

    @task(1)
    def book(self):
        listing = random.choice(DATA["listings"])
        day = dt.date.today() + dt.timedelta(days=random.randint(3, 40))
        with self.client.get(f"/api/v1/listings/{listing}/slots/?date={day}", headers=self.headers,
                             name="/api/v1/listings/[id]/slots/", catch_response=True) as response:
            check(response)
            slots = response.json()["slots"] if response.status_code == 200 else []
        if slots:
            start = random.choice(slots)["start"]
            with self.client.post("/api/v1/bookings/", json={"listing": listing, "start": start},
                                  headers=self.headers, name="/api/v1/bookings/ POST", catch_response=True) as response:
                check(response, ok=(201, 400, 409))


class Chatter(User):
    """A customer in one of their conversations, on a websocket through the proxy."""

    weight = 1
    wait_time = between(0.5, 1.5)

    def on_start(self):
        conversation, token = random.choice(DATA["conversations"])
        host = self.host.split("://", 1)[1]
        self.socket = websocket.create_connection(
            f"ws://{host}/ws/chat/{conversation}/", header=[f"Authorization: Bearer {token}"],
            origin=self.host, timeout=30)

    def on_stop(self):
        self.socket.close()

    @task
    def message(self):
        client_id = uuid.uuid4().hex
        started = time.perf_counter()
        exception = None
        try:
            self.socket.send(json.dumps({"type": "message", "body": "Is it still available?",
                                         "client_id": client_id}))
            while True:
                frame = json.loads(self.socket.recv())
                if frame.get("type") == "message" and frame["message"].get("client_id") == client_id:
                    break
                if frame.get("type") == "error":
                    raise RuntimeError(f"error frame {frame.get('status')}: {frame.get('detail')}")
        except Exception as exc:  # reported to locust as this request's failure
            exception = exc
        self.environment.events.request.fire(
            request_type="WS", name="ws /ws/chat/[id]/ message (stored and back)",
            response_time=(time.perf_counter() - started) * 1000, response_length=0, exception=exception,
            context={})
