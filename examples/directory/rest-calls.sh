#!/usr/bin/env bash
# The directory REST API from a shell: what an LPS back-end does, call by call.
# Start the service first (`cargo run --release -- serve`), then: examples/directory/rest-calls.sh [BASE_URL]
set -euo pipefail
base=${1:-${MSS_URL:-http://127.0.0.1:8080}}

echo "# readiness (503 while the index loads)"
curl -fsS "$base/readyz"

echo "# search-as-you-type: what a user typed so far, accents optional"
curl -fsS --get "$base/v1/directory/autocomplete" --data-urlencode "q=francois dup" --data-urlencode "limit=3"
echo

echo "# refined search: general practitioners in Paris, first page of 2"
page=$(curl -fsS --get "$base/v1/directory/search" \
  --data-urlencode "q=medecine generale" --data-urlencode "type=PER" --data-urlencode "dept=75" --data-urlencode "limit=2")
echo "$page"

echo "# next page: pass next_cursor back as cursor"
cursor=$(printf '%s' "$page" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("next_cursor",""))')
if [[ -n $cursor ]]; then
  curl -fsS --get "$base/v1/directory/search" \
    --data-urlencode "q=medecine generale" --data-urlencode "type=PER" --data-urlencode "dept=75" \
    --data-urlencode "limit=2" --data-urlencode "cursor=$cursor"
  echo
fi

echo "# one mailbox by address (404 problem+json when unknown)"
address=$(printf '%s' "$page" | python3 -c 'import json,sys; r=json.load(sys.stdin)["results"]; print(r[0]["address"] if r else "")')
[[ -n $address ]] && curl -fsS "$base/v1/directory/entries/$address" && echo

echo "# errors are application/problem+json naming the parameter"
curl -sS --get "$base/v1/directory/search" --data-urlencode "limit=500"
echo
