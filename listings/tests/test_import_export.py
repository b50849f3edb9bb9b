"""`manage.py import_listings` / `export_listings`: RESO records in CSV and JSON."""

import csv
import io
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.tests.factories import AgentFactory, UserFactory
from listings.models import Listing, PriceChange
from listings.reso import FIELDS
from listings.tests.factories import ListingFactory
from realio.models import OutboxEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent():
    return AgentFactory(email="jane@agency.example")


def record(**changes):
    base = {
        "ListingKey": "MLS-1", "StandardStatus": "Active", "PropertyType": "Residential",
        "PropertySubType": "Condominium", "ListPrice": "420000", "BedroomsTotal": "3",
        "BathroomsTotalInteger": "2", "LivingArea": "88.5", "LivingAreaUnits": "Square Meters", "YearBuilt": "1998",
        "UnparsedAddress": "8 rue Oberkampf", "City": "Paris", "StateOrProvince": "Île-de-France",
        "PostalCode": "75011", "Country": "FR", "Latitude": "48.8650", "Longitude": "2.3780",
        "PublicRemarks": "Quiet flat on a courtyard.", "ListAgentEmail": "jane@agency.example",
        "GarageYN": "false", "CoolingYN": "true", "ListingContractDate": "2026-03-02",
    }
    base.update(changes)
    return {name: value for name, value in base.items() if value is not None}


