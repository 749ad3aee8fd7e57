#!/usr/bin/env bash
# Start a PostgreSQL server for the tokmeter test suite and print its URL on stdout (last line).
# Idempotent: safe to run when the server is already up and the role/database exist.
#
#   scripts/start-postgres.sh            start (or keep) the server, ensure role + database, print the URL
#   scripts/start-postgres.sh stop       stop it (used by the Postgres outage test through TOKMETER_TEST_PG_CTL)
#   scripts/start-postgres.sh start      start it without touching roles
#
# Strategy: use the Debian cluster (pg_ctlcluster <ver> main) when one exists; otherwise (or with
# TOKMETER_PG_MODE=private) initdb a private data dir under ${TOKMETER_PG_DIR:-/tmp/tokmeter-pg} and run it with
# pg_ctl on ${TOKMETER_PG_PORT:-5432}. Runs as root (server runs as the postgres account) or as a normal user.
set -euo pipefail

PORT="${TOKMETER_PG_PORT:-5432}"
ROLE=tokmeter
PASS=tokmeter
DB=tokmeter_test
ACTION="${1:-setup}"

pg_bin() {
  local v
  for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
    if [ -x "/usr/lib/postgresql/$v/bin/$1" ]; then echo "/usr/lib/postgresql/$v/bin/$1"; return 0; fi
  done
  command -v "$1"
}

as_pg() { # run a command as the postgres superuser OS account
  if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
}

MODE=private
VER=""
if [ "${TOKMETER_PG_MODE:-}" != private ] && command -v pg_lsclusters >/dev/null 2>&1; then
  VER="$(pg_lsclusters -h 2>/dev/null | awk '$2=="main"{print $1; exit}')"
  if [ -n "$VER" ]; then MODE=debian; fi
fi
PRIVDIR="${TOKMETER_PG_DIR:-/tmp/tokmeter-pg}"

do_start() {
  if [ "$MODE" = debian ]; then
    pg_ctlcluster "$VER" main start 2>/dev/null || pg_ctlcluster "$VER" main status >/dev/null
  else
    if [ ! -f "$PRIVDIR/data/PG_VERSION" ]; then
      mkdir -p "$PRIVDIR"
      if [ "$(id -u)" = 0 ]; then chown postgres "$PRIVDIR" 2>/dev/null || true; fi
      as_pg "$(pg_bin initdb) -D '$PRIVDIR/data' -A trust -U postgres >/dev/null"
    fi
    if ! as_pg "$(pg_bin pg_ctl) -D '$PRIVDIR/data' status" >/dev/null 2>&1; then
      as_pg "$(pg_bin pg_ctl) -D '$PRIVDIR/data' -l '$PRIVDIR/log' -w -o '-p $PORT -k $PRIVDIR -c listen_addresses=127.0.0.1' start" >/dev/null
    fi
  fi
  # wait until it accepts connections
  for _ in $(seq 1 50); do
    if as_pg "$(pg_bin pg_isready) -q -h 127.0.0.1 -p $PORT"; then return 0; fi
    sleep 0.2
  done
  echo "start-postgres: server did not become ready on port $PORT" >&2
  return 1
}

do_stop() {
  if [ "$MODE" = debian ]; then
    pg_ctlcluster "$VER" main stop -m fast 2>/dev/null || true
  else
    as_pg "$(pg_bin pg_ctl) -D '$PRIVDIR/data' -m fast -w stop" >/dev/null 2>&1 || true
  fi
}

psql_su() {
  if [ "$MODE" = debian ]; then as_pg "psql -X -q -v ON_ERROR_STOP=1 -p $PORT -d postgres -tAc \"$1\"";
  else as_pg "$(pg_bin psql) -X -q -v ON_ERROR_STOP=1 -h $PRIVDIR -p $PORT -U postgres -d postgres -tAc \"$1\""; fi
}

case "$ACTION" in
  stop) do_stop; exit 0 ;;
  start) do_start; exit 0 ;;
  setup) ;;
  *) echo "usage: $0 [setup|start|stop]" >&2; exit 2 ;;
esac

do_start >&2
if [ "$(psql_su "SELECT 1 FROM pg_roles WHERE rolname='$ROLE'")" != 1 ]; then
  psql_su "CREATE ROLE $ROLE LOGIN PASSWORD '$PASS'"
fi
if [ "$(psql_su "SELECT 1 FROM pg_database WHERE datname='$DB'")" != 1 ]; then
  psql_su "CREATE DATABASE $DB OWNER $ROLE"
fi
echo "postgres://$ROLE:$PASS@127.0.0.1:$PORT/$DB"
