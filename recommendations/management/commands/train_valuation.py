"""Train the valuation models now (the beat does it every VALUATION_TRAIN_SECONDS)."""

from django.core.management.base import BaseCommand, CommandError

from recommendations import valuation
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = ("Train the sale and rent price models on closed and listed prices, measure them on a 20 % hold-out, "
            "write the artefact under RECO_MODEL_DIR and promote it unless worse than the serving one there.")

    def add_arguments(self, parser):
        parser.add_argument("--no-promote", action="store_true", help="train and record only")

    def handle(self, *args, **options):
        (row,) = valuation.train_valuation(promote=not options["no_promote"])
        if row.status == ModelVersion.Status.FAILED:
            raise CommandError(f"{row.version} failed: {row.error}")
        parts = [f"{kind}: MAPE {m['mape']:.1%} (baseline {m['baseline']['mape']:.1%}), "
                 f"range coverage {m['coverage']:.0%}"
                 for kind, m in row.metrics.items() if isinstance(m, dict) and "mape" in m]
        self.stdout.write(f"{row.version}: {row.status} in {row.train_seconds:.1f} s; " + "; ".join(parts))
