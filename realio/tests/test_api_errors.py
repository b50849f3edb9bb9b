"""The error shape of DESIGN.md section 5, from the one exception handler."""

import pytest
from django.db import IntegrityError, connection, transaction
from rest_framework import serializers
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from accounts.tests.factories import UserFactory
from realio.api import AwareDateTimeField, exception_handler
from realio.errors import Conflict, NotFound, register_constraint_message


def handle(exc):
    request = APIRequestFactory().get("/api/v1/x/")
    return exception_handler(exc, {"view": APIView(), "request": request})


@pytest.mark.parametrize(("exc", "status"), [(Conflict("taken"), 409), (NotFound(), 404)])
def test_application_errors_become_detail_with_their_status(exc, status):
    response = handle(exc)

    assert response.status_code == status
    assert isinstance(response.data["detail"], str)


def test_validation_errors_carry_field_errors():
    response = handle(serializers.ValidationError({"price": ["Must be positive."]}))

    assert response.status_code == 400
    assert response.data == {"detail": "price: Must be positive.", "errors": {"price": ["Must be positive."]}}


@pytest.mark.django_db
def test_integrity_error_of_a_named_constraint_is_409_with_its_message():
    register_constraint_message("accounts_user_role_valid", "That role does not exist.")
    user = UserFactory()
    with pytest.raises(IntegrityError) as caught, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("UPDATE accounts_user SET role = 'wizard' WHERE id = %s", [user.pk])

    response = handle(caught.value)

    assert response.status_code == 409
    assert response.data == {"detail": "That role does not exist."}


@pytest.mark.parametrize("value", ["2026-05-01T10:00:00", "2026-05-01 10:00"])
def test_datetimes_without_offset_are_refused(value):
    field = AwareDateTimeField()

    with pytest.raises(serializers.ValidationError):
        field.run_validation(value)


@pytest.mark.parametrize("value", ["2026-05-01T10:00:00Z", "2026-05-01T10:00:00+02:00", "2026-05-01T10:00:00-05:00"])
def test_datetimes_with_offset_are_accepted(value):
    assert AwareDateTimeField().run_validation(value).tzinfo is not None
