# syntax=docker/dockerfile:1.7
# One image for every Realio process; the command picks the role at run time:
#   web (gunicorn, WSGI) · asgi (uvicorn, websockets under /ws/) · worker · beat · migrate · manage …
# See docs/deploy.md. Build: docker build -t realio:$(git rev-parse --short HEAD) .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:22-bookworm-slim

# --- front-end packages (htmx, leaflet) from package-lock.json ------------------------------
FROM ${NODE_IMAGE} AS assets
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

# --- Python packages, built with the compilers and headers the runtime does not need --------
FROM ${PYTHON_IMAGE} AS build
# Versions come from the pinned base image's Debian release (bookworm); pinning each apt
# package would break on every Debian security update.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential libpq-dev \
 && rm -rf /var/lib/apt/lists/*
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY requirements.txt /tmp/requirements.txt
RUN python -m venv /opt/venv \
 && /opt/venv/bin/pip wheel --wheel-dir /wheels -r /tmp/requirements.txt \
 && /opt/venv/bin/pip install --no-index --find-links /wheels -r /tmp/requirements.txt

# --- runtime base: only the shared libraries GeoDjango and psycopg load ---------------------
FROM ${PYTHON_IMAGE} AS runtime-base
# GDAL, GEOS and PROJ for django.contrib.gis; libpq5 for psycopg (its binary wheel also
# bundles one). Same reason as above for not pinning versions.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgdal32 libgeos-c1v5 libproj25 libpq5 \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 realio \
 && useradd --system --uid 10001 --gid realio --home-dir /app --shell /usr/sbin/nologin realio
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=realio.settings.production
WORKDIR /app
COPY --from=build /opt/venv /opt/venv

# --- static files, collected with build-only values that never reach the final image -------
FROM runtime-base AS static
COPY . /app
COPY --from=assets /src/node_modules /app/node_modules
# Production settings refuse to load without these; the values below exist only in this
# throw-away stage (not ENV, not in the final image's layers or history) and connect nowhere.
RUN SECRET_KEY="build-only-collectstatic-key-not-used-at-runtime-0123456789abcdef" \
    ALLOWED_HOSTS=build.invalid \
    DATABASE_URL=postgis://build@build.invalid:5432/build \
    REDIS_URL=redis://build.invalid:6379 \
    python manage.py collectstatic --noinput --verbosity 0

# --- the image ------------------------------------------------------------------------------
FROM runtime-base AS runtime
COPY --chown=root:root . /app
COPY --from=static /app/var/static /app/var/static
# Bytecode compiled now: the root filesystem is read-only at run time (PYTHONDONTWRITEBYTECODE).
RUN python -m compileall -q -j 0 /app \
 && chmod 0755 /app/deploy/docker-entrypoint.sh \
 && mkdir -p /app/var/media /app/var/private /app/var/notifications \
 && chown -R realio:realio /app/var/media /app/var/private /app/var/notifications
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]
ENTRYPOINT ["/app/deploy/docker-entrypoint.sh"]
CMD ["web"]
