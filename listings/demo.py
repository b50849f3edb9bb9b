"""Deterministic demo listings: real cities, plausible prices, descriptions, photos and history.

`generate()` is pure: for a seed it yields the same listings (each one drawn from its own
random stream, so listing i does not depend on how many are asked for). `seed_listings()`
writes them with COPY, in batches, in one transaction: the values are valid by construction
and the database's constraints still check every row. Bulk seeding publishes no per-listing
events (`listing.published` …): search indexing reconciles from the table, and a hundred
thousand outbox rows would only replay what the seed already wrote.

Prices are built from a per-neighbourhood €/m² level, the property type, its size and age
and its features, with noise, so the valuation model trained on demo data has signal to find.
"""

import io
import math
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import accumulate

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connection, transaction
from PIL import Image, ImageDraw

from listings.models import Favorite, Listing, ListingPhoto, PriceChange

DEMO_KEY_PREFIX = "demo-"
Status = Listing.Status
Type = Listing.PropertyType


# --- places -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Neighbourhood:
    name: str
    latitude: float
    longitude: float
    multiplier: float  # of the city's €/m² level
    postal_code: str


@dataclass(frozen=True)
class City:
    name: str
    country: str
    region: str
    time_zone: str
    latitude: float
    longitude: float
    price_m2: int  # a typical asking price per m² for an apartment, in the deployment's currency
    weight: float  # share of the listings
    coastal: bool
    warm: bool
    address: str  # how a street address is written there: "{n} {street}" or "{street} {n}"
    streets: tuple[str, ...]
    neighbourhoods: tuple[Neighbourhood, ...]


