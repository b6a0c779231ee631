#!/usr/bin/env bash
# Installs what the tests and benchmarks need on a fresh Debian machine (idempotent; run as root or via sudo).
#   - chromium: the real browser of the widget test (driven by playwright-core from npm, no browser download)
#   - wrk: HTTP load generator of the REST benchmark
#   - postgresql: the shared outbox store of the outbox tests (a throwaway server, scripts/postgres.sh)
#   - isync: mbsync, the peer of the inbox benchmark (benches/inbox.rs)
#   - dovecot-*, postfix, openssl: the local operators (scripts/lps-operator.sh, `mss sandbox`)
#   - python3: the foreign client (smtplib/imaplib) of the sandbox test (tests/sandbox.rs)
#   - python3-prometheus-client: the Prometheus project's own text parser, which reads /metrics in the console test
#   - python-hl7 (pip, into tests/hl7/pylib; python3-pip only if pip is missing): the DPI of the HL7 tests
# Package post-install scripts must not start system daemons: a policy-rc.d refusing every start is put in
# place first (the tests start their own servers on loopback high ports).
set -euo pipefail
cd "$(dirname "$0")/.."

packages=(chromium wrk ca-certificates dovecot-imapd dovecot-submissiond dovecot-lmtpd postfix openssl slapd ldap-utils postgresql isync python3 python3-prometheus-client)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if ((${#missing[@]})); then
  sudo=""
  if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null || { echo "install-deps: need root to install: ${missing[*]}" >&2; exit 1; }
    sudo="sudo"
  fi
  if [[ ! -x /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod +x /usr/sbin/policy-rc.d
  fi
  echo "install-deps: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# playwright-core for the browser test (lock file committed; no browser download: it drives /usr/bin/chromium)
if [[ ! -d tests/browser/node_modules/playwright-core ]]; then
  (cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
fi

# the real FHIR R4 server of the FHIR tests: @medplum/fhir-router in memory behind node:http (lock file committed)
if [[ ! -d tests/fhir/node_modules/@medplum/fhir-router ]]; then
  (cd tests/fhir && npm ci --no-audit --no-fund --loglevel=error)
fi

# python-hl7 (PyPI `hl7`, pinned): the DPI of the HL7 tests (tests/hl7/dpi.py), an HL7 v2 parser and MLLP
# implementation nobody here wrote; installed into the project, not the system
if [[ ! -d tests/hl7/pylib/hl7 ]]; then
  if ! python3 -m pip --version >/dev/null 2>&1; then
    sudo=""
    [[ $(id -u) -eq 0 ]] || sudo="sudo"
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends python3-pip >/dev/null
  fi
  # --target installs beside the project, which Debian's externally-managed Python allows
  python3 -m pip install --quiet --disable-pip-version-check --no-warn-script-location --root-user-action=ignore \
    --target tests/hl7/pylib 'hl7==0.4.5'
fi
