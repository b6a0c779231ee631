#!/usr/bin/env bash
# REST benchmark: wrk against /v1/directory/autocomplete on a 535 k-entry index, then (with --soak) a
# soak of load bursts checking that the server's RSS stays flat and nothing fails.
#   scripts/bench-serve.sh [--entries N] [--duration 30s] [--connections 32] [--soak 600] [--compare BIN]
#                          [--console N] [--bin MSS]
# Prints requests/s, p50/p99 latency and the server's RSS next to the goals (>= 10 000 req/s, p99 <= 10 ms,
# RSS <= 250 MB). wrk runs on the same 2-core machine as the server, as the goal says. The same mix runs
# without a key and with a client key (X-Api-Key), in turns, three times each in one run: the ratio of requests/s is
# the cost of authentication (goal >= 0.95).
# --console N: then N ops consoles open and polling (scripts/console-pollers.py: every second, the outbox,
# the inbox lists and the sources, over an outbox of 2 000 accepted letters to 10 000 recipients), in turns
# with none, three rounds each: the ratio of autocomplete requests/s with them / without (goal >= 0.95);
# first, the service's CPU while the consoles alone poll (a figure other work on the machine hardly moves).
# --bin MSS: measure that binary instead of building this checkout in release (figures of another profile are
# not comparable with the goals).
# --compare BIN: the same data and query mix, also served by another build of mss (e.g. the base commit's,
# built from a second checkout), in turns (BIN, this build, BIN, this build): figures side by side.
set -euo pipefail
cd "$(dirname "$0")/.."
entries=535000 duration=30s connections=32 soak=0 compare="" console=0 bin=""
while (($#)); do
  case "$1" in
    --entries) entries=$2; shift 2 ;;
    --duration) duration=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --soak) soak=$2; shift 2 ;;
    --compare) compare=$2; shift 2 ;;
    --console) console=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
command -v wrk >/dev/null || bash scripts/install-deps.sh
if [[ -n $bin ]]; then
  mss=$bin
else
  cargo build --release --locked -q
  mss=target/release/mss
fi
work=$(mktemp -d)
trap 'kill $server 2>/dev/null || true; rm -rf "$work"' EXIT
$mss demo-data --count "$entries" --seed 535 --out "$work/extraction.txt" 2>/dev/null
# the query mix: derived from the data itself so every kind of query hits real names
python3 scripts/autocomplete-queries.py "$work/extraction.txt" > "$work/queries.txt"
export MSS_QUERIES="$work/queries.txt"
server=""
rss() { awk '/VmRSS/ {print int($2/1024)}' "/proc/$server/status"; }
# the server's CPU time so far (user + system, clock ticks)
ticks() { awk '{print $14 + $15}' "/proc/$server/stat"; }
# serve BIN on its own index of the same file (a build may index otherwise): sets $server and $port
start() {
  local bin=$1 data=$2
  [[ -d $data ]] || $bin --data "$data" import "$work/extraction.txt" --quiet
  port=$((20000 + RANDOM % 20000))
  $bin --data "$data" serve --listen "127.0.0.1:$port" 2>"$work/serve.log" &
  server=$!
  for _ in $(seq 1 200); do curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
}
measure() {
  wrk -t2 -c"$connections" -d5s -s benches/autocomplete.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
  wrk -t2 -c"$connections" -d"$duration" -s benches/autocomplete.lua "http://127.0.0.1:$port" | grep '^requests='
}
if [[ -n $compare ]]; then
  for round in 1 2; do
    for which in compared this; do
      if [[ $which == compared ]]; then start "$compare" "$work/data-compared"; else start "$mss" "$work/data"; fi
      line=$(measure)
      echo "round $round, $which build ($([[ $which == compared ]] && echo "$compare" || echo "$mss")): $line, RSS $(rss) MB"
      kill "$server"; wait "$server" 2>/dev/null || true
    done
  done
fi
start "$mss" "$work/data"
# a client whose key half of the runs sends (the service sees a new client within 2 s)
key=$($mss --data "$work/data" client add bench --scope directory:read 2>/dev/null | tail -1)
sleep 2
wrk -t2 -c"$connections" -d5s -s benches/autocomplete.lua "http://127.0.0.1:$port" >/dev/null  # warm-up
run() {
  local out
  out=$(MSS_API_KEY=$1 wrk -t2 -c"$connections" -d"$duration" -s benches/autocomplete.lua "http://127.0.0.1:$port" | grep '^requests=')
  # a refused key would answer fast and flatter the figure: every answer must be a 200
  case "$out" in *"errors_non2xx=0 socket_errors=0"*) echo "$out" ;; *) echo "errors: $out" >&2; return 1 ;; esac
}
rps() { sed -E 's/.*rps=([0-9]+).*/\1/' <<<"$1"; }
plain=() keyed=()
# three rounds, in turns: a burst of other work on the machine then weighs on both sides alike
for round in 1 2 3; do
  line=$(run "")
  echo "autocomplete, $entries entries, $connections connections, $duration, no key (round $round): $line"
  plain+=("$(rps "$line")")
  line=$(run "$key")
  echo "autocomplete, $entries entries, $connections connections, $duration, client key (round $round): $line"
  keyed+=("$(rps "$line")")