N = Neighbourhood
CITIES = (
    City("Paris", "FR", "Île-de-France", "Europe/Paris", 48.8566, 2.3522, 10500, 3.0, False, False,
         "{n} {street}",
         ("rue de Rivoli", "rue des Martyrs", "boulevard Voltaire", "rue Oberkampf", "avenue Mozart",
          "rue du Bac", "rue Lepic", "rue de Lévis"),
         (N("Le Marais", 48.8575, 2.3600, 1.20, "75004"), N("Saint-Germain-des-Prés", 48.8539, 2.3338, 1.40, "75006"),
          N("Montmartre", 48.8867, 2.3431, 0.95, "75018"), N("Belleville", 48.8722, 2.3767, 0.82, "75020"),
          N("Batignolles", 48.8846, 2.3200, 1.00, "75017"), N("Passy", 48.8578, 2.2797, 1.25, "75016"))),
    City("Lyon", "FR", "Auvergne-Rhône-Alpes", "Europe/Paris", 45.7640, 4.8357, 5000, 1.2, False, False,
         "{n} {street}",
         ("rue de la République", "rue Victor Hugo", "cours Vitton", "rue Garibaldi", "rue de Marseille",
          "avenue Jean Jaurès"),
         (N("Presqu'île", 45.7600, 4.8330, 1.25, "69002"), N("Croix-Rousse", 45.7745, 4.8320, 1.05, "69004"),
          N("Part-Dieu", 45.7605, 4.8590, 0.95, "69003"), N("Vaise", 45.7740, 4.8050, 0.85, "69009"),
          N("Monplaisir", 45.7440, 4.8710, 0.90, "69008"))),
    City("Marseille", "FR", "Provence-Alpes-Côte d'Azur", "Europe/Paris", 43.2965, 5.3698, 3600, 1.2, True, True,
         "{n} {street}",
         ("rue Paradis", "boulevard Baille", "corniche Kennedy", "rue de Rome", "avenue du Prado", "rue Sainte"),
         (N("Vieux-Port", 43.2950, 5.3740, 1.10, "13001"), N("Roucas-Blanc", 43.2790, 5.3580, 1.45, "13007"),
          N("Castellane", 43.2860, 5.3830, 1.00, "13006"), N("La Belle de Mai", 43.3130, 5.3850, 0.65, "13003"),
          N("Mazargues", 43.2490, 5.4030, 1.05, "13009"))),
    City("Bordeaux", "FR", "Nouvelle-Aquitaine", "Europe/Paris", 44.8378, -0.5792, 4700, 0.9, False, True,
         "{n} {street}",
         ("cours de l'Intendance", "rue Notre-Dame", "quai des Chartrons", "rue Sainte-Catherine",
          "avenue Thiers", "rue Judaïque"),
         (N("Chartrons", 44.8520, -0.5720, 1.10, "33300"), N("Saint-Pierre", 44.8400, -0.5720, 1.15, "33000"),
          N("La Bastide", 44.8420, -0.5560, 0.90, "33100"), N("Caudéran", 44.8480, -0.6150, 1.05, "33200"),
          N("Saint-Michel", 44.8330, -0.5660, 0.88, "33800"))),
    City("Lille", "FR", "Hauts-de-France", "Europe/Paris", 50.6292, 3.0573, 3700, 0.9, False, False,
         "{n} {street}",
         ("rue de la Monnaie", "rue Solférino", "boulevard de la Liberté", "rue Gambetta", "rue Pierre Legrand"),
         (N("Vieux-Lille", 50.6410, 3.0630, 1.25, "59800"), N("Wazemmes", 50.6260, 3.0490, 0.90, "59000"),
          N("Vauban", 50.6330, 3.0430, 1.05, "59000"), N("Fives", 50.6300, 3.0860, 0.78, "59800"),
          N("Moulins", 50.6180, 3.0690, 0.82, "59000"))),
    City("Nice", "FR", "Provence-Alpes-Côte d'Azur", "Europe/Paris", 43.7102, 7.2620, 5400, 0.8, True, True,
         "{n} {street}",
         ("promenade des Anglais", "boulevard de Cimiez", "rue de France", "avenue Jean Médecin",
          "boulevard du Mont Boron", "rue Bonaparte"),
         (N("Vieux-Nice", 43.6970, 7.2760, 1.10, "06300"), N("Carré d'Or", 43.6960, 7.2630, 1.35, "06000"),
          N("Cimiez", 43.7190, 7.2750, 1.15, "06000"), N("Mont Boron", 43.6950, 7.2980, 1.45, "06300"),
          N("Nice Nord", 43.7260, 7.2550, 0.80, "06100"))),
    City("Toulouse", "FR", "Occitanie", "Europe/Paris", 43.6047, 1.4442, 3800, 1.0, False, True,
         "{n} {street}",
         ("rue d'Alsace-Lorraine", "rue des Filatiers", "allées Jean Jaurès", "avenue de Muret",
          "boulevard de Strasbourg", "rue de Metz"),
         (N("Capitole", 43.6045, 1.4440, 1.20, "31000"), N("Carmes", 43.5980, 1.4460, 1.25, "31000"),
          N("Saint-Cyprien", 43.5980, 1.4300, 1.00, "31300"), N("Minimes", 43.6200, 1.4350, 0.88, "31200"),
          N("Rangueil", 43.5760, 1.4590, 0.85, "31400"))),
    City("Nantes", "FR", "Pays de la Loire", "Europe/Paris", 47.2184, -1.5536, 4000, 0.8, False, False,
         "{n} {street}",
         ("rue Crébillon", "quai de la Fosse", "boulevard Guist'hau", "rue de Strasbourg", "rue Paul Bellamy"),
         (N("Centre-ville", 47.2150, -1.5560, 1.15, "44000"), N("Île de Nantes", 47.2060, -1.5560, 1.00, "44200"),
          N("Zola", 47.2130, -1.5850, 1.05, "44100"), N("Doulon", 47.2270, -1.5200, 0.85, "44300"),
          N("Chantenay", 47.2000, -1.5950, 0.90, "44100"))),
    City("Berlin", "DE", "Berlin", "Europe/Berlin", 52.5200, 13.4050, 5500, 2.5, False, False,
         "{street} {n}",
         ("Kastanienallee", "Oranienstraße", "Torstraße", "Karl-Marx-Straße", "Kantstraße", "Schönhauser Allee",
          "Bergmannstraße"),
         (N("Mitte", 52.5310, 13.3850, 1.30, "10115"), N("Prenzlauer Berg", 52.5390, 13.4240, 1.20, "10435"),
          N("Kreuzberg", 52.4990, 13.4030, 1.10, "10999"), N("Neukölln", 52.4810, 13.4350, 0.90, "12043"),
          N("Charlottenburg", 52.5160, 13.3040, 1.15, "10585"), N("Spandau", 52.5350, 13.2000, 0.70, "13597"))),
    City("Munich", "DE", "Bayern", "Europe/Berlin", 48.1351, 11.5820, 9500, 1.3, False, False,
         "{street} {n}",
         ("Leopoldstraße", "Maximilianstraße", "Türkenstraße", "Wörthstraße", "Pasinger Bahnhofsplatz",
          "Amalienstraße"),
         (N("Altstadt-Lehel", 48.1370, 11.5800, 1.30, "80331"), N("Schwabing", 48.1650, 11.5860, 1.20, "80803"),
          N("Maxvorstadt", 48.1500, 11.5700, 1.15, "80799"), N("Haidhausen", 48.1290, 11.5950, 1.05, "81667"),
          N("Pasing", 48.1490, 11.4610, 0.85, "81241"))),
    City("Madrid", "ES", "Comunidad de Madrid", "Europe/Madrid", 40.4168, -3.7038, 4800, 2.5, False, True,
         "{street}, {n}",
         ("Calle de Serrano", "Calle de Fuencarral", "Calle de Alcalá", "Calle de Atocha", "Calle de Velázquez",
          "Calle del Espíritu Santo", "Calle de Toledo"),
         (N("Salamanca", 40.4300, -3.6800, 1.45, "28001"), N("Chamberí", 40.4340, -3.7040, 1.30, "28010"),
          N("Malasaña", 40.4260, -3.7050, 1.10, "28004"), N("Lavapiés", 40.4090, -3.7010, 0.90, "28012"),
          N("Carabanchel", 40.3800, -3.7300, 0.60, "28025"))),
    City("Barcelona", "ES", "Catalunya", "Europe/Madrid", 41.3874, 2.1686, 4600, 2.0, True, True,
         "{street}, {n}",
         ("Carrer de Mallorca", "Carrer de Verdi", "Passeig de Gràcia", "Carrer de Pujades", "Via Augusta",
          "Carrer de la Marina", "Carrer del Baluard"),
         (N("Eixample", 41.3910, 2.1650, 1.20, "08009"), N("Gràcia", 41.4030, 2.1570, 1.10, "08012"),
          N("Barceloneta", 41.3800, 2.1890, 1.05, "08003"), N("Sarrià-Sant Gervasi", 41.4010, 2.1330, 1.45, "08017"),
          N("Nou Barris", 41.4410, 2.1770, 0.60, "08031"), N("Poblenou", 41.4000, 2.2000, 1.00, "08005"))),
    City("Lisbon", "PT", "Lisboa", "Europe/Lisbon", 38.7223, -9.1393, 5200, 1.2, True, True,
         "{street}, {n}",
         ("Rua Garrett", "Rua da Escola Politécnica", "Avenida da Igreja", "Rua de São Tomé", "Rua de Belém",
          "Rua do Açúcar"),
         (N("Chiado", 38.7107, -9.1420, 1.40, "1200"), N("Alfama", 38.7120, -9.1300, 1.10, "1100"),
          N("Príncipe Real", 38.7170, -9.1490, 1.35, "1250"), N("Alvalade", 38.7530, -9.1440, 0.95, "1700"),
          N("Belém", 38.6970, -9.2060, 1.10, "1400"), N("Marvila", 38.7450, -9.1050, 0.75, "1950"))),
    City("London", "GB", "England", "Europe/London", 51.5074, -0.1278, 11000, 3.0, False, False,
         "{n} {street}",
         ("Kensington Church Street", "Camden Road", "Redchurch Street", "Clapham High Street", "Royal Hill",
          "George Street", "Old Street"),
         (N("Kensington", 51.4990, -0.1930, 1.70, "W8"), N("Camden", 51.5390, -0.1430, 1.10, "NW1"),
          N("Shoreditch", 51.5260, -0.0780, 1.05, "E2"), N("Clapham", 51.4620, -0.1380, 0.95, "SW4"),
          N("Greenwich", 51.4830, -0.0090, 0.85, "SE10"), N("Croydon", 51.3760, -0.0980, 0.55, "CR0"))),
    City("Manchester", "GB", "England", "Europe/London", 53.4808, -2.2426, 3800, 1.0, False, False,
         "{n} {street}",
         ("Oldham Street", "Wilmslow Road", "Beech Road", "Redhill Street", "Princess Road", "Deansgate"),
         (N("Northern Quarter", 53.4840, -2.2360, 1.10, "M4"), N("Didsbury", 53.4170, -2.2310, 1.25, "M20"),
          N("Chorlton", 53.4420, -2.2760, 1.10, "M21"), N("Ancoats", 53.4840, -2.2250, 1.05, "M4"),
          N("Moss Side", 53.4560, -2.2400, 0.65, "M14"))),
    City("Amsterdam", "NL", "Noord-Holland", "Europe/Amsterdam", 52.3676, 4.9041, 7500, 1.3, False, False,
         "{street} {n}",
         ("Keizersgracht", "Albert Cuypstraat", "Westerstraat", "Linnaeusstraat", "Buiksloterweg",
          "Bijlmerdreef"),
         (N("Grachtengordel", 52.3680, 4.8880, 1.35, "1016"), N("De Pijp", 52.3540, 4.8940, 1.15, "1072"),
          N("Jordaan", 52.3750, 4.8800, 1.30, "1015"), N("Oost", 52.3600, 4.9300, 1.00, "1092"),
          N("Noord", 52.3900, 4.9200, 0.85, "1031"), N("Zuidoost", 52.3100, 4.9700, 0.65, "1102"))),
    City("Brussels", "BE", "Brussels-Capital", "Europe/Brussels", 50.8503, 4.3517, 3700, 1.1, False, False,
         "{street} {n}",
         ("Chaussée d'Ixelles", "Avenue Brugmann", "Rue de la Victoire", "Avenue Louis Bertrand",
          "Rue Wayez", "Avenue de Tervueren"),
         (N("Ixelles", 50.8330, 4.3660, 1.15, "1050"), N("Uccle", 50.8030, 4.3370, 1.25, "1180"),
          N("Saint-Gilles", 50.8270, 4.3450, 0.95, "1060"), N("Schaerbeek", 50.8670, 4.3770, 0.85, "1030"),
          N("Anderlecht", 50.8380, 4.3100, 0.70, "1070"), N("Woluwe-Saint-Pierre", 50.8330, 4.4350, 1.20, "1150"))),
    City("Rome", "IT", "Lazio", "Europe/Rome", 41.9028, 12.4964, 3800, 2.0, False, True,
         "{street}, {n}",
         ("Via del Corso", "Via della Lungaretta", "Via Cola di Rienzo", "Via di Monteverde", "Via del Pigneto",
          "Via dei Castani"),
         (N("Centro Storico", 41.8990, 12.4730, 1.60, "00186"), N("Trastevere", 41.8890, 12.4700, 1.35, "00153"),
          N("Prati", 41.9070, 12.4620, 1.30, "00192"), N("Monteverde", 41.8760, 12.4560, 1.00, "00152"),
          N("Pigneto", 41.8880, 12.5290, 0.80, "00176"), N("Centocelle", 41.8770, 12.5620, 0.70, "00172"))),
    City("Milan", "IT", "Lombardia", "Europe/Rome", 45.4642, 9.1900, 5500, 1.8, False, False,
         "{street}, {n}",
         ("Via Brera", "Ripa di Porta Ticinese", "Corso di Porta Romana", "Via Borsieri", "Via Pascoli",
          "Via Lopez"),
         (N("Brera", 45.4720, 9.1880, 1.55, "20121"), N("Navigli", 45.4520, 9.1760, 1.15, "20143"),
          N("Porta Romana", 45.4520, 9.2030, 1.10, "20135"), N("Isola", 45.4880, 9.1900, 1.15, "20159"),
          N("Città Studi", 45.4780, 9.2270, 0.95, "20133"), N("Quarto Oggiaro", 45.5150, 9.1370, 0.60, "20157"))),
    City("Vienna", "AT", "Wien", "Europe/Vienna", 48.2082, 16.3738, 6000, 1.5, False, False,
         "{street} {n}",
         ("Kärntner Straße", "Neubaugasse", "Praterstraße", "Grinzinger Straße", "Favoritenstraße",
          "Brünner Straße"),
         (N("Innere Stadt", 48.2085, 16.3720, 1.70, "1010"), N("Neubau", 48.2020, 16.3480, 1.15, "1070"),
          N("Leopoldstadt", 48.2170, 16.3960, 1.00, "1020"), N("Döbling", 48.2480, 16.3400, 1.25, "1190"),
          N("Favoriten", 48.1760, 16.3790, 0.75, "1100"), N("Floridsdorf", 48.2560, 16.4000, 0.75, "1210"))),
)
del N
_CITY_CUM_WEIGHTS = list(accumulate(city.weight for city in CITIES))


