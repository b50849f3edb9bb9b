"""Celery is wired from Django settings: Redis broker, JSON, acks_late, one queue per kind of work."""

from realio.celery import app


def test_broker_serialisation_and_reliability_settings(settings):
    assert app.conf.broker_url == settings.CELERY_BROKER_URL
    assert app.conf.broker_url.startswith("redis://")
    assert app.conf.task_serializer == "json" and app.conf.accept_content == ["json"]
    assert app.conf.task_acks_late and app.conf.task_reject_on_worker_lost
    assert app.conf.task_time_limit and app.conf.task_soft_time_limit < app.conf.task_time_limit
    assert app.conf.beat_scheduler == "django_celery_beat.schedulers:DatabaseScheduler"


def test_tasks_route_to_their_queue():
    router = app.amqp.router
    assert router.route({}, "notifications.send_delivery")["queue"].name == "notifications"
    assert router.route({}, "recommendations.train")["queue"].name == "ml"
    assert router.route({}, "search.index_listing")["queue"].name == "search"
    assert router.route({}, "realio.relay_event")["queue"].name == "default"


def test_redis_roles_use_distinct_databases(settings):
    locations = {settings.CACHES["default"]["LOCATION"], settings.CHANNEL_LAYERS["default"]["CONFIG"]["hosts"][0],
                 settings.CELERY_BROKER_URL}
    assert len(locations) == 3
