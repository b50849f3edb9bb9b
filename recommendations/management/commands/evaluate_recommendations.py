"""Offline evaluation of the recommender against a popularity baseline on a time-split hold-out."""

import json
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from recommendations import training

GOAL_RATIO = 2.0


class Command(BaseCommand):
    help = ("Fit the recommender on the interactions before a time split, recommend 10 homes to each person "
            "seen before and after it, and compare with their later interactions: precision@10, recall@10, "
            "NDCG@10 and catalogue coverage for the model and for the most popular homes, in the same run. "
            "Prints a table and writes JSON (goal: NDCG@10 at least twice the baseline's).")

    def add_arguments(self, parser):
        parser.add_argument("--holdout", type=float, default=0.2, help="share of the interactions, latest first (0.2)")
        parser.add_argument("--factors", type=int, help="latent factors (default RECO_FACTORS)")
        parser.add_argument("--json", default=str(Path(settings.BASE_DIR) / "var" / "reports" / "recommendations.json"),
                            help="where to write the JSON report")

    def handle(self, *args, **options):
        if not 0 < options["holdout"] < 1:
            raise CommandError("--holdout must be between 0 and 1.")
        try:
            _model, _split, metrics, *_rest = training.recommender_holdout(holdout=options["holdout"],
                                                                            factors=options["factors"])
        except training.TrainingError as exc:
            raise CommandError(str(exc)) from exc
        model, baseline = metrics["model"], metrics["popularity"]
        ratio = metrics["ndcg_ratio"]
        metrics["goal"] = {"ndcg_ratio_at_least": GOAL_RATIO, "met": bool(ratio and ratio >= GOAL_RATIO)}
        rows = [("precision@10", model["precision@10"], baseline["precision@10"]),
                ("recall@10", model["recall@10"], baseline["recall@10"]),
                ("NDCG@10", model["ndcg@10"], baseline["ndcg@10"]),
                ("coverage", model["coverage"], baseline["coverage"])]
        self.stdout.write(f"{metrics['interactions']:,} interactions, {metrics['listings']:,} listings; "
                          f"{model['users']:,} people in the hold-out (latest {options['holdout']:.0%}); "
                          f"blend cf/content/popularity = {metrics['blend']}")
        self.stdout.write("| metric | model | popularity | ratio |\n| --- | ---: | ---: | ---: |")
        for name, ours, theirs in rows:
            ratio_text = f"{ours / theirs:.2f}×" if theirs else "—"
            self.stdout.write(f"| {name} | {ours:.4f} | {theirs:.4f} | {ratio_text} |")
        verdict = "met" if metrics["goal"]["met"] else "NOT met"
        self.stdout.write(f"Goal NDCG@10 ≥ {GOAL_RATIO:g}× popularity: {verdict}.")
        path = Path(options["json"])
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(metrics, indent=2, default=float))
        self.stdout.write(f"Wrote {path}")