def write_csv(path, records):
    names = list(dict.fromkeys(name for r in records for name in r))
    with open(path, "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=names)
        writer.writeheader()
        writer.writerows(records)
    return str(path)


def write_json(path, records, wrap=True):
    path.write_text(json.dumps({"value": records} if wrap else records), encoding="utf-8")
    return str(path)


def run(command, *args, **options):
    out = io.StringIO()
    call_command(command, *args, stdout=out, **options)
    return out.getvalue()


def test_csv_import_creates_listings_through_the_services(tmp_path, agent):
    # Given a feed with a condo for sale, a weekly let, a closed sale and land without a title
    path = write_csv(tmp_path / "feed.csv", [
        record(),
        record(ListingKey="MLS-2", PropertyType="Residential Lease", PropertySubType="Apartment", ListPrice="450",
               LeaseAmountFrequency="Weekly", StandardStatus="Active Under Contract", ListingTitle="Loft by the canal"),
        record(ListingKey="MLS-3", PropertySubType="", StandardStatus="Closed", ClosePrice="395000",
               CloseDate="2026-04-20"),
        record(ListingKey="MLS-4", PropertyType="Land", PropertySubType="", LivingArea="", LotSizeArea="0.25",
               LotSizeUnits="Acres", BedroomsTotal="", BathroomsTotalInteger="", YearBuilt="",
               StandardStatus="Coming Soon"),
    ])

    # When
    output = run("import_listings", path)

    # Then every record is a listing of the agent, found again by its key
    assert "4 records: 4 imported, 0 updated, 0 unchanged, 0 rejected." in output
    condo = Listing.objects.get(external_key="MLS-1")
    assert (condo.agent, condo.listing_type, condo.property_type, condo.status) == (agent, "sale", "condo", "active")
    assert (condo.price, condo.area_sqm, condo.bedrooms, condo.bathrooms) == (Decimal("420000"), Decimal("88.50"), 3, 2)
    assert condo.features == ["air-conditioning"]
    assert condo.time_zone == "Europe/Paris" and condo.latitude == pytest.approx(48.865)
    assert condo.title == "3-bedroom condo for sale in Paris"
    assert condo.published_at.date().isoformat() == "2026-03-02"
    let = Listing.objects.get(external_key="MLS-2")
    assert (let.listing_type, let.rent_period, let.property_type, let.status, let.title) == (
        "rent", "week", "apartment", "pending", "Loft by the canal")
    sold = Listing.objects.get(external_key="MLS-3")
    assert (sold.property_type, sold.status, sold.close_price) == ("house", "sold", Decimal("395000"))
    assert sold.closed_at.astimezone(UTC).date().isoformat() == "2026-04-20"
    land = Listing.objects.get(external_key="MLS-4")
    assert (land.property_type, land.status, land.area_sqm, land.year_built) == ("land", "draft", Decimal("1011.71"),
                                                                                None)
    # And the services' rules applied: a first price in the history, events published
    assert PriceChange.objects.filter(listing__external_key__startswith="MLS-").count() == 4
    assert OutboxEvent.objects.filter(type="listing.published").count() == 3


def test_second_import_updates_changed_records_and_records_the_price_change(tmp_path, agent):
    # Given an imported feed
    run("import_listings", write_csv(tmp_path / "a.csv", [record(), record(ListingKey="MLS-2")]))
    listing = Listing.objects.get(external_key="MLS-1")

    # When the feed comes again with a lower price for one record
    output = run("import_listings", write_csv(tmp_path / "b.csv", [record(ListPrice="399000"),
                                                                   record(ListingKey="MLS-2")]))

    # Then that record is updated, the other unchanged, nothing duplicated
    assert "2 records: 0 imported, 1 updated, 1 unchanged, 0 rejected." in output
    assert Listing.objects.count() == 2
    listing.refresh_from_db()
    assert listing.price == Decimal("399000")
    assert list(listing.price_changes.values_list("price", flat=True)) == [Decimal("420000"), Decimal("399000")]
    event = OutboxEvent.objects.get(type="listing.price_changed")
    assert event.payload == {"listing_id": listing.pk, "old": "420000.00", "new": "399000"}


def test_rejected_records_are_reported_with_reasons_and_the_others_import(tmp_path, agent):
    UserFactory(email="customer@example.com")
    path = write_csv(tmp_path / "feed.csv", [
        record(ListingKey="OK-1"),
        record(ListingKey="BAD-PRICE", ListPrice=""),
        record(ListingKey="BAD-LAT", Latitude="95.2"),
        record(ListingKey="BAD-AGENT", ListAgentEmail="nobody@example.com"),
        record(ListingKey="NOT-AGENT", ListAgentEmail="customer@example.com"),
        record(ListingKey="BAD-STATUS", StandardStatus="Sleeping"),
        record(ListingKey="BAD-AREA", LivingArea="big"),
        record(ListingKey="OK-2"),
    ])

    output = run("import_listings", path)

    assert "8 records: 2 imported, 0 updated, 0 unchanged, 6 rejected." in output
    assert "record 2 (ListingKey BAD-PRICE): ListPrice is required." in output
    assert "record 3 (ListingKey BAD-LAT): Latitude must be between -90 and 90" in output
    assert "record 4 (ListingKey BAD-AGENT): ListAgentEmail: no account nobody@example.com." in output
    assert "record 5 (ListingKey NOT-AGENT): ListAgentEmail: customer@example.com is not an active agent." in output
    assert "record 6 (ListingKey BAD-STATUS): StandardStatus: 'Sleeping' is not a status" in output
    assert "record 7 (ListingKey BAD-AREA): LivingArea: not a number ('big')." in output
    assert set(Listing.objects.values_list("external_key", flat=True)) == {"OK-1", "OK-2"}


def test_a_record_failing_halfway_writes_nothing(tmp_path, agent, settings):
    # Given agents must be verified to publish, and this one is not: the listing is created as a
    # draft by the services, then publishing it fails
    settings.AGENT_VERIFICATION_REQUIRED = True
    path = write_csv(tmp_path / "feed.csv", [record(), record(ListingKey="MLS-2", StandardStatus="Coming Soon")])

    output = run("import_listings", path)

    # Then the first record left no listing, price or event behind; the draft one imported
    assert "1 imported, 0 updated, 0 unchanged, 1 rejected" in output
    assert "verified" in output
    assert list(Listing.objects.values_list("external_key", flat=True)) == ["MLS-2"]
    assert PriceChange.objects.count() == 1


def test_an_update_failing_halfway_writes_nothing(tmp_path, agent):
    # Given a sold listing
    listing = ListingFactory(agent=agent, external_key="MLS-9", status="sold", close_price=Decimal("350000"),
                             closed_at=timezone.now())
    # When a record lowers its price and puts it back on the market (a sold listing stays sold)
    path = write_json(tmp_path / "feed.json", [record(ListingKey="MLS-9", ListPrice="300000")])
    output = run("import_listings", path)

    # Then it is rejected and the price change is rolled back with it
    assert "1 rejected" in output and "cannot become active" in output
    listing.refresh_from_db()
    assert listing.price == Decimal("350000") and listing.status == "sold"
    assert listing.price_changes.count() == 1
    assert not OutboxEvent.objects.filter(type="listing.price_changed").exists()


def test_json_import_takes_a_plain_list_or_a_web_api_value(tmp_path, agent):
    plain = write_json(tmp_path / "plain.json", [record(ListPrice=420000, Latitude=48.865, BedroomsTotal=3,
                                                       CoolingYN=True, PetsAllowed=["Cats OK"])], wrap=False)
    wrapped = write_json(tmp_path / "wrapped.json", [record(ListingKey="MLS-2"), "not a record"])

    assert "1 imported" in run("import_listings", plain)
    output = run("import_listings", wrapped)

    assert "1 imported, 0 updated, 0 unchanged, 1 rejected" in output
    assert "record 2 (ListingKey -): not a record" in output
    assert Listing.objects.get(external_key="MLS-1").features == ["air-conditioning", "pets-allowed"]


def test_default_agent_for_records_without_one(tmp_path, agent):
    path = write_csv(tmp_path / "feed.csv", [record(ListAgentEmail="")])

    assert "1 rejected" in run("import_listings", path)
    assert "1 imported" in run("import_listings", path, agent="jane@agency.example")
    assert Listing.objects.get(external_key="MLS-1").agent == agent
    with pytest.raises(CommandError, match="--agent"):
        run("import_listings", path, agent="nobody@example.com")


def test_dry_run_writes_nothing(tmp_path, agent):
    output = run("import_listings", write_csv(tmp_path / "feed.csv", [record()]), dry_run=True)

    assert "1 imported" in output and "dry run" in output
    assert not Listing.objects.exists()
    assert not OutboxEvent.objects.exists()


@pytest.mark.parametrize("name, content", [("feed.csv", None), ("feed.json", "{not json"), ("feed.json", '{"a": 1}'),
                                           ("feed.xml", "<a/>"), ("feed.csv", "")])
def test_unreadable_files_fail_the_command(tmp_path, name, content):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    with pytest.raises(CommandError):
        run("import_listings", str(path))


@pytest.mark.parametrize("extension", ["csv", "json"])
def test_export_then_import_changes_nothing(tmp_path, agent, extension):
    # Given listings of every kind, from a feed and made here
    other = AgentFactory()
    ListingFactory(agent=agent, external_key="MLS-1", features=["pool", "garden", "furnished"])
    ListingFactory(agent=agent, listing_type="rent", rent_period="week", property_type="townhouse",
                   price=Decimal("612.50"), description="Line one,\nline \"two\"\ttabbed.")
    ListingFactory(agent=other, status="sold", close_price=Decimal("340000"),
                   closed_at=datetime(2026, 2, 3, 15, tzinfo=UTC), features=[])
    ListingFactory(agent=other, property_type="land", bedrooms=0, bathrooms=0, year_built=None,
                   area_sqm=Decimal("1200.00"), status="draft")
    ListingFactory(agent=other, listing_type="rent", property_type="commercial", status="rented",
                   close_price=Decimal("2500"), closed_at=timezone.now(), area_sqm=None)
    ListingFactory(agent=other, listing_type="rent", property_type="land", status="withdrawn")
    before = {listing.pk: (listing.price, listing.status, listing.updated_at) for listing in Listing.objects.all()}
    path = str(tmp_path / f"all.{extension}")

    # When exported and imported again
    assert "Exported 6 listings" in run("export_listings", path)
    output = run("import_listings", path)

    # Then every record is recognised and unchanged
    assert "6 records: 0 imported, 0 updated, 6 unchanged, 0 rejected." in output
    assert {listing.pk: (listing.price, listing.status, listing.updated_at)
            for listing in Listing.objects.all()} == before
    assert PriceChange.objects.count() == 6


def test_export_writes_reso_fields_and_filters_by_status(tmp_path, agent):
    ListingFactory(agent=agent, external_key="MLS-1", listing_type="rent", rent_period="month",
                   features=["garage", "sea-view"])
    ListingFactory(agent=agent, status="draft")
    path = tmp_path / "active.csv"

    assert "Exported 1 listings" in run("export_listings", str(path), status="active")

    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    assert list(rows[0]) == list(FIELDS)
    row = rows[0]
    assert (row["ListingKey"], row["StandardStatus"], row["PropertyType"], row["PropertySubType"]) == (
        "MLS-1", "Active", "Residential Lease", "Apartment")
    assert (row["ListPrice"], row["LeaseAmountFrequency"], row["GarageYN"], row["Realio_Features"]) == (
        "350000", "Monthly", "true", "garage,sea-view")
    assert row["ListAgentEmail"] == "jane@agency.example"
    with pytest.raises(CommandError, match="--status"):
        run("export_listings", str(path), status="open")
