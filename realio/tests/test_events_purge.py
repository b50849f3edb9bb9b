"""Delivered events are purged after the retention period; pending and failed ones stay."""

from datetime import timedelta

import pytest
from django.utils import timezone

from realio import events
from realio.models import HandlerRun, OutboxEvent

pytestmark = pytest.mark.django_db


def test_purge_keeps_what_is_not_delivered_or_recent():
    old = timezone.now() - timedelta(days=30)
    delivered_old = OutboxEvent.objects.create(type="t.a", delivered_at=old, relayed_at=old)
    delivered_new = OutboxEvent.objects.create(type="t.b", delivered_at=timezone.now(), relayed_at=old)
    pending = OutboxEvent.objects.create(type="t.c", relayed_at=old)
    failed = OutboxEvent.objects.create(type="t.d", relayed_at=old)
    HandlerRun.objects.create(event=failed, handler="x.y", status=HandlerRun.Status.FAILED)

    assert events.purge(older_than_days=14, batch_size=1) == 1

    assert set(OutboxEvent.objects.values_list("pk", flat=True)) == {delivered_new.pk, pending.pk, failed.pk}
    assert not OutboxEvent.objects.filter(pk=delivered_old.pk).exists()