def _distance_km(lat1, lng1, lat2, lng2):
    dy = (lat2 - lat1) * 111.2
    dx = (lng2 - lng1) * 111.2 * math.cos(math.radians((lat1 + lat2) / 2))
    return math.hypot(dx, dy)


# --- the photo pool ---------------------------------------------------------------------------
# About a hundred small drawings, made once per storage and shared by every demo listing.

PHOTO_SIZE = (640, 480)
POOL_FOLDER = "listings/demo"


@dataclass(frozen=True)
class PoolPhoto:
    index: int
    kind: str  # house, building, land, living, bedroom, kitchen, bathroom
    name: str
    caption: str


_POOL_KINDS = (("house", 26, "Front of the house"), ("building", 22, "The building"), ("land", 8, "The plot"),
               ("living", 14, "Living room"), ("bedroom", 12, "Bedroom"), ("kitchen", 10, "Kitchen"),
               ("bathroom", 8, "Bathroom"))
PHOTO_POOL = tuple(
    PoolPhoto(index, kind, f"{POOL_FOLDER}/{kind}-{number:02d}.jpg", caption)
    for index, (kind, number, caption) in enumerate(
        (kind, number, caption) for kind, count, caption in _POOL_KINDS for number in range(count))
)
_POOL_BY_KIND = {kind: [p.index for p in PHOTO_POOL if p.kind == kind] for kind, _n, _c in _POOL_KINDS}
_ROOM_KINDS = ("living", "bedroom", "kitchen", "bathroom")


