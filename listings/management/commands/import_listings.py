"""`manage.py import_listings FILE`: listings from a RESO feed file (CSV or JSON)."""

from django.core.management.base import BaseCommand, CommandError

from listings import reso


class Command(BaseCommand):
    help = (
        "Import listings from a .csv or .json file in RESO Data Dictionary field names (ListingKey, ListPrice, "
        "StandardStatus, PropertyType, Latitude, Longitude, …; JSON as a list or {\"value\": [...]}). Idempotent by "
        "ListingKey: a known key updates its listing. Each record goes through the listing services in its own "
        "transaction, so a rejected record writes nothing and the others still import. Prints counts and the "
        "reason for every rejected record; exits non-zero only when the file cannot be read."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="a .csv or .json file")
        parser.add_argument("--agent", metavar="EMAIL",
                            help="the agent of new listings whose record has no ListAgentEmail")
        parser.add_argument("--dry-run", action="store_true", help="check and report, write nothing")

    def handle(self, *args, **options):
        try:
            records = reso.read_records(options["file"])
        except reso.UnreadableFile as exc:
            raise CommandError(str(exc)) from exc
        try:
            report = reso.import_records(records, default_agent_email=options["agent"], dry_run=options["dry_run"])
        except reso.RecordError as exc:  # the --agent given is not an agent
            raise CommandError(f"--agent: {exc}") from exc
        counts = report.counts
        self.stdout.write(
            f"{len(report.rows)} records: {counts['created']} imported, {counts['updated']} updated, "
            f"{counts['unchanged']} unchanged, {counts['rejected']} rejected"
            + (" (dry run: nothing written)." if options["dry_run"] else "."))
        for row in report.rejected:
            self.stdout.write(f"  record {row.number} (ListingKey {row.key or '-'}): {row.reason}")
        if options["verbosity"] > 1:
            for row in report.rows:
                if row.outcome != "rejected":
                    self.stdout.write(f"  record {row.number} (ListingKey {row.key}): {row.outcome}")
