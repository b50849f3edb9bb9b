"""Demo accounts (and, as later capabilities land, demo data) for a local site. Idempotent."""

import secrets

from allauth.account.models import EmailAddress
from django.core.management.base import BaseCommand
from django.db import transaction

from accounts import services
from accounts.models import User

DEMO_PASSWORD = "realio-demo"  # noqa: S105 (printed by make run; local demo only)
DEMO_USERS = [
    ("customer@demo.realio", User.Role.CUSTOMER, "Casey", "Customer"),
    ("agent@demo.realio", User.Role.AGENT, "Alex", "Agent"),
    ("staff@demo.realio", User.Role.STAFF, "Sam", "Staff"),
]


class Command(BaseCommand):
    help = "Create the demo accounts (password realio-demo); safe to run again."

    @transaction.atomic
    def handle(self, *args, **options):
        for email, role, first, last in DEMO_USERS:
            user = User.objects.filter(email=email).first()
            if user is None:
                if role == User.Role.STAFF:
                    user = User.objects.create_user(email, role=role, first_name=first, last_name=last,
                                                    is_staff=True)
                    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
                else:
                    # The demo password is too simple for the validators real sign-ups go through.
                    user = services.user_create(email=email, password=secrets.token_urlsafe(24), role=role,
                                                first_name=first, last_name=last)
                    EmailAddress.objects.filter(user=user).update(verified=True)
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
                self.stdout.write(f"created {role} {email}")
        self.stdout.write(self.style.SUCCESS(f"Demo accounts ready (password {DEMO_PASSWORD!r})."))
