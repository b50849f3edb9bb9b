"""Settings of bench/load.py's servers: the site's own (realio.settings.base), plus the floor's
hello-world view in a bench-only URLconf (bench/load_urls.py). Never used in production."""

from realio.settings.base import *  # noqa: F403

ROOT_URLCONF = "bench.load_urls"
