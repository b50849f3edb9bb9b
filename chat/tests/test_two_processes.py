"""Two real server processes (uvicorn, the test settings, the test database and the test Redis
databases) sharing the Redis channel layer: a message sent by a client of one reaches a client
of the other, over the socket and from the REST API."""

import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from rest_framework_simplejwt.tokens import RefreshToken
from websockets.asyncio.client import connect

from chat.models import Message
from chat.tests.factories import ConversationFactory

pytestmark = pytest.mark.django_db(transaction=True)
ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def database_url_of_this_run():
    """DATABASE_URL pointing at this run's test database (committed rows are visible there)."""
    from django.db import connection

    parts = urlsplit(os.environ.get("DATABASE_URL") or "postgis://postgres@127.0.0.1:55432/realio")
    return urlunsplit((parts.scheme, parts.netloc, f"/{connection.settings_dict['NAME']}", parts.query, ""))


class Server:
    def __init__(self, tmp_path, name):
        self.port = free_port()
        self.log = open(tmp_path / f"{name}.log", "w+")  # noqa: SIM115 (closed in stop)
        env = {**os.environ, "DJANGO_SETTINGS_MODULE": "realio.settings.test",
               "DATABASE_URL": database_url_of_this_run(), "DATABASE_POOL_MAX": "4"}
        self.process = subprocess.Popen(  # noqa: S603 (our own application)
            [sys.executable, "-m", "uvicorn", "realio.asgi:application", "--host", "127.0.0.1", "--port",
             str(self.port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"server did not start: {self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-3000:]

    @property
    def ws(self):
        return f"ws://127.0.0.1:{self.port}"

    @property
    def http(self):
        return f"http://127.0.0.1:{self.port}"

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self.log.close()


@pytest.fixture
def servers(tmp_path):
    pair = [Server(tmp_path, "one"), Server(tmp_path, "two")]
    try:
        for server in pair:
            server.wait()
        yield pair
    finally:
        for server in pair:
            server.stop()


def headers(server, token):
    return {"Authorization": f"Bearer {token}", "Origin": server.http}


async def next_frame(ws, frame_type, timeout=10):
    while True:
        frame = json.loads(await asyncio.wait_for(ws.recv(), timeout))
        if frame["type"] == frame_type:
            return frame


def test_a_message_crosses_from_one_server_process_to_the_other(servers):
    one, two = servers
    conversation = ConversationFactory()
    customer_token = str(RefreshToken.for_user(conversation.customer).access_token)
    agent_token = str(RefreshToken.for_user(conversation.agent).access_token)
    path = f"/ws/chat/{conversation.pk}/"

    async def scenario():
        async with connect(one.ws + path, additional_headers=headers(one, customer_token)) as customer, \
                connect(two.ws + path, additional_headers=headers(two, agent_token)) as agent:
            await next_frame(customer, "presence")
            await next_frame(agent, "presence")
            # Presence crosses too: the customer (on one) learns the agent (on two) arrived.
            arrived = await next_frame(customer, "presence")

            await customer.send(json.dumps({"type": "message", "body": "Hello from process one", "client_id": "p1"}))
            on_two = await next_frame(agent, "message")
            await agent.send(json.dumps({"type": "message", "body": "Answer from process two", "client_id": "p2"}))
            on_one = await next_frame(customer, "message")  # its own message first, then the answer
            while on_one["message"]["client_id"] != "p2":
                on_one = await next_frame(customer, "message")

            # The REST API of process one reaches the socket on process two.
            async with httpx.AsyncClient(base_url=one.http) as http:
                response = await http.post(f"/api/v1/conversations/{conversation.pk}/messages/",
                                           json={"body": "Through the API of one"},
                                           headers={"Authorization": f"Bearer {customer_token}"})
            from_api = await next_frame(agent, "message")
            while from_api["message"]["body"] != "Through the API of one":
                from_api = await next_frame(agent, "message")
            return arrived, on_two, on_one, response, from_api

    arrived, on_two, on_one, response, from_api = asyncio.run(scenario())

    assert arrived == {"type": "presence", "user_id": conversation.agent_id, "online": True}
    assert on_two["message"]["body"] == "Hello from process one"
    assert on_two["message"]["sender"]["id"] == conversation.customer_id
    assert on_one["message"]["body"] == "Answer from process two"
    assert response.status_code == 201
    assert from_api["message"]["id"] == response.json()["id"]
    assert list(Message.objects.order_by("id").values_list("body", flat=True)) == [
        "Hello from process one", "Answer from process two", "Through the API of one"]
