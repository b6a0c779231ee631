#!/usr/bin/env bash
# Builds a fuzz target with libFuzzer coverage instrumentation on the stable toolchain (no sanitizer:
# that part of cargo-fuzz needs nightly) and runs it for a bounded time.
#   fuzz/run-stable.sh [SECONDS] [TARGET]     default 60 s, target `read` (else `imap`, `sandbox`, `hl7`)
# Seeds: fuzz/seeds/ (plus the CDA samples and the whitelist fixture) for `read`, fuzz/seeds/imap/ for
# `imap`, fuzz/seeds/sandbox/ for `sandbox`, the agency's example messages (crates/hl7/tests/fixtures) for
# `hl7`; corpus and crashes land in fuzz/corpus and fuzz/artifacts (git-ignored). Exit status is
# libFuzzer's: non-zero on a crash.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
seconds=${1:-60}
bin=${2:-read}
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
target_dir=${CARGO_TARGET_DIR:-$here/target}
cargo build --target-dir "$target_dir" --manifest-path "$here/Cargo.toml" --release --target "$target" --bin "$bin"
mkdir -p "$here/corpus/$bin" "$here/artifacts/$bin"
case $bin in
  imap) seeds=("$here/seeds/imap") ;;
  sandbox) seeds=("$here/seeds/sandbox") ;;
  hl7) seeds=("$here/../crates/hl7/tests/fixtures") ;;
  *) seeds=("$here/seeds" "$here/../examples/compose" "$here/../crates/message/tests/fixtures"
            "$here/../crates/message/tests/golden") ;;
esac
"$target_dir/$target/release/$bin" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
  -artifact_prefix="$here/artifacts/$bin/" "$here/corpus/$bin" "${seeds[@]}"
