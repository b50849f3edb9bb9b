"""Demo interactions of the demo customers, drawn from hidden tastes (recommendations.demo)."""

from django.core.management.base import BaseCommand

from recommendations import demo
from recommendations.models import Interaction


class Command(BaseCommand):
    help = ("Generate interactions for the demo customers (…@demo.realio) from hidden tastes (an area, a price "
            "band, property types), so that evaluate_recommendations has something to find. Skipped when they "
            "already have interactions unless --reset.")

    def add_arguments(self, parser):
        parser.add_argument("--per-user", type=int, default=40, help="interactions per customer on average (40)")
        parser.add_argument("--days", type=int, default=90, help="spread over this many past days (90)")
        parser.add_argument("--seed", type=int, default=42)
        parser.add_argument("--reset", action="store_true", help="delete the demo customers' interactions first")

    def handle(self, *args, **options):
        customers = demo.demo_customers()
        existing = Interaction.objects.filter(user_id__in=customers)
        if options["reset"]:
            existing.delete()
        elif existing.exists():
            self.stdout.write("Demo customers already have interactions: none added (--reset replaces them).")
            return
        count = demo.seed_interactions(customers=customers, seed=options["seed"], per_user=options["per_user"],
                                       days=options["days"])
        self.stdout.write(f"Created {count:,} interactions for {len(customers):,} demo customers.")
