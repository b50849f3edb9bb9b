"""PostgreSQL restarted under a running web server: /readyz says 503 while it is down, and the
site comes back by itself (no process restarted) once it is up again."""

import pytest
import requests

from tests.faults.conftest import wait_until

pytestmark = pytest.mark.faults


def test_readyz_is_503_while_postgres_is_down_and_the_site_recovers_by_itself(stack):
    # given: gunicorn (two workers, each with its connection pool) serving and ready
    stack.web(workers=2)
    # (a probe may be a worker's first request, before anything opened its connection pool)
    assert [requests.get(stack.url("/readyz"), timeout=120).status_code for _ in range(4)] == [200] * 4
    token = stack.token("customer1@demo.realio")
    headers = {"Authorization": f"Bearer {token}"}
    for _ in range(6):  # both workers have pooled connections to the server that will restart
        assert requests.get(stack.url("/api/v1/favorites/"), headers=headers, timeout=30).status_code == 200

    # when: PostgreSQL stops
    stack.postgres.stop()

    # then: readiness says so, naming the database, while Redis stays fine
    down = [requests.get(stack.url("/readyz"), timeout=60) for _ in range(4)]
    assert [r.status_code for r in down] == [503] * 4, stack.logs()
    body = down[-1].json()
    assert body["checks"]["database"].startswith("down")
    assert body["checks"]["redis"] == "ok"
    assert "database" in body["detail"]
    assert requests.get(stack.url("/healthz"), timeout=30).status_code == 200  # alive: no restart wanted
    # and the API says 503 (retry), not 500
    unavailable = requests.get(stack.url("/api/v1/favorites/"), headers=headers, timeout=60)
    assert unavailable.status_code == 503, unavailable.text
    assert unavailable.json()["detail"]

    # when: it is started again (same port, same data)
    stack.postgres.start()

    # then: the same processes answer again, every worker, without a restart
    wait_until(lambda: requests.get(stack.url("/readyz"), timeout=60).status_code == 200, timeout=90,
               interval=0.5, what="/readyz to answer 200 after the restart")
    # /readyz may be answered by the worker that reconnected first while the other's pool is
    # still in its reconnect backoff: wait for ten answers in a row from the API, both workers'.
    def ten_in_a_row():
        return all(requests.get(stack.url("/api/v1/favorites/"), headers=headers, timeout=30).status_code == 200
                   for _ in range(10))

    wait_until(ten_in_a_row, timeout=60, interval=1, what="every worker to answer 200 after the restart")
    assert all(p.process.poll() is None for p in stack.processes)
