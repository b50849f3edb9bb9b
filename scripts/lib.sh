# Shared set-up steps for `make run`, `make test` and `make stop` (sourced, not executed).
#
# Every step checks before it acts, so a second run does nothing and takes about a second.
# Local services live under a state directory (var/ in the checkout) unless DATABASE_URL /
# REDIS_URL point elsewhere.

set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VAR="$ROOT/var"
VENV="$ROOT/.venv"
PY="$VENV/bin/python"
mkdir -p "$VAR/log"

say() { printf '\033[1m==>\033[0m %s\n' "$*"; }
warn() { printf '\033[33m!!\033[0m %s\n' "$*" >&2; }
die() { printf '\033[31mxx\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"
  elif command -v sudo >/dev/null; then sudo "$@"
  else die "need root to run: $* (install it, or run as root)"; fi
}

# --- system packages ------------------------------------------------------------------------

pg_major_installed() {
  ls /usr/lib/postgresql 2>/dev/null | grep -E '^[0-9]+$' | sort -n | tail -n 1
}

pg_major_available() {
  # The major version Debian's `postgresql` metapackage depends on (15 on Debian 12, 17 on 13).
  apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1
}

gdal_package() {
  # libgdal32 on Debian 12, libgdal36 on Debian 13, libgdal34t64 on Ubuntu 24.04 (64-bit time_t).
  apt-cache search --names-only '^libgdal[0-9]+(t64)?$' 2>/dev/null | awk '{print $1}' | sort -V | tail -n 1
}

