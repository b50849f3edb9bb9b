"""Demo accounts and demo listings for a local site. Safe to run again.

The listings come from `listings.demo`: deterministic for a seed, written with bulk inserts in
one transaction. Bulk seeding publishes no per-listing events (`listing.published` and the
like): search indexing reconciles from the table instead of replaying the seed.
"""

import secrets
import sys
import time
from functools import cache

from allauth.account.models import EmailAddress
from django.contrib.auth.hashers import make_password
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.db.models import ProtectedError, RestrictedError
from django.utils import timezone
from tqdm import tqdm

from accounts import services
from accounts.models import AgentProfile, User
from listings import demo

DEMO_PASSWORD = "realio-demo"  # noqa: S105 (printed by make run; local demo only)
DEMO_DOMAIN = "demo.realio"
DEMO_USERS = [
    ("customer@demo.realio", User.Role.CUSTOMER, "Casey", "Customer"),
    ("agent@demo.realio", User.Role.AGENT, "Alex", "Agent"),
    ("staff@demo.realio", User.Role.STAFF, "Sam", "Staff"),
]
FIRST_NAMES = ("Léa", "Hugo", "Emma", "Lukas", "Sofia", "Mateo", "Chloé", "Noah", "Giulia", "Jonas", "Inès", "Pablo",
               "Marta", "Louis", "Anna", "Tomás", "Olivia", "Finn", "Alice", "Marco", "Zoé", "Daan", "Clara", "Elias")
LAST_NAMES = ("Martin", "Müller", "García", "Rossi", "Silva", "Dubois", "Janssen", "Smith", "Bernard", "Schmidt",
              "Romero", "Bianchi", "Peeters", "Costa", "Wagner", "Moreau", "Jones", "de Vries", "Fontaine", "Huber")


