"""Train the recommender now (the beat does it every RECO_TRAIN_SECONDS)."""

from django.core.management.base import BaseCommand, CommandError

from recommendations import serving, training
from recommendations.models import ModelVersion


class Command(BaseCommand):
    help = ("Train the recommender on all interactions, measure it on the latest 10 % (by time), write the "
            "artefact under RECO_MODEL_DIR and promote it unless it trained badly or is worse than the serving "
            "model on the same hold-out.")

    def add_arguments(self, parser):
        parser.add_argument("--factors", type=int, help="latent factors (default RECO_FACTORS)")
        parser.add_argument("--no-promote", action="store_true", help="train and record only")

    def handle(self, *args, **options):
        row = training.train_recommender(promote=not options["no_promote"], factors=options["factors"])
        if row.status == ModelVersion.Status.FAILED:
            raise CommandError(f"{row.version} failed: {row.error}")
        model, baseline = row.metrics["model"], row.metrics["popularity"]
        self.stdout.write(
            f"{row.version}: {row.status} in {row.train_seconds:.1f} s; NDCG@10 {model['ndcg@10']:.4f} "
            f"(popularity {baseline['ndcg@10']:.4f}); blend {row.params.get('blend')}; "
            f"{row.metrics['interactions']:,} interactions, {row.metrics['listings']:,} listings.")
        if row.status == ModelVersion.Status.PROMOTED:
            self.stdout.write(f"Cached the API bodies of {serving.warm_all_bodies():,} active listings.")
