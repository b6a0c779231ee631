#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the outbox's tests and benchmarks (the shared store).
#
#   scripts/postgres.sh [--dir DIR] [--port PORT] [--watch-pid PID] [--cleanup]
#
# Everything lives in DIR (default: a new temp dir): the cluster (initdb, trust authentication for the role
# `mss`, loopback only), its socket and its log. As root the server runs as `nobody` (PostgreSQL refuses
# root). When ready it prints `PGURL=postgresql://mss@127.0.0.1:PORT/postgres`, `DIR=...` and `READY`, then
# keeps running until SIGTERM/SIGINT or until process PID (--watch-pid) exits; then it stops the server
# (and removes DIR with --cleanup).
set -euo pipefail

dir="" port=15432 watch_pid="" cleanup_dir=no
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    --cleanup) cleanup_dir=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "postgres: unknown argument $1" >&2; exit 2 ;;
  esac
done
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[[ -n $bindir && -x $bindir/initdb ]] || { echo "postgres: PostgreSQL not installed (scripts/install-deps.sh)" >&2; exit 3; }

[[ -n $dir ]] || dir=$(mktemp -d /tmp/mss-postgres.XXXXXX)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
chmod 755 "$dir"
as=()
if [[ $(id -u) -eq 0 ]]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi
if [[ ! -f $dir/data/PG_VERSION ]]; then
  "${as[@]}" "$bindir/initdb" -D "$dir/data" -A trust -U mss -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
    { cat "$dir/initdb.log" >&2; exit 1; }
fi
"${as[@]}" "$bindir/postgres" -D "$dir/data" -c listen_addresses=127.0.0.1 -p "$port" -k "$dir" \
  -c max_connections=200 -c shared_buffers=64MB -c logging_collector=off >"$dir/postgres.log" 2>&1 &
pg=$!

stop() {
  # the postmaster itself (fast shutdown): runuser ignores SIGINT while its child runs
  if [[ -f $dir/data/postmaster.pid ]]; then kill -INT "$(head -n 1 "$dir/data/postmaster.pid")" 2>/dev/null || true; fi
  kill -INT "$pg" 2>/dev/null || true
  wait "$pg" 2>/dev/null || true
  [[ $cleanup_dir == yes ]] && rm -rf "$dir"
}
trap stop EXIT
trap 'exit 0' TERM INT

for _ in $(seq 1 100); do
  "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" && break
  kill -0 "$pg" 2>/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
  sleep 0.1
done
"$bindir/pg_isready" -q -h 127.0.0.1 -p "$port" || { cat "$dir/postgres.log" >&2; exit 1; }

echo "PGURL=postgresql://mss@127.0.0.1:$port/postgres"
echo "DIR=$dir"
echo "READY"

while kill -0 "$pg" 2>/dev/null; do
  [[ -n $watch_pid ]] && ! kill -0 "$watch_pid" 2>/dev/null && break
  sleep 0.5
done