class Command(BaseCommand):
    help = (
        "Create the demo accounts (password realio-demo) and demo listings: agent@, customer@ and staff@demo.realio, "
        "more agents and customers as agent1@demo.realio, customer1@demo.realio …, and listings in twenty real cities "
        "with photos, price history and favorites, deterministic for --seed. Safe to run again: listings are skipped "
        "when demo listings exist (--reset replaces them). Bulk seeding publishes no per-listing events; search "
        "indexing reconciles later."
    )

    def add_arguments(self, parser):
        parser.add_argument("--listings", type=int, default=300, help="demo listings to create (default 300)")
        parser.add_argument("--agents", type=int, default=8,
                            help="agents in all, agent@demo.realio included (default 8)")
        parser.add_argument("--customers", type=int, default=20,
                            help="customers in all, customer@demo.realio included (default 20)")
        parser.add_argument("--seed", type=int, default=42, help="random seed (default 42)")
        parser.add_argument("--reset", action="store_true", help="delete the demo listings first, then seed again")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar")

    def handle(self, *args, **options):
        count, agent_count, customer_count = options["listings"], options["agents"], options["customers"]
        if count < 0 or agent_count < 1 or customer_count < 1:
            raise CommandError("--listings must be ≥ 0, --agents and --customers ≥ 1.")
        started = time.monotonic()
        agents, customers = self.ensure_accounts(agent_count=agent_count, customer_count=customer_count)

        existing = demo.demo_listings().count()
        if existing and options["reset"]:
            self.stdout.write(f"Deleting {existing:,} demo listings …")
            try:
                demo.delete_demo_listings()
            except (ProtectedError, RestrictedError) as exc:
                raise CommandError(f"Some demo listings have records that must be kept ({exc.args[0]}); "
                                   "delete those first.") from exc
            existing = 0
        if existing:
            self.stdout.write(f"{existing:,} demo listings already present: none added (--reset replaces them).")
        elif count:
            show = not options["no_progress"] and options["verbosity"] > 0
            with tqdm(total=count, unit=" listings", disable=not show, file=sys.stderr, mininterval=0.5,
                      smoothing=0.1) as bar:
                summary = demo.seed_listings(agents=agents, customers=customers, count=count, seed=options["seed"],
                                             progress=bar.update)
            self.report(summary)
            # Bulk seeding publishes no per-listing events: the keyword vocabulary (typo
            # tolerance) is refreshed here instead.
            from realio.cache import bump
            from search.services import vocabulary_refresh

            self.stdout.write(f"  {vocabulary_refresh():,} new search terms.")
            bump("listings")  # cached search results predate these listings
            # Interactions from hidden tastes, for the recommender and its evaluation.
            call_command("seed_interactions", seed=options["seed"], reset=True, stdout=self.stdout)
        self.stdout.write(f"Done in {time.monotonic() - started:.1f} s.")
        more = [f"{role}1…{role}{n - 1}@{DEMO_DOMAIN}" if n > 2 else f"{role}1@{DEMO_DOMAIN}"
                for role, n in (("agent", agent_count), ("customer", customer_count)) if n > 1]
        self.stdout.write(self.style.SUCCESS(
            f"Demo logins (password {DEMO_PASSWORD!r}): customer@demo.realio, agent@demo.realio, "
            f"staff@demo.realio (admin: /admin/)" + (f"; also {' and '.join(more)}." if more else ".")))

    def report(self, summary):
        rate = summary.listings / summary.seconds if summary.seconds else 0
        self.stdout.write(
            f"Created {summary.listings:,} listings ({rate:,.0f}/s), {summary.photos:,} photos, "
            f"{summary.price_changes:,} prices in their history, {summary.favorites:,} favorites "
            f"in {summary.seconds:.1f} s; {summary.photos_made} pool photos drawn.")
        statuses = ", ".join(f"{status} {n:,}" for status, n in summary.statuses.most_common())
        cities = ", ".join(f"{city} {n:,}" for city, n in summary.cities.most_common())
        self.stdout.write(f"  by status: {statuses}")
        self.stdout.write(f"  by city: {cities}")

    @transaction.atomic
    def ensure_accounts(self, *, agent_count, customer_count):
        """The three demo logins through the account services, the extra ones in bulk.

        Returns (agent ids, customer ids), agent@ and customer@demo.realio first. One password
        hash serves every demo account: hashing is slow on purpose, and these are demo logins.
        """
        password = cache(lambda: make_password(DEMO_PASSWORD))  # made only when an account is new
        staff = None
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
                user.password = password()
                user.save(update_fields=["password"])
                self.stdout.write(f"created {role} {email}")
            if role == User.Role.STAFF:
                staff = user

        wanted = ([(f"agent{n}@{DEMO_DOMAIN}", User.Role.AGENT, n) for n in range(1, agent_count)]
                  + [(f"customer{n}@{DEMO_DOMAIN}", User.Role.CUSTOMER, n) for n in range(1, customer_count)])
        present = set(User.objects.filter(email__in=[email for email, _role, _n in wanted])
                      .values_list("email", flat=True))
        new = [User(email=email, role=role, password=password(), is_staff=role == User.Role.AGENT,
                    first_name=FIRST_NAMES[(n * 7 + (role == User.Role.AGENT)) % len(FIRST_NAMES)],
                    last_name=LAST_NAMES[(n * 11 + 3 * (role == User.Role.AGENT)) % len(LAST_NAMES)],
                    time_zone=demo.CITIES[n % len(demo.CITIES)].time_zone if role == User.Role.AGENT else "UTC")
               for email, role, n in wanted if email not in present]
        if new:
            User.objects.bulk_create(new)
            EmailAddress.objects.bulk_create(
                [EmailAddress(user=user, email=user.email, primary=True, verified=True) for user in new])
            new_agents = [user for user in new if user.role == User.Role.AGENT]
            AgentProfile.objects.bulk_create([AgentProfile(user=user, agency="Realio Demo Homes")
                                              for user in new_agents])
            group = services.agents_group()
            User.groups.through.objects.bulk_create(
                [User.groups.through(user_id=user.pk, group_id=group.pk) for user in new_agents])
            self.stdout.write(f"created {len(new_agents)} more agents and {len(new) - len(new_agents)} more customers")
        # Demo agents may publish where AGENT_VERIFICATION_REQUIRED is on.
        AgentProfile.objects.filter(user__email__endswith=f"@{DEMO_DOMAIN}", verified_at__isnull=True).update(
            verified_at=timezone.now(), verified_by=staff)

        by_email = dict(User.objects.filter(email__endswith=f"@{DEMO_DOMAIN}").values_list("email", "pk"))
        agents = [by_email[f"agent@{DEMO_DOMAIN}"]] + [by_email[f"agent{n}@{DEMO_DOMAIN}"]
                                                        for n in range(1, agent_count)]
        customers = [by_email[f"customer@{DEMO_DOMAIN}"]] + [by_email[f"customer{n}@{DEMO_DOMAIN}"]
                                                              for n in range(1, customer_count)]
        return agents, customers
