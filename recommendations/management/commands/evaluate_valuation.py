"""Offline evaluation of the price models against the city's median price per m²."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommendations import valuation


class Command(BaseCommand):
    help = ("Fit the sale and rent price models on 80 % of the known prices and measure them on the other 20 %: "
            "MAPE, median absolute percentage error and RMSLE beside the baseline 'median price per m² of the "
            "city × area', and the share of true prices inside the low–high range against its nominal "
            "coverage. Prints a table and writes JSON.")

    def add_arguments(self, parser):
        parser.add_argument("--json", default=str(Path(settings.BASE_DIR) / "var" / "reports" / "valuation.json"),
                            help="where to write the JSON report")
        parser.add_argument("--seed", type=int, default=0, help="random split seed (0)")

    def handle(self, *args, **options):
        _valuation, _tests, metrics = valuation.fit_and_measure(random_state=options["seed"])
        if not any("mape" in m for m in metrics.values()):
            raise CommandError("Not enough prices to evaluate: " + json.dumps(metrics))
        self.stdout.write("| model | held-out homes | MAPE | median APE | RMSLE | in range (nominal) |")
        self.stdout.write("| --- | ---: | ---: | ---: | ---: | ---: |")
        for kind, m in metrics.items():
            if "mape" not in m:
                self.stdout.write(f"| {kind} | {m['rows']} | — | — | — | {m['skipped']} |")
                continue
            b = m["baseline"]
            self.stdout.write(f"| {kind}: model | {m['rows']:,} | {m['mape']:.1%} | {m['median_ape']:.1%} | "
                              f"{m['rmsle']:.3f} | {m['coverage']:.0%} ({m['nominal_coverage']:.0%}) |")
            self.stdout.write(f"| {kind}: city median €/m² × area | {m['rows']:,} | {b['mape']:.1%} | "
                              f"{b['median_ape']:.1%} | {b['rmsle']:.3f} | — |")
        for kind, m in metrics.items():
            if "importance" in m:
                top = ", ".join(f"{name} {value:.3f}" for name, value in m["importance"][:5])
                self.stdout.write(f"{kind}: permutation importance (rise of mean |log error|): {top}")
        path = Path(options["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics, indent=2, default=float))
        self.stdout.write(f"Wrote {path}")
