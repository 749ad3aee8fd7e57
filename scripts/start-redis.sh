#!/usr/bin/env bash
# Start a Redis server for the tokmeter test suite and print its URL on stdout (last line).
# Idempotent: when a server already answers on the port, it is kept.
#
#   scripts/start-redis.sh            start (or keep) the server, print redis://127.0.0.1:PORT
#   scripts/start-redis.sh stop       graceful SHUTDOWN (fsyncs the AOF), wait until the port is closed
#   scripts/start-redis.sh restart    stop, then start again from the same data dir (AOF replay); print the URL
#   scripts/start-redis.sh start      same as no argument
#
# Port: ${TOKMETER_REDIS_PORT:-6379}; data dir: ${TOKMETER_REDIS_DIR:-/tmp/tokmeter-redis-PORT}. AOF is on with
# appendfsync ${TOKMETER_REDIS_FSYNC:-always} (always: an XADDed and acknowledged event survives a Redis crash; a Redis that
# only holds rate limits can use everysec, see docs/DEPLOYMENT.md).
set -euo pipefail

PORT="${TOKMETER_REDIS_PORT:-6379}"
DIR="${TOKMETER_REDIS_DIR:-/tmp/tokmeter-redis-$PORT}"
ACTION="${1:-start}"
FSYNC="${TOKMETER_REDIS_FSYNC:-always}"
URL="redis://127.0.0.1:$PORT"

bin() {
  if command -v "$1" >/dev/null 2>&1; then command -v "$1"; return 0; fi
  echo "start-redis: $1 not found; install Debian's redis-server package (apt-get install -y redis-server)" >&2
  exit 1
}

up() { "$(bin redis-cli)" -h 127.0.0.1 -p "$PORT" ping 2>/dev/null | grep -q PONG; }

do_start() {
  if up; then return 0; fi
  mkdir -p "$DIR"
  "$(bin redis-server)" --bind 127.0.0.1 --port "$PORT" --dir "$DIR" --daemonize yes \
    --pidfile "$DIR/redis.pid" --logfile "$DIR/redis.log" \
    --appendonly yes --appendfsync "$FSYNC" --save '' --protected-mode yes >/dev/null
  for _ in $(seq 1 100); do
    if up; then return 0; fi
    sleep 0.1
  done
  echo "start-redis: redis-server did not answer on 127.0.0.1:$PORT (see $DIR/redis.log)" >&2
  return 1
}

do_stop() {
  if ! up; then return 0; fi
  "$(bin redis-cli)" -h 127.0.0.1 -p "$PORT" shutdown >/dev/null 2>&1 || true
  for _ in $(seq 1 100); do
    if ! up; then return 0; fi
    sleep 0.1
  done
  echo "start-redis: redis-server on port $PORT did not stop" >&2
  return 1
}

case "$ACTION" in
  start) do_start ;;
  stop) do_stop; exit 0 ;;
  restart) do_stop; do_start ;;
  *) echo "usage: $0 [start|stop|restart]" >&2; exit 2 ;;
esac
echo "$URL"
