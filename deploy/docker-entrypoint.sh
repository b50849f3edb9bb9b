#!/bin/sh
# Entry point of the Realio image: the first argument picks the process (docs/deploy.md).
set -eu
cd /app
role="${1:-web}"
[ $# -gt 0 ] && shift

# Processes that fork (gunicorn's workers, Celery's pool) keep their metrics in files that one
# scrape adds up (prometheus_client multiprocess mode): a fresh directory per container start,
# set for these roles only (a `celery inspect ping` probe must not leave files behind).
multiproc() {
  export PROMETHEUS_MULTIPROC_DIR="${PROMETHEUS_MULTIPROC_DIR:-/tmp/prometheus-multiproc}"
  rm -rf "$PROMETHEUS_MULTIPROC_DIR"
  mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
}
case "$role" in
  web)      # HTTP on gunicorn (WSGI): DESIGN.md section 3
    multiproc
    exec gunicorn --config /app/deploy/gunicorn.conf.py realio.wsgi "$@" ;;
  asgi)     # websockets (/ws/) on uvicorn (ASGI)
    exec uvicorn realio.asgi:application --host 0.0.0.0 --port "${PORT:-8000}" \
      --proxy-headers --no-server-header --timeout-graceful-shutdown 30 \
      --log-level "$(echo "${LOG_LEVEL:-info}" | tr '[:upper:]' '[:lower:]')" "$@" ;;
  worker)   # CELERY_QUEUES picks the pool: default,search / notifications / ml; metrics on WORKER_METRICS_PORT
    multiproc
    exec celery -A realio worker -Q "${CELERY_QUEUES:-default,notifications,search,ml}" \
      --concurrency "${CELERY_CONCURRENCY:-2}" --loglevel "${LOG_LEVEL:-INFO}" "$@" ;;
  beat)     # exactly one replica
    exec celery -A realio beat --scheduler django_celery_beat.schedulers:DatabaseScheduler \
      --pidfile= --loglevel "${LOG_LEVEL:-INFO}" "$@" ;;
  migrate)  # one-shot, before a rollout
    exec python manage.py migrate --noinput "$@" ;;
  manage)
    exec python manage.py "$@" ;;
  *)
    exec "$role" "$@" ;;
esac
