#!/usr/bin/env bash
# Regenerates the embedded default dataset, assets/Extraction_Correspondance_MSSante_sample.zip: 20 000 synthetic
# mailboxes written by `mss demo-data` with the sample seed, zipped like the national download (one .txt, deflate,
# fixed time stamp so the bytes are reproducible). A unit test (src/data.rs) fails when it is stale.
set -euo pipefail
cd "$(dirname "$0")/.."
asset=assets/Extraction_Correspondance_MSSante_sample.zip
[[ -f $asset ]] || : > "$asset"   # the binary embeds it: a placeholder lets the first build succeed
cargo build --quiet --locked
seed=$(sed -n 's/^pub const SAMPLE_SEED: u64 = \([0-9_]*\);/\1/p' src/data.rs | tr -d _)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
target/debug/mss demo-data --count 20000 --seed "$seed" --out "$tmp/sample.txt"
python3 - "$tmp/sample.txt" "$asset" <<'PY'
import sys, zipfile
info = zipfile.ZipInfo("Extraction_Correspondance_MSSante_202611230000.txt", date_time=(2026, 11, 23, 0, 0, 0))
info.compress_type = zipfile.ZIP_DEFLATED
with open(sys.argv[1], "rb") as f, zipfile.ZipFile(sys.argv[2], "w") as z:
    z.writestr(info, f.read(), compresslevel=9)
PY
ls -l "$asset"