done
echo "  goal: rps >= 10000 and p99 <= 10 ms; server RSS now $(rss) MB (goal <= 250 MB)"
awk -v a="$(( plain[0] + plain[1] + plain[2] ))" -v b="$(( keyed[0] + keyed[1] + keyed[2] ))" \
  'BEGIN { printf "  with a key / without: %.3f of the requests/s (goal >= 0.95)\n", b / a }'
if ((console > 0)); then
  # something for the consoles to show: letters accepted into the service's outbox (nothing sends them)
  mkdir -p "$work/letters"
  python3 - "$work/letters" <<'PY'
import sys
for i in range(2000):
    to = ", ".join(f"dr.{i}.{j}@ch-{j}.mssante.fr" for j in range(5))
    with open(f"{sys.argv[1]}/{i:05}.eml", "w", newline="") as f:
        f.write(f"From: bench@ch-bench.mssante.fr\r\nTo: {to}\r\nSubject: CR {i}\r\n"
                f"Message-ID: <bench{i}@ch-bench.mssante.fr>\r\nDate: Mon, 23 Nov 2026 10:00:00 +0100\r\n\r\nCR\r\n")
PY
  echo not-used > "$work/token"
  $mss --data "$work/data" batch "$work/letters" --no-send --from bench@ch-bench.mssante.fr \
    --token-file "$work/token" 2>/dev/null | tail -1
  console_key=$($mss --data "$work/data" client add console --scope outbox:read --scope inbox:read \
    --scope metrics:read 2>/dev/null | tail -1)
  sleep 2
  alone=() watched=()
  secs=${duration%s}
  # what the consoles alone cost the service: its CPU while they poll and nothing else asks it anything
  t0=$(ticks)
  python3 scripts/console-pollers.py "$console" 1 10 "127.0.0.1:$port" "$console_key" > "$work/pollers.out"
  echo "  $console consoles alone for 10 s: $(( ($(ticks) - t0) * 1000 / $(getconf CLK_TCK) / 10 )) ms of the service's CPU a second; $(cat "$work/pollers.out")"
  for round in 1 2 3; do
    line=$(run "")
    echo "autocomplete, no console (round $round): $line"
    alone+=("$(rps "$line")")
    python3 scripts/console-pollers.py "$console" 1 "$((secs + 6))" "127.0.0.1:$port" "$console_key" \
      > "$work/pollers.out" &
    pollers=$!
    sleep 3
    line=$(run "")
    wait "$pollers" || { cat "$work/pollers.out"; echo "console requests failed" >&2; exit 1; }
    echo "autocomplete, $console consoles polling every second (round $round): $line; $(cat "$work/pollers.out")"
    watched+=("$(rps "$line")")
  done
  awk -v a="$(( alone[0] + alone[1] + alone[2] ))" -v b="$(( watched[0] + watched[1] + watched[2] ))" \
    'BEGIN { printf "  with the consoles / without: %.3f of the requests/s (goal >= 0.95)\n", b / a }'
fi
if ((soak > 0)); then
  start_rss=$(rss)
  echo "soak: ${soak}s of 15 s bursts at full speed on 8 connections, 15 s apart; RSS sampled after each burst"
  samples=()
  end=$((SECONDS + soak))
  while ((SECONDS < end)); do
    # wrk has no rate option: bursts and pauses exercise both the busy and the idle server
    out=$(wrk -t1 -c8 -d15s -s benches/autocomplete.lua "http://127.0.0.1:$port" | grep '^requests=')
    case "$out" in *"errors_non2xx=0 socket_errors=0"*) ;; *) echo "soak errors: $out"; exit 1 ;; esac
    samples+=("$(rss)")
    sleep 15
  done
  min=$(printf '%s\n' "${samples[@]}" | sort -n | head -1); max=$(printf '%s\n' "${samples[@]}" | sort -n | tail -1)
  echo "soak: RSS start ${start_rss} MB, min ${min} MB, max ${max} MB over ${#samples[@]} samples; zero errors"
  echo "soak: RSS samples (MB): ${samples[*]}"
  # a leak shows as growth over the start; drops are the allocator returning idle pages to the system
  awk -v a="$start_rss" -v b="$max" 'BEGIN { if (b > a * 1.10) { print "RSS grew more than 10 % over the start"; exit 1 } }'
fi