need_pkgs=()
system_missing() {
  need_pkgs=()
  # A local PostgreSQL/Redis only when the environment names none (DATABASE_URL / REDIS_URL).
  if [ -z "${DATABASE_URL:-}" ]; then
    local pgv; pgv="$(pg_major_installed)"
    if [ -z "$pgv" ] || [ ! -x "/usr/lib/postgresql/$pgv/bin/initdb" ]; then
      need_pkgs+=(postgresql postgresql-contrib); pgv=""
    fi
    if [ -z "$pgv" ] || [ ! -f "/usr/share/postgresql/$pgv/extension/postgis.control" ]; then
      need_pkgs+=("postgis-for-${pgv:-?}")
    fi
  fi
  ldconfig -p 2>/dev/null | grep -q 'libgdal\.so' || need_pkgs+=(gdal)
  if [ -z "${REDIS_URL:-}" ]; then
    command -v redis-server >/dev/null || need_pkgs+=(redis-server)
  fi
  if [ "${REALIO_NEED_BROWSER:-0}" = 1 ]; then
    [ -x /usr/bin/chromium ] || need_pkgs+=(chromium fonts-liberation)
  fi
  command -v npm >/dev/null || need_pkgs+=(npm)
  [ ${#need_pkgs[@]} -gt 0 ]
}

ensure_system() {
  system_missing || return 0
  say "Installing system packages (once): ${need_pkgs[*]}"
  command -v apt-get >/dev/null || die "no apt-get: install PostgreSQL+PostGIS, GDAL, Redis and Chromium by hand (see README)"
  as_root apt-get update -qq >"$VAR/log/apt.log" 2>&1 || die "apt-get update failed (see var/log/apt.log)"
  local pgv gdal pkgs=()
  gdal="$(gdal_package)"; [ -n "$gdal" ] || die "no libgdal package found by apt-cache"
  pkgs=("$gdal")
  if [ -z "${DATABASE_URL:-}" ]; then
    pgv="$(pg_major_installed)"; [ -n "$pgv" ] || pgv="$(pg_major_available)"
    [ -n "$pgv" ] || die "cannot tell which PostgreSQL $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-}") ships"
    pkgs+=("postgresql-$pgv" postgresql-contrib "postgresql-$pgv-postgis-3")
  fi
  [ -n "${REDIS_URL:-}" ] || pkgs+=(redis-server)
  [ "${REALIO_NEED_BROWSER:-0}" = 1 ] && pkgs+=(chromium fonts-liberation)
  command -v npm >/dev/null || pkgs+=(npm)
  say "  $(. /etc/os-release 2>/dev/null; echo "${PRETTY_NAME:-this system}"): ${pkgs[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${pkgs[@]}" \
    >>"$VAR/log/apt.log" 2>&1 || die "apt-get install failed (see var/log/apt.log)"
}

# --- Python and front-end packages ------------------------------------------------------------

ensure_venv() {
  local reqs="$1" stamp="$VENV/.installed-$(basename "$1")"
  if [ ! -x "$PY" ]; then
    say "Creating .venv"
    python3 -m venv "$VENV"
  fi
  # Reinstall only when a requirements file changed since the last install.
  if [ ! -f "$stamp" ] || [ -n "$(find "$ROOT" -maxdepth 1 -name 'requirements*.txt' -newer "$stamp")" ]; then
    say "Installing Python packages from $(basename "$reqs") into .venv"
    "$PY" -m pip install -q --disable-pip-version-check -r "$reqs" >"$VAR/log/pip.log" 2>&1 \
      || { tail -n 20 "$VAR/log/pip.log"; die "pip install failed (see var/log/pip.log)"; }
    touch "$stamp"
  fi
}

ensure_assets() {
  local stamp="$ROOT/node_modules/.installed"
  if [ ! -f "$stamp" ] || [ "$ROOT/package-lock.json" -nt "$stamp" ]; then
    say "Installing front-end packages (npm ci)"
    (cd "$ROOT" && npm ci --no-audit --no-fund --loglevel=error >"$VAR/log/npm.log" 2>&1) \
      || die "npm ci failed (see var/log/npm.log)"
    touch "$stamp"
  fi
}

# --- local PostgreSQL and Redis ----------------------------------------------------------------

checkout_hash() { printf '%s' "$ROOT" | cksum | awk '{print $1}'; }

port_taken() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Ports are derived from the checkout's path (two checkouts do not collide), moved on when
# taken by something else, and remembered in var/ports.env so a restart keeps them.
choose_ports() {
  if [ -f "$VAR/ports.env" ]; then . "$VAR/ports.env"; return; fi
  local off; off=$(( $(checkout_hash) % 1000 ))
  PG_PORT=$((54000 + off)); REDIS_PORT=$((56000 + off))
  while port_taken "$PG_PORT"; do PG_PORT=$((PG_PORT + 1)); done
  while port_taken "$REDIS_PORT"; do REDIS_PORT=$((REDIS_PORT + 1)); done
  printf 'PG_PORT=%s\nREDIS_PORT=%s\n' "$PG_PORT" "$REDIS_PORT" >"$VAR/ports.env"
}

pg_user_can_reach() {
  [ "$(id -u)" != 0 ] && return 0
  runuser -u postgres -- test -x "$1" 2>/dev/null
}

pg_dir() {
  # The cluster must be reachable by the postgres user; a checkout under a private folder
  # keeps it in /var/tmp instead, keyed to the checkout.
  if pg_user_can_reach "$VAR"; then echo "$VAR/pg"
  else echo "/var/tmp/realio-$(checkout_hash)/pg"; fi
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start_postgres() {
  local pgv bin data sock
  pgv="$(pg_major_installed)"; bin="/usr/lib/postgresql/$pgv/bin"
  data="$(pg_dir)"; sock="$(dirname "$data")/pgsock"
  if [ ! -f "$data/PG_VERSION" ]; then
    say "Creating a PostgreSQL $pgv cluster in $data"
    mkdir -p "$data" "$sock"
    [ "$(id -u)" = 0 ] && chown postgres: "$data" "$sock" && chmod 700 "$data"
    as_pg "$bin/initdb" -D "$data" -A trust -E UTF8 --locale=C.UTF-8 -U postgres >"$VAR/log/initdb.log" 2>&1 \
      || die "initdb failed (see var/log/initdb.log)"
  fi
  if ! as_pg "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
    say "Starting PostgreSQL $pgv on 127.0.0.1:$PG_PORT"
    local log="$(dirname "$data")/postgresql.log"
    touch "$log"; [ "$(id -u)" = 0 ] && chown postgres: "$log"
    local opts="-c listen_addresses=127.0.0.1 -c port=$PG_PORT -c unix_socket_directories=$sock -c max_connections=200"
    # fsync off only for throwaway test clusters (CI); a developer's demo data stays durable.
    [ "${CI:-}" = true ] && opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    as_pg "$bin/pg_ctl" -D "$data" -l "$log" -w -t 30 -o "$opts" start >/dev/null \
      || { tail -n 20 "$log"; die "PostgreSQL did not start (see $log)"; }
  fi
  if ! as_pg "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -tAc "select 1 from pg_database where datname='realio'" postgres | grep -q 1; then
    as_pg "$bin/createdb" -h 127.0.0.1 -p "$PG_PORT" -U postgres realio
  fi
}

stop_postgres() {
  local pgv data; pgv="$(pg_major_installed)"; data="$(pg_dir)"
  [ -n "$pgv" ] && [ -f "$data/postmaster.pid" ] || return 0
  say "Stopping PostgreSQL"
  as_pg "/usr/lib/postgresql/$pgv/bin/pg_ctl" -D "$data" -m fast -w stop >/dev/null || true
}

start_redis() {
  local pidfile="$VAR/redis.pid"
  if [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; then return 0; fi
  say "Starting Redis on 127.0.0.1:$REDIS_PORT"
  mkdir -p "$VAR/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --daemonize yes --save '' --appendonly no \
    --dir "$VAR/redis" --pidfile "$pidfile" --logfile "$VAR/log/redis.log" >/dev/null
  for _ in $(seq 50); do port_taken "$REDIS_PORT" && return 0; sleep 0.1; done
  die "Redis did not start (see var/log/redis.log)"
}

stop_redis() {
  local pidfile="$VAR/redis.pid"
  [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null || return 0
  say "Stopping Redis"
  kill "$(cat "$pidfile")"; rm -f "$pidfile"
}

# Starts what is not given by the environment and exports the URLs the settings read.
ensure_services() {
  choose_ports
  if [ -z "${DATABASE_URL:-}" ]; then
    start_postgres
    export DATABASE_URL="postgis://postgres@127.0.0.1:$PG_PORT/realio"
  fi
  if [ -z "${REDIS_URL:-}" ]; then
    start_redis
    export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  fi
  # manage.py run by hand finds the same services through this file (read by settings/base.py).
  printf 'DATABASE_URL=%s\nREDIS_URL=%s\n' "$DATABASE_URL" "$REDIS_URL" >"$VAR/local.env"
}

setup() {
  ensure_system
  ensure_venv "$1"
  ensure_assets
  ensure_services
}
