"""Transport for recommendations: training runs (beat and on demand) and candidate refreshes."""

from celery import shared_task

from recommendations import serving, training, valuation


@shared_task(name="recommendations.train", acks_late=False, time_limit=3 * 3600, soft_time_limit=3 * 3600 - 60)
def train():
    row = training.train_recommender()
    if row.status == "promoted":
        warm_bodies.delay()
    return {"version": row.version, "status": row.status}


@shared_task(name="recommendations.warm_bodies", acks_late=True, time_limit=1800, soft_time_limit=1700)
def warm_bodies():
    return serving.warm_all_bodies()


@shared_task(name="recommendations.train_valuation", acks_late=False, time_limit=3600, soft_time_limit=3500)
def train_valuation():
    rows = valuation.train_valuation()
    return {row.version: row.status for row in rows}


@shared_task(name="recommendations.refresh_user", acks_late=True)
def refresh_user(user_id):
    serving.refresh_user(user_id)
