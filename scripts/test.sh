#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what the tests need, then format, lints and tests.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=never
# A CI build starts fresh: incremental data would only cost time and 1.6 GB of disk.
[[ -z ${CI:-} ]] || export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

bash scripts/install-deps.sh

cargo fmt --all --check
# the layout rules of ARCHITECTURE.md: no module cycle, no source file over 1 000 lines of code, no reference
# outside the repository
python3 scripts/check-layout.py
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo test --workspace --locked

# a short coverage-guided fuzz run of the message readers (outside input: MIME, IHE_XDM, METADATA.XML)
bash fuzz/run-stable.sh 30
