"""`manage.py export_listings FILE`: listings as RESO records (CSV or JSON)."""

from django.core.management.base import BaseCommand, CommandError

from listings import reso
from listings.models import Listing


class Command(BaseCommand):
    help = (
        "Export listings to a .csv or .json file (JSON as {\"value\": [...]}) in RESO Data Dictionary field names, "
        "the same fields import_listings reads: exporting then importing changes nothing. Listings that came from no "
        "feed get the ListingKey realio-<id>."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .csv or .json file")
        parser.add_argument("--status", help="only these statuses, comma-separated (e.g. active,pending)")

    def handle(self, *args, **options):
        try:
            reso.file_format(options["file"])
        except reso.UnreadableFile as exc:
            raise CommandError(str(exc)) from exc
        listings = Listing.objects.select_related("agent").order_by("pk")
        if options["status"]:
            statuses = [status.strip() for status in options["status"].split(",") if status.strip()]
            unknown = set(statuses) - set(Listing.Status.values)
            if unknown:
                raise CommandError(f"--status: unknown {', '.join(sorted(unknown))} "
                                   f"(use {', '.join(Listing.Status.values)}).")
            listings = listings.filter(status__in=statuses)
        records = (reso.listing_to_record(listing) for listing in listings.iterator(chunk_size=2000))
        try:
            count = reso.write_records(options["file"], records)
        except OSError as exc:
            raise CommandError(f"{options['file']}: {exc}") from exc
        self.stdout.write(f"Exported {count} listings to {options['file']}.")