def _colour(rng, low=40, high=230):
    return tuple(rng.randint(low, high) for _ in range(3))


def _mix(a, b, t):
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))


def _sky(draw, rng, width, horizon):
    top, bottom = rng.choice([((70, 130, 200), (190, 220, 245)), ((110, 150, 210), (230, 235, 240)),
                              ((240, 160, 110), (250, 220, 170)), ((150, 170, 190), (220, 225, 230))])
    for y in range(horizon):
        draw.line([(0, y), (width, y)], fill=_mix(top, bottom, y / max(1, horizon)))


def _draw_house(draw, rng, w, h):
    horizon = int(h * rng.uniform(0.55, 0.7))
    _sky(draw, rng, w, horizon)
    draw.rectangle([0, horizon, w, h], fill=_mix((70, 140, 60), _colour(rng), 0.25))
    if rng.random() < 0.6:
        draw.ellipse([w - 120, 30, w - 60, 90], fill=(250, 230, 140))
    left, right = int(w * rng.uniform(0.12, 0.3)), int(w * rng.uniform(0.7, 0.88))
    top = int(horizon - h * rng.uniform(0.22, 0.35))
    bottom = horizon + int(h * 0.08)
    wall = _colour(rng, 150, 240)
    draw.rectangle([left, top, right, bottom], fill=wall, outline=_mix(wall, (0, 0, 0), 0.4), width=2)
    roof = _colour(rng, 60, 170)
    peak = top - int(h * rng.uniform(0.1, 0.2))
    if rng.random() < 0.5:
        draw.polygon([(left - 20, top), ((left + right) // 2, peak), (right + 20, top)], fill=roof)
    else:
        draw.polygon([(left - 15, top), (left + 40, peak), (right - 40, peak), (right + 15, top)], fill=roof)
    door = _colour(rng, 40, 150)
    door_x = rng.randint(left + 20, right - 60)
    draw.rectangle([door_x, bottom - 70, door_x + 36, bottom], fill=door)
    glass = _mix((170, 200, 230), _colour(rng), 0.2)
    for i in range(rng.randint(2, 4)):
        x = left + 20 + i * (right - left - 60) // 3
        if abs(x - door_x) < 50:
            continue
        draw.rectangle([x, top + 25, x + 40, top + 65], fill=glass, outline=(255, 255, 255), width=3)
    for _ in range(rng.randint(0, 3)):
        x = rng.choice([rng.randint(5, max(6, left - 60)), rng.randint(min(right + 20, w - 80), w - 60)])
        draw.rectangle([x + 22, horizon - 20, x + 30, horizon + 20], fill=(100, 70, 40))
        draw.ellipse([x, horizon - 90, x + 52, horizon - 10], fill=_mix((50, 120, 50), _colour(rng), 0.2))


def _draw_building(draw, rng, w, h):
    horizon = int(h * rng.uniform(0.8, 0.9))
    _sky(draw, rng, w, horizon)
    draw.rectangle([0, horizon, w, h], fill=(110, 110, 115))
    x = 0
    while x < w:
        width = rng.randint(140, 260)
        top = rng.randint(20, 140)
        facade = _colour(rng, 120, 235)
        draw.rectangle([x, top, x + width, horizon], fill=facade, outline=_mix(facade, (0, 0, 0), 0.35))
        glass = _mix((150, 180, 210), _colour(rng), 0.25)
        columns, rows = max(2, width // 55), max(3, (horizon - top) // 60)
        for c in range(columns):
            for r in range(rows - 1):
                wx = x + 15 + c * (width - 20) // columns
                wy = top + 20 + r * (horizon - top - 30) // rows
                draw.rectangle([wx, wy, wx + 26, wy + 36], fill=glass)
                if rng.random() < 0.25:
                    draw.line([(wx - 4, wy + 36), (wx + 30, wy + 36)], fill=(40, 40, 40), width=3)
        x += width + rng.randint(0, 12)


def _draw_land(draw, rng, w, h):
    horizon = int(h * rng.uniform(0.35, 0.5))
    _sky(draw, rng, w, horizon)
    hill = _mix((90, 130, 70), _colour(rng), 0.2)
    draw.polygon([(0, horizon), (w // 3, horizon - rng.randint(20, 70)), (2 * w // 3, horizon - 10),
                  (w, horizon - rng.randint(10, 50)), (w, horizon + 20), (0, horizon + 20)], fill=hill)
    bands = rng.randint(3, 6)
    for i in range(bands):
        y0 = horizon + i * (h - horizon) // bands
        y1 = horizon + (i + 1) * (h - horizon) // bands
        draw.rectangle([0, y0, w, y1], fill=_mix((120, 160, 70), _colour(rng), 0.3))
    for _ in range(rng.randint(2, 7)):
        x = rng.randint(0, w - 40)
        y = horizon + rng.randint(-10, 40)
        draw.ellipse([x, y - 50, x + 40, y], fill=(45, 100, 45))
    draw.line([(rng.randint(0, w), h), (rng.randint(w // 3, 2 * w // 3), horizon + 20)], fill=(190, 170, 130),
              width=8)


def _draw_room(draw, rng, w, h, kind):
    wall = _colour(rng, 170, 245)
    draw.rectangle([0, 0, w, h], fill=wall)
    floor_top = int(h * rng.uniform(0.62, 0.72))
    floor = _colour(rng, 110, 200) if kind != "bathroom" else (225, 225, 225)
    draw.polygon([(0, h), (0, floor_top + 30), (w, floor_top), (w, h)], fill=floor)
    if kind == "bathroom":
        for x in range(0, w, 40):
            draw.line([(x, 0), (x, floor_top)], fill=_mix(wall, (255, 255, 255), 0.5))
    window_x = rng.randint(40, w - 220)
    draw.rectangle([window_x, 60, window_x + 160, 230], fill=(185, 215, 240), outline=(250, 250, 250), width=8)
    draw.line([(window_x + 80, 60), (window_x + 80, 230)], fill=(250, 250, 250), width=5)
    accent = _colour(rng, 50, 200)
    base = floor_top + 20
    if kind == "living":
        x = rng.randint(30, w - 330)
        draw.rectangle([x, base - 90, x + 300, base - 10], fill=accent)
        draw.rectangle([x, base - 130, x + 300, base - 80], fill=_mix(accent, (0, 0, 0), 0.2))
        draw.rectangle([x + 100, base + 20, x + 220, base + 40], fill=(120, 85, 50))
    elif kind == "bedroom":
        x = rng.randint(30, w - 330)
        draw.rectangle([x, base - 150, x + 20, base], fill=(110, 80, 50))
        draw.rectangle([x + 20, base - 70, x + 300, base], fill=(245, 245, 240))
        draw.rectangle([x + 20, base - 90, x + 300, base - 60], fill=accent)
        draw.ellipse([x + 30, base - 110, x + 110, base - 80], fill=(255, 255, 255))
    elif kind == "kitchen":
        draw.rectangle([0, base - 110, w, base], fill=accent)
        draw.rectangle([0, base - 120, w, base - 105], fill=(200, 200, 200))
        for x in range(10, w, 90):
            draw.rectangle([x, base - 95, x + 80, base - 10], outline=_mix(accent, (0, 0, 0), 0.3), width=3)
            draw.rectangle([x, 260 - 120, x + 80, 260 - 30], fill=_mix(accent, (255, 255, 255), 0.3))
    else:
        x = rng.randint(30, w - 420)
        draw.rounded_rectangle([x, base - 80, x + 300, base], radius=30, fill=(250, 250, 250), outline=accent, width=4)
        draw.rectangle([x + 330, base - 120, x + 400, base - 100], fill=(240, 240, 240), outline=accent, width=3)
        draw.rectangle([x + 355, base - 100, x + 375, base], fill=_mix(accent, (255, 255, 255), 0.5))


def photo_bytes(photo):
    """The JPEG of one pool photo: the same bytes every time for the same index."""
    rng = random.Random(f"realio-demo-photo:{photo.index}")
    image = Image.new("RGB", PHOTO_SIZE, (255, 255, 255))
    draw = ImageDraw.Draw(image)
    w, h = PHOTO_SIZE
    if photo.kind == "house":
        _draw_house(draw, rng, w, h)
    elif photo.kind == "building":
        _draw_building(draw, rng, w, h)
    elif photo.kind == "land":
        _draw_land(draw, rng, w, h)
    else:
        _draw_room(draw, rng, w, h, photo.kind)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=80, optimize=True)
    return out.getvalue()


def ensure_photo_pool(storage=None):
    """Save every pool photo that the storage does not hold yet; returns how many were made."""
    storage = storage or default_storage
    made = 0
    for photo in PHOTO_POOL:
        if not storage.exists(photo.name):
            saved = storage.save(photo.name, ContentFile(photo_bytes(photo)))
            if saved != photo.name:  # another process saved it meanwhile: keep one copy
                storage.delete(saved)
            made += 1
    return made


# --- one listing ------------------------------------------------------------------------------

@dataclass
class DemoListing:
    """Everything about one demo listing; `agent_index` points into the agents given."""

    key: str
    agent_index: int
    city: City
    neighbourhood: Neighbourhood
    title: str
    description: str
    listing_type: str
    rent_period: str | None
    property_type: str
    status: str
    price: Decimal
    bedrooms: int
    bathrooms: int
    area_sqm: Decimal
    year_built: int | None
    street: str
    postal_code: str
    latitude: float
    longitude: float
    features: list[str]
    close_price: Decimal | None
    closed_at: datetime | None
    published_at: datetime | None
    created_at: datetime
    price_history: list[tuple[Decimal, datetime]] = field(default_factory=list)
    photos: list[int] = field(default_factory=list)  # indexes into PHOTO_POOL, in order


TYPE_PRICE_FACTOR = {Type.APARTMENT: 1.0, Type.CONDO: 1.06, Type.TOWNHOUSE: 0.97, Type.HOUSE: 0.92,
                     Type.COMMERCIAL: 0.72, Type.LAND: 0.07}
FEATURE_PRICE_FACTOR = {"garden": 1.04, "pool": 1.07, "terrace": 1.04, "balcony": 1.02, "sea-view": 1.15,
                        "garage": 1.03, "parking": 1.02, "elevator": 1.02, "air-conditioning": 1.01,
                        "fireplace": 1.01, "accessible": 1.01}
_FEATURE_ODDS = {
    "flat": {"balcony": .45, "elevator": .5, "parking": .2, "cellar": .3, "air-conditioning": .15, "terrace": .12,
             "accessible": .12, "fireplace": .05, "pool": .03},
    "house": {"garden": .8, "garage": .55, "parking": .3, "terrace": .35, "pool": .12, "fireplace": .35,
              "cellar": .35, "air-conditioning": .12, "accessible": .08},
    "commercial": {"parking": .3, "accessible": .5, "air-conditioning": .5, "elevator": .3},
    "land": {},
}
_FEATURE_SENTENCES = {
    "garden": ("A private garden that gets the afternoon sun.", "The garden is planted and easy to keep."),
    "pool": ("A swimming pool for the summer months.", "The pool is heated from May to September."),
    "balcony": ("A balcony opens off the living room.", "Breakfast on the balcony, above the street."),
    "terrace": ("A terrace for meals outside.", "The terrace catches the evening light."),
    "elevator": ("The building has a lift.",),
    "parking": ("A parking space is included.", "Comes with a parking space."),
    "garage": ("A garage with room for a car and bikes.",),
    "air-conditioning": ("Air conditioning throughout.",),
    "fireplace": ("A working fireplace in the living room.",),
    "pets-allowed": ("Pets are welcome.",),
    "furnished": ("Offered furnished.",),
    "cellar": ("A cellar for storage.",),
    "sea-view": ("Views over the sea.", "The sea is in sight from the main rooms."),
    "accessible": ("Step-free access from the street.",),
}
_ADJECTIVES = ("Bright", "Spacious", "Charming", "Quiet", "Sunny", "Elegant", "Cosy", "Light-filled", "Well-kept",
               "Renovated")  # the last one is not said of new builds
_AREA_TRAITS = ("cafés and a weekly market", "quiet residential streets", "its parks", "good schools",
                "restaurants and nightlife", "easy transport links", "independent shops")
_PROPERTY_NOUN = {Type.APARTMENT: "apartment", Type.CONDO: "condo", Type.TOWNHOUSE: "townhouse",
                  Type.HOUSE: "house"}


def _table(options):
    """(values, cumulative weights) for rng.choices, computed once."""
    values, weights = zip(*options, strict=True)
    return values, list(accumulate(weights))


def _weighted(rng, table):
    values, cum_weights = table
    return rng.choices(values, cum_weights=cum_weights)[0]


_PROPERTY_TYPES = {
    (rent, suburban): _table([(Type.APARTMENT.value, 48 if rent else 42), (Type.CONDO.value, 10),
                              (Type.TOWNHOUSE.value, 8), (Type.HOUSE.value, 26 if suburban else 12),
                              (Type.COMMERCIAL.value, 8), (Type.LAND.value, 0 if rent else 5)])
    for rent in (False, True) for suburban in (False, True)
}
_FLAT_BEDROOMS = _table([(0, 8), (1, 28), (2, 32), (3, 20), (4, 9), (5, 3)])
_HOUSE_BEDROOMS = _table([(2, 12), (3, 34), (4, 30), (5, 16), (6, 8)])
_ERAS = {suburban: _table([("old", 25), ("post-war", 35), ("modern", 25), ("new", 25 if suburban else 15)])
         for suburban in (False, True)}
_STATUSES = {rent: _table([(Status.ACTIVE.value, 72), (Status.PENDING.value, 7),
                           ((Status.RENTED if rent else Status.SOLD).value, 11), (Status.DRAFT.value, 5),
                           (Status.WITHDRAWN.value, 5)])
             for rent in (False, True)}
_PRICE_CHANGES = _table([(1, 60), (2, 30), (3, 10)])
_PHOTO_COUNTS = _table([(1, 10), (2, 20), (3, 30), (4, 25), (5, 15)])
_CITY_INDEXES = range(len(CITIES))
_SUBURBAN = {(c, n): _distance_km(city.latitude, city.longitude, hood.latitude, hood.longitude) > 3.5
             for c, city in enumerate(CITIES) for n, hood in enumerate(city.neighbourhoods)}


def _round_price(value, step):
    return Decimal(max(step, round(value / step) * step)).quantize(Decimal("0.01"))


def _postal_code(rng, city, neighbourhood):
    code = neighbourhood.postal_code
    if city.country == "GB":
        return f"{code} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXY')}{rng.choice('ABDEFGHJLNPQRSTUWXY')}"
    if city.country == "NL":
        return f"{code} {rng.choice('ABCDEGHJKLMNPRSTVWXZ')}{rng.choice('ABCDEGHJKLMNPRSTVWXZ')}"
    if city.country == "PT":
        return f"{code}-{rng.randint(0, 999):03d}"
    return code


def _when(rng, now, days_ago_low, days_ago_high):
    return now - timedelta(days=rng.uniform(days_ago_low, days_ago_high))


def _title(adjective, property_type, bedrooms, area, neighbourhood, features):
    place = neighbourhood.name
    if property_type == Type.LAND:
        return f"Building plot of {area:,} m² in {place}"
    if property_type == Type.COMMERCIAL:
        return f"Commercial space of {area:,} m² in {place}"
    noun = _PROPERTY_NOUN[property_type]
    rooms = f"{adjective} studio" if bedrooms == 0 else f"{adjective} {bedrooms}-bedroom {noun}"
    extra = next((f" with {f.replace('-', ' ')}" for f in ("sea-view", "pool", "garden", "terrace") if f in features),
                 "")
    if extra == " with sea view":
        extra = " with sea views"
    return f"{rooms}{extra} in {place}"


def _description(rng, item, adjective):
    place = f"{item.neighbourhood.name}, {item.city.name}"
    area = f"{int(item.area_sqm):,} m²"
    if item.property_type == Type.LAND:
        parts = [f"A building plot of {area} in {place}, with water and electricity at the boundary."]
    elif item.property_type == Type.COMMERCIAL:
        parts = [f"Commercial premises of {area} in {place}, with street frontage: suits a shop, an office "
                 "or a studio."]
    else:
        noun = _PROPERTY_NOUN[item.property_type]
        rooms = "studio" if item.bedrooms == 0 else f"{item.bedrooms}-bedroom {noun}"
        baths = "one bathroom" if item.bathrooms == 1 else f"{item.bathrooms} bathrooms"
        verb = "To rent" if item.listing_type == Listing.ListingType.RENT else "For sale"
        article = "an" if adjective[0] in "AEIOU" else "a"
        parts = [f"{verb}: {article} {adjective.lower()} {rooms} of {area} with {baths} in {place}."]
    year = item.year_built
    if year is not None:
        if year >= 2015:
            parts.append(f"A new build ({year}), well insulated, with low energy bills.")
        elif year >= 1990:
            parts.append(f"Built in {year} and well maintained.")
        elif year >= 1945:
            parts.append(f"A {year} building, ready to be refreshed to your taste.")
        else:
            parts.append(f"Full of period character: built in {year}, with high ceilings.")
    parts += [rng.choice(_FEATURE_SENTENCES[f]) for f in item.features]
    parts.append(f"{item.neighbourhood.name} is known for {rng.choice(_AREA_TRAITS)}; shops and public transport "
                 "are within walking distance.")
    return " ".join(parts)


def _one(seed, index, agent_count, now):
    rng = random.Random(f"{seed}:{index}")
    city_index = rng.choices(_CITY_INDEXES, cum_weights=_CITY_CUM_WEIGHTS)[0]
    city = CITIES[city_index]
    hood_index = rng.randrange(len(city.neighbourhoods))
    neighbourhood = city.neighbourhoods[hood_index]
    suburban = _SUBURBAN[city_index, hood_index]
    rent = rng.random() < 0.35
    listing_type = "rent" if rent else "sale"
    property_type = _weighted(rng, _PROPERTY_TYPES[rent, suburban])

    if property_type in (Type.APARTMENT, Type.CONDO):
        bedrooms = _weighted(rng, _FLAT_BEDROOMS)
        area = (24 + 23 * bedrooms) * rng.lognormvariate(0, 0.15)
        bathrooms = 1 + (bedrooms >= 3) + (bedrooms >= 5)
    elif property_type in (Type.HOUSE, Type.TOWNHOUSE):
        bedrooms = _weighted(rng, _HOUSE_BEDROOMS)
        area = (45 + 28 * bedrooms) * rng.lognormvariate(0, 0.18)
        bathrooms = 1 + bedrooms // 2
    elif property_type == Type.COMMERCIAL:
        bedrooms, bathrooms = 0, rng.randint(1, 2)
        area = min(1500.0, 120 * rng.lognormvariate(0, 0.6))
    else:
        bedrooms, bathrooms = 0, 0
        area = min(8000.0, 800 * rng.lognormvariate(0, 0.7))
    area = max(14, round(area))

    if property_type == Type.LAND:
        year = None
    else:
        era = _weighted(rng, _ERAS[suburban])
        year = {"old": rng.randint(1850, 1944), "post-war": rng.randint(1945, 1989),
                "modern": rng.randint(1990, 2014), "new": rng.randint(2015, now.year)}[era]

    group = {Type.APARTMENT: "flat", Type.CONDO: "flat", Type.HOUSE: "house", Type.TOWNHOUSE: "house",
             Type.COMMERCIAL: "commercial", Type.LAND: "land"}[property_type]
    features = []
    for name, odds in _FEATURE_ODDS[group].items():
        if name == "elevator" and year is not None and year >= 1970:
            odds = min(1.0, odds + 0.35)
        if name in ("pool", "air-conditioning") and city.warm:
            odds = min(1.0, odds * 2.5)
        if rng.random() < odds:
            features.append(name)
    if city.coastal and rng.random() < (0.3 if group != "commercial" else 0.1):
        features.append("sea-view")
    if rent and group in ("flat", "house"):
        if rng.random() < 0.4:
            features.append("furnished")
        if rng.random() < 0.4:
            features.append("pets-allowed")
    features.sort()

    per_m2 = city.price_m2 * neighbourhood.multiplier * TYPE_PRICE_FACTOR[property_type]
    if property_type == Type.LAND:
        per_m2 *= (area / 800) ** -0.3
    elif property_type == Type.COMMERCIAL:
        per_m2 *= (area / 120) ** -0.1
    else:
        per_m2 *= (area / 70) ** -0.12
    if year is not None:
        per_m2 *= 1.15 if year >= 2015 else 1.03 if year >= 1990 else 0.92 if year >= 1945 else 1.02
    for name in features:
        per_m2 *= FEATURE_PRICE_FACTOR.get(name, 1.0)
    value = per_m2 * area * rng.lognormvariate(0, 0.09)
    if rent:
        weekly = city.country == "GB" and rng.random() < 0.6
        rent_period = Listing.RentPeriod.WEEK if weekly else Listing.RentPeriod.MONTH
        annual_yield = 0.042 * neighbourhood.multiplier ** -0.35 * (1.4 if property_type == Type.COMMERCIAL else 1)
        monthly = value * annual_yield / 12 * rng.lognormvariate(0, 0.05)
        step = 5 if weekly else 10
        price = _round_price(monthly * 12 / 52 if weekly else monthly, step)
    else:
        rent_period, step = None, 1000
        price = _round_price(value, step)

    status = _weighted(rng, _STATUSES[rent])
    closed_at = close_price = published_at = None
    if status == Status.ACTIVE:
        published_at = now - timedelta(days=min(365.0, rng.expovariate(1 / 60)), seconds=rng.randint(0, 86399))
    elif status == Status.PENDING:
        published_at = _when(rng, now, 15, 200)
    elif status in (Status.SOLD, Status.RENTED):
        published_at = _when(rng, now, 40, 540)
        closed_at = min(now - timedelta(hours=6), published_at + timedelta(days=rng.uniform(10, 150)))
        close_price = _round_price(float(price) * rng.uniform(0.94, 1.01), step) if not rent else price
    elif status == Status.WITHDRAWN and rng.random() < 0.7:
        published_at = _when(rng, now, 30, 365)
    created_at = (published_at or _when(rng, now, 0, 30)) - timedelta(days=rng.uniform(0, 14))

    # Price history: the first asking price when it was published, then 0–3 changes (mostly cuts).
    history_end = closed_at or now
    history = [(price, published_at or created_at)]
    if published_at is not None and rng.random() < 0.35:
        changes = _weighted(rng, _PRICE_CHANGES)
        span = (history_end - published_at).total_seconds()
        moments = sorted(published_at + timedelta(seconds=span * rng.uniform(0.1, 0.95)) for _ in range(changes))
        prices = [price]
        for _ in range(changes):
            later = float(prices[0])
            # Mostly cuts (the earlier price was higher), now and then a rise.
            earlier = later / rng.uniform(1.02, 1.05) if rng.random() < 0.1 else later / rng.uniform(0.92, 0.98)
            prices.insert(0, _round_price(earlier, step))
        history = [(prices[0], published_at), *zip(prices[1:], moments, strict=True)]

    photo_count = rng.randint(1, 2) if property_type == Type.LAND else _weighted(rng, _PHOTO_COUNTS)
    cover = {"flat": "building", "house": "house", "commercial": "building", "land": "land"}[group]
    photos = [rng.choice(_POOL_BY_KIND[cover])]
    if property_type == Type.LAND:
        photos += rng.sample([i for i in _POOL_BY_KIND["land"] if i != photos[0]], photo_count - 1)
    else:
        room_kinds = ["living", "kitchen", "bedroom", "bathroom"] if bedrooms else ["living", "kitchen", "bathroom"]
        photos += [rng.choice(_POOL_BY_KIND[kind]) for kind in room_kinds[:photo_count - 1]]

    serving = sorted({city_index % agent_count, (city_index + 7) % agent_count})
    street_name = rng.choice(city.streets)
    item = DemoListing(
        key=f"{DEMO_KEY_PREFIX}{index:06d}",
        agent_index=rng.choice(serving),
        city=city,
        neighbourhood=neighbourhood,
        title="",
        description="",
        listing_type=listing_type,
        rent_period=rent_period,
        property_type=property_type,
        status=status,
        price=price,
        bedrooms=bedrooms,
        bathrooms=bathrooms,
        area_sqm=Decimal(area).quantize(Decimal("0.01")),
        year_built=year,
        street=city.address.format(n=rng.randint(1, 180), street=street_name),
        postal_code=_postal_code(rng, city, neighbourhood),
        latitude=round(rng.gauss(neighbourhood.latitude, 0.0055), 6),
        longitude=round(rng.gauss(neighbourhood.longitude, 0.0055 / math.cos(math.radians(neighbourhood.latitude))),
                        6),
        features=features,
        close_price=close_price,
        closed_at=closed_at,
        published_at=published_at,
        created_at=created_at,
        price_history=history,
        photos=photos,
    )
    adjective = rng.choice(_ADJECTIVES[:-1] if year and year >= 2010 else _ADJECTIVES)
    item.title = _title(adjective, property_type, bedrooms, area, neighbourhood, features)
    item.description = _description(rng, item, adjective)
    return item


def default_now():
    """The reference time of a seed: today's midnight (UTC), so a day's seeds are identical."""
    return datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def generate(*, seed, count, agent_count, now=None, start=0):
    """Yield `count` demo listings for `seed` (from index `start`), assigned to `agent_count` agents."""
    if agent_count < 1:
        raise ValueError("demo listings need at least one agent")
    now = now or default_now()
    for index in range(start, start + count):
        yield _one(seed, index, agent_count, now)


# --- writing ----------------------------------------------------------------------------------

@dataclass
class SeedSummary:
    listings: int = 0
    photos: int = 0
    price_changes: int = 0
    favorites: int = 0
    photos_made: int = 0
    seconds: float = 0.0
    statuses: Counter = field(default_factory=Counter)
    cities: Counter = field(default_factory=Counter)


def demo_listings():
    return Listing.objects.filter(external_key__startswith=DEMO_KEY_PREFIX)


def delete_demo_listings():
    """Delete the demo listings with their photos, history and favorites (the pool files stay)."""
    with transaction.atomic():
        # The ORM's delete, so that other apps' on_delete rules hold; only the ids are loaded.
        deleted, _by_model = demo_listings().only("pk").delete()
    return deleted


def _columns(model, names):
    """Quoted table and column names of `model`, checked against its fields."""
    quote = connection.ops.quote_name
    columns = [model._meta.get_field(name).column for name in names]
    return quote(model._meta.db_table), ", ".join(quote(column) for column in columns)


# Written with COPY rather than bulk_create: measured here (bench/seed.py), bulk_create spends
# about 0.65 ms per listing (compiling and parsing a 28-column VALUES list); COPY under 0.1 ms. Every column
# a model requires must be listed (a new NOT NULL column without a database default fails the
# seed, and listings/tests/test_demo.py with it).
LISTING_COLUMNS = (
    "id", "agent", "external_key", "title", "description", "listing_type", "rent_period", "property_type", "status",
    "price", "currency", "bedrooms", "bathrooms", "area_sqm", "year_built", "street", "city", "region",
    "postal_code", "country", "location", "time_zone", "features", "close_price", "closed_at", "published_at",
    "view_count", "created_at", "updated_at",
)
PRICE_CHANGE_COLUMNS = ("listing", "price", "changed_at")
PHOTO_COLUMNS = ("listing", "image", "thumbnail", "large", "width", "height", "caption", "position", "created_at")


def _copy(cursor, model, names, rows):
    table, columns = _columns(model, names)
    with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # names from the model, not input
        for row in rows:
            copy.write_row(row)


def _next_ids(cursor, model, count):
    table = model._meta.db_table
    cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [table, count])
    return [row[0] for row in cursor.fetchall()]


def _write_batch(cursor, items, agents, summary, now):
    ids = _next_ids(cursor, Listing, len(items))
    currency = settings.CURRENCY
    _copy(cursor, Listing, LISTING_COLUMNS, (
        (pk, agents[item.agent_index], item.key, item.title, item.description, item.listing_type, item.rent_period,
         item.property_type, item.status, item.price, currency, item.bedrooms, item.bathrooms, item.area_sqm,
         item.year_built, item.street, item.city.name, item.city.region, item.postal_code, item.city.country,
         f"SRID=4326;POINT({item.longitude!r} {item.latitude!r})", item.city.time_zone, item.features,
         item.close_price, item.closed_at, item.published_at, 0, item.created_at, now)
        for pk, item in zip(ids, items, strict=True)))
    _copy(cursor, PriceChange, PRICE_CHANGE_COLUMNS, (
        (pk, price, at) for pk, item in zip(ids, items, strict=True) for price, at in item.price_history))
    _copy(cursor, ListingPhoto, PHOTO_COLUMNS, (
        (pk, PHOTO_POOL[index].name, PHOTO_POOL[index].name, PHOTO_POOL[index].name, PHOTO_SIZE[0], PHOTO_SIZE[1],
         PHOTO_POOL[index].caption, position, item.created_at)
        for pk, item in zip(ids, items, strict=True) for position, index in enumerate(item.photos)))

    summary.listings += len(items)
    summary.price_changes += sum(len(item.price_history) for item in items)
    summary.photos += sum(len(item.photos) for item in items)
    summary.statuses.update(item.status for item in items)
    summary.cities.update(item.city.name for item in items)
    return [pk for pk, item in zip(ids, items, strict=True) if item.status == Status.ACTIVE]


def seed_listings(*, agents, customers=(), count, seed, now=None, batch_size=2000, progress=None):
    """Write `count` demo listings for `seed`, spread over `agents` (user ids), in one transaction.

    Customers (user ids) get a few favorites each. `progress(n)` is called after each batch.
    Publishes no events (see the module docstring). Returns a SeedSummary.
    """
    started = time.monotonic()
    now = now or default_now()
    summary = SeedSummary(photos_made=ensure_photo_pool())
    agents = list(agents)
    active = []
    written_at = datetime.now(UTC)
    with transaction.atomic(), connection.cursor() as cursor:
        for start in range(0, count, batch_size):
            items = list(generate(seed=seed, count=min(batch_size, count - start), agent_count=len(agents), now=now,
                                  start=start))
            ids = _write_batch(cursor.cursor, items, agents, summary, written_at)
            if len(active) < 5000:
                active += ids
            if progress:
                progress(len(items))
        rng = random.Random(f"{seed}:favorites")
        favorites = [Favorite(user_id=customer, listing_id=listing_id)
                     for customer in customers if active
                     for listing_id in rng.sample(active, min(len(active), rng.randint(0, 6)))]
        Favorite.objects.bulk_create(favorites, ignore_conflicts=True)
        summary.favorites = len(favorites)
    summary.seconds = time.monotonic() - started
    return summary
