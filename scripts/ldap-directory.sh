#!/usr/bin/env bash
# A throwaway LDAP directory shaped like the national MSSanté one (docs/mssante.md D2), for mss's tests and benchmarks:
# OpenLDAP slapd (Debian `slapd` + `ldap-utils`) as a child process on 127.0.0.1, from a temp dir, with the
# national limits (at most 100 entries and 60 s per query, paged results capped too), the project schema
# (crates/annuaire/ldap/mssante.ldif), `eq,sub` indexes on the searched attributes, red-listed entries
# hidden by an ACL, and entries converted from `mss demo-data` (or any extraction, or an LDIF).
#
#   scripts/ldap-directory.sh [--dir DIR] [--port PORT] [--entries N] [--seed S] [--extraction FILE]
#                             [--ldif FILE] [--mss BIN] [--base DN] [--sizelimit N] [--timelimit S]
#                             [--tls] [--watch-pid PID] [--cleanup]
#
#   --entries N / --seed S   entries of `mss demo-data` (default 50000, seed 42), converted by `mss ldap-ldif`
#   --extraction FILE        convert this extraction (.txt/.zip) instead
#   --ldif FILE              load this LDIF as is (it must hold the base entry)
#   --mss BIN                the mss binary (default: target/release/mss, else target/debug/mss)
#   --tls                    also StartTLS on PORT and LDAPS on a second port, with a test CA written to DIR
#   --watch-pid PID          stop when process PID exits (tests pass their own PID)
#   --cleanup                remove DIR when stopping
#
# When ready it prints KEY=VALUE lines (URL, BASE, PORT, DIR, ADMIN_DN, ADMIN_PASSWORD_FILE, ENTRIES,
# EXTRACTION, SIZELIMIT, TIMELIMIT, SLAPD_PID; with --tls also LDAPS_URL and CA) then `READY`, and keeps
# running until SIGTERM/SIGINT or until --watch-pid's process exits; then it stops slapd.
# The admin DN (cn=admin,<base>) has no limits and may write; anonymous clients get the national limits.
# Exit codes: 2 usage, 3 slapd or ldap-utils not installed (scripts/install-deps.sh), 1 other failures.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

dir="" port="" entries=50000 seed=42 extraction="" ldif="" mss="" base="ou=bal,o=mssante,c=fr"
sizelimit=100 timelimit=60 tls=no watch_pid="" cleanup_dir=no
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --port) port=$2; shift 2 ;;
    --entries) entries=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --extraction) extraction=$2; shift 2 ;;
    --ldif) ldif=$2; shift 2 ;;
    --mss) mss=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --sizelimit) sizelimit=$2; shift 2 ;;
    --timelimit) timelimit=$2; shift 2 ;;
    --tls) tls=yes; shift ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    --cleanup) cleanup_dir=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "ldap-directory: unknown argument $1" >&2; exit 2 ;;
  esac
done
export PATH="$PATH:/usr/sbin:/sbin"
for bin in slapd slapadd slappasswd ldapsearch; do
  command -v "$bin" >/dev/null || { echo "ldap-directory: $bin not installed (scripts/install-deps.sh)" >&2; exit 3; }
done
[[ $tls == no ]] || command -v openssl >/dev/null || { echo "ldap-directory: openssl not installed" >&2; exit 3; }
[[ -d /usr/lib/ldap ]] || { echo "ldap-directory: /usr/lib/ldap (slapd modules) missing" >&2; exit 3; }

[[ -n $dir ]] || dir=$(mktemp -d /tmp/ldap-directory.XXXXXX)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
rm -rf "$dir/slapd.d" "$dir/db" "$dir/run"
mkdir -p "$dir/slapd.d" "$dir/db" "$dir/run"

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
[[ -n $port ]] || port=$(free_port)
tls_port=""
[[ $tls == no ]] || tls_port=$(free_port)

# ---------------------------------------------------------------- data
if [[ -z $ldif ]]; then
  if [[ -z $mss ]]; then
    if [[ -x target/release/mss ]]; then mss=target/release/mss; else mss=target/debug/mss; fi
  fi
  [[ -x $mss ]] || { echo "ldap-directory: no mss binary at $mss (cargo build, or --mss BIN)" >&2; exit 1; }
  if [[ -z $extraction ]]; then
    extraction=$dir/Extraction_Correspondance_MSSante_202611230800.txt
    "$mss" demo-data --count "$entries" --seed "$seed" --out "$extraction" 2>/dev/null
  fi
  ldif=$dir/data.ldif
  "$mss" ldap-ldif "$extraction" --base "$base" --out "$ldif" 2>/dev/null
fi
count=$(grep -c '^dn: \|^dn:: ' "$ldif" || true)
count=$((count - 1))  # the base entry

# ---------------------------------------------------------------- TLS (test CA, server certificate)
tls_config=""
if [[ $tls == yes ]]; then
  pki=$dir/pki; mkdir -p "$pki"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout "$pki/ca.key" -out "$pki/ca.pem" -days 3650 \
    -subj "/C=FR/O=mss tests/CN=MSS TEST LDAP CA" \
    -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  openssl req -new -newkey rsa:2048 -nodes -keyout "$pki/server.key" -subj "/C=FR/O=mss tests/CN=localhost" 2>/dev/null |
    openssl x509 -req -CA "$pki/ca.pem" -CAkey "$pki/ca.key" -CAcreateserial -days 825 -out "$pki/server.pem" \
      -extfile <(printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1\n') 2>/dev/null
  chmod 644 "$pki/server.key"
  tls_config="olcTLSCACertificateFile: $pki/ca.pem
olcTLSCertificateFile: $pki/server.pem
olcTLSCertificateKeyFile: $pki/server.key"
fi

# ---------------------------------------------------------------- cn=config
password=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
printf '%s' "$password" > "$dir/admin.password"  # no line end: ldap-utils' -y reads the whole file
chmod 600 "$dir/admin.password"
hash=$(slappasswd -s "$password")
# mdb map: ~3 KB per entry with indexes, plus room
maxsize=$(( (count * 4096) + (128 << 20) ))
cat > "$dir/config.ldif" <<EOF
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: $dir/run/slapd.pid
olcArgsFile: $dir/run/slapd.args
olcLogLevel: none
olcSizeLimit: $sizelimit
olcTimeLimit: $timelimit
olcThreads: 4
${tls_config}

dn: cn=module{0},cn=config
objectClass: olcModuleList
cn: module{0}
olcModulePath: /usr/lib/ldap
olcModuleLoad: back_mdb

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

include: file:///etc/ldap/schema/core.ldif
include: file:///etc/ldap/schema/cosine.ldif
include: file:///etc/ldap/schema/inetorgperson.ldif
include: file://$root/crates/annuaire/ldap/mssante.ldif

dn: olcDatabase={-1}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {-1}frontend
olcSizeLimit: $sizelimit
olcTimeLimit: $timelimit

dn: olcDatabase={0}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {0}config
olcAccess: {0}to * by * none

dn: olcDatabase={1}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {1}mdb
olcSuffix: $base
olcRootDN: cn=admin,$base
olcRootPW: $hash
olcDbDirectory: $dir/db
olcDbMaxSize: $maxsize
olcDbIndex: objectClass eq
olcDbIndex: mail eq,sub
olcDbIndex: cn,sn,givenName eq,sub
olcDbIndex: mssanteDepartment,mssanteBalType,mssanteProfessionCode,mssanteSpecialityCode,postalCode eq
olcLimits: {0}dn.exact="cn=admin,$base" size=unlimited time=unlimited
olcLimits: {1}* size.soft=$sizelimit size.hard=$sizelimit size.pr=$sizelimit time.soft=$timelimit time.hard=$timelimit
olcAccess: {0}to filter=(mssanteRedListed=TRUE) by dn.exact="cn=admin,$base" write by * none
olcAccess: {1}to * by dn.exact="cn=admin,$base" write by * read
EOF
slapadd -n 0 -F "$dir/slapd.d" -l "$dir/config.ldif" >"$dir/slapadd.log" 2>&1 ||
  { cat "$dir/slapadd.log" >&2; echo "ldap-directory: the configuration does not load" >&2; exit 1; }
slapadd -q -n 1 -F "$dir/slapd.d" -l "$ldif" >>"$dir/slapadd.log" 2>&1 ||
  { tail -20 "$dir/slapadd.log" >&2; echo "ldap-directory: the data does not load" >&2; exit 1; }

# ---------------------------------------------------------------- run
urls="ldap://127.0.0.1:$port/"
[[ -z $tls_port ]] || urls="$urls ldaps://127.0.0.1:$tls_port/"
slapd -d 0 -F "$dir/slapd.d" -h "$urls" >"$dir/slapd.log" 2>&1 &
slapd_pid=$!
stop() {
  trap - EXIT INT TERM
  kill "$slapd_pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$slapd_pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$slapd_pid" 2>/dev/null || true
  [[ $cleanup_dir == no ]] || rm -rf "$dir"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
ready=no
for _ in $(seq 1 200); do
  if ! kill -0 "$slapd_pid" 2>/dev/null; then
    cat "$dir/slapd.log" >&2; echo "ldap-directory: slapd exited (port $port taken?)" >&2; exit 1
  fi
  if ldapsearch -x -H "ldap://127.0.0.1:$port/" -b "$base" -s base -LLL dn >/dev/null 2>&1; then
    ready=yes; break
  fi
  sleep 0.05
done
[[ $ready == yes ]] || { echo "ldap-directory: slapd did not answer" >&2; exit 1; }

echo "URL=ldap://127.0.0.1:$port"
[[ -z $tls_port ]] || { echo "LDAPS_URL=ldaps://127.0.0.1:$tls_port"; echo "CA=$dir/pki/ca.pem"; }
echo "BASE=$base"
echo "PORT=$port"
echo "DIR=$dir"
echo "ADMIN_DN=cn=admin,$base"
echo "ADMIN_PASSWORD_FILE=$dir/admin.password"
echo "ENTRIES=$count"
echo "EXTRACTION=$extraction"
echo "SIZELIMIT=$sizelimit"
echo "TIMELIMIT=$timelimit"
echo "SLAPD_PID=$slapd_pid"
echo "READY"

if [[ -n $watch_pid ]]; then
  while kill -0 "$watch_pid" 2>/dev/null && kill -0 "$slapd_pid" 2>/dev/null; do sleep 0.5; done
else
  wait "$slapd_pid" || true
fi
