#!/usr/bin/env bash
# A throwaway MSSanté operator exposing the API LPS on loopback, for mss's tests and for vendors (docs/mssante.md L7).
#
#   scripts/lps-operator.sh [--dir DIR] [--base PORT] [--watch-pid PID] [--no-postfix] [--cleanup] [--pki-only]
#
# Everything lives in DIR (default: a new temp dir): a test PKI (CA, server certificate, an APP client
# certificate as PEM and PKCS#12, a rogue CA with its own client certificate), the RS256 key of the PSC
# stand-in (the one of `mss sandbox token --dir DIR`, crates/sandbox/src/psc.rs), configs, logs and the mailboxes (maildir, DIR/mail/<address>/).
#
# Ports (all on 127.0.0.1, BASE defaults to 10140):
#   BASE+0  IMAP, PER/ORG front: STARTTLS then AUTHENTICATE XOAUTH2 (JWT validated locally by Dovecot)
#   BASE+1  submission, PER/ORG front: STARTTLS then AUTH XOAUTH2 (Postfix + Dovecot SASL when root,
#           else Dovecot's submission server)
#   BASE+2  IMAP, APP front: STARTTLS with a client certificate of the test CA, then AUTHENTICATE PLAIN
#   BASE+3  submission, APP front: same, AUTH PLAIN
#   BASE+4  LMTP of the mail store (delivery into DIR/mail)
#   BASE+5  Dovecot auth service for Postfix SASL (root only)
#   BASE+6  Postfix plain SMTP, no auth, loopback only: relay of the APP front and target of smtp-source;
#           without root: smtp-sink, which accepts and discards (then nothing reaches the mailboxes)
# With Postfix, unknown@sante.test is accepted at submission and then bounced (5.1.1): the sender gets a real
# DSN, as from a remote operator whose mailbox does not exist.
#
# When ready it prints `READY` after `KEY=VALUE` lines (ports, paths, mode), then keeps running until
# SIGTERM/SIGINT, or until process PID (--watch-pid) exits; then it stops the servers (and removes DIR with
# --cleanup). --pki-only writes the test PKI into DIR/pki and exits.
# Without root, Postfix is not started (it needs the `postfix` account); the PER/ORG submission front is then
# Dovecot's own submission server, which gives the same client-visible behaviour.
set -euo pipefail

dir="" base=10140 watch_pid="" postfix=auto cleanup_dir=no pki_only=no
while (($#)); do
  case $1 in
    --dir) dir=$2; shift 2 ;;
    --base) base=$2; shift 2 ;;
    --watch-pid) watch_pid=$2; shift 2 ;;
    --no-postfix) postfix=no; shift ;;
    --cleanup) cleanup_dir=yes; shift ;;
    --pki-only) pki_only=yes; shift ;;
    -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "lps-operator: unknown argument $1" >&2; exit 2 ;;
  esac
done
for bin in openssl $([[ $pki_only == yes ]] || echo dovecot); do
  command -v "$bin" >/dev/null || { echo "lps-operator: $bin not installed (scripts/install-deps.sh)" >&2; exit 3; }
done
[[ $pki_only == yes || -x /usr/lib/dovecot/lmtp ]] || { echo "lps-operator: dovecot-lmtpd not installed" >&2; exit 3; }
if [[ $postfix == auto ]]; then
  if [[ $(id -u) -eq 0 ]] && command -v postfix >/dev/null && id postfix >/dev/null 2>&1; then postfix=yes; else postfix=no; fi
fi

[[ -n $dir ]] || dir=$(mktemp -d /tmp/lps-operator.XXXXXX)
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
p_imap=$base p_sub=$((base + 1)) p_imap_app=$((base + 2)) p_sub_app=$((base + 3))
p_lmtp=$((base + 4)) p_auth=$((base + 5)) p_relay=$((base + 6))
# Pro Santé Connect's sandbox issuer, as the stand-in signs (mss_sandbox::psc)
issuer="https://auth.bas.psc.esante.gouv.fr/auth/realms/esante-wallet"
# distinctive, so that tests can look for it in logs
p12_password="p12-Pw-7c1e9a"

# ---------------------------------------------------------------- test PKI (RSA 2048, like IGC Santé)
pki=$dir/pki
mkdir -p "$pki"
if [[ ! -f $pki/done ]]; then
  (
    cd "$pki"
    ca() { # name subject
      openssl req -x509 -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.pem" -days 3650 -subj "$2" \
        -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
    }
    leaf() { # name ca subject extensions
      openssl req -new -newkey rsa:2048 -nodes -keyout "$1.key" -subj "$3" 2>/dev/null |
        openssl x509 -req -CA "$2.pem" -CAkey "$2.key" -CAcreateserial -days 825 -out "$1.pem" \
          -extfile <(printf '%b' "$4") 2>/dev/null
    }
    ca ca "/C=FR/O=mss tests/CN=MSS TEST IGC-SANTE ROOT"
    ca rogue-ca "/C=FR/O=rogue/CN=ROGUE ROOT"
    leaf server ca "/C=FR/O=mss tests/CN=localhost" \
      "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,DNS:mail.sante.test,DNS:psc.sante.test,DNS:authcli.sante.test,IP:127.0.0.1\n"
    # ORG AUTH_CLI-shaped DN (docs/mssante.md L3)
    client_dn="/C=FR/ST=Paris (75)/O=LABORATOIRE TEST/OU=499700000000001/CN=labo.app.sante.test"
    client_ext="basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n"
    leaf app ca "$client_dn" "$client_ext"
    leaf rogue-app rogue-ca "$client_dn" "$client_ext"
    openssl pkcs12 -export -inkey app.key -in app.pem -certfile ca.pem -name app -out app.p12 -passout "pass:$p12_password"
    openssl pkcs12 -export -inkey rogue-app.key -in rogue-app.pem -name app -out rogue-app.p12 -passout "pass:$p12_password"
    chmod 644 ./*.key
    touch done
  )
fi

[[ $pki_only == yes ]] && { echo "CA=$pki/ca.pem"; exit 0; }

# ---------------------------------------------------------------- PSC stand-in key (RS256)
# The stand-in's signing key is DIR/psc/signing.pk8 (PKCS#8 DER), made by `mss sandbox token --dir DIR` (or
# by the tests, mss_testing::lps). Dovecot's local validation looks the public key up as
# <prefix>/<azp>/<alg>/<kid>, PEM: the stand-in's tokens say azp "mss-sandbox", kid "mss-sandbox-psc".
if [[ ! -f $dir/psc/signing.pk8 ]]; then
  echo "lps-operator: no PSC stand-in key in $dir/psc: run \`mss sandbox token --dir $dir --user x@sante.test\` first" >&2
  exit 3
fi
mkdir -p "$dir/keys/mss-sandbox/RS256"
openssl pkey -inform DER -in "$dir/psc/signing.pk8" -pubout -out "$dir/keys/mss-sandbox/RS256/mss-sandbox-psc" 2>/dev/null

# ---------------------------------------------------------------- Dovecot
if [[ $(id -u) -eq 0 ]]; then
  run_user=dovecot login_user=dovenull mail_uid=nobody mail_gid=nogroup
else
  run_user=$(id -un) login_user=$(id -un) mail_uid=$(id -un) mail_gid=$(id -gn)
fi
mkdir -p "$dir/mail"
[[ $(id -u) -eq 0 ]] && chown "$mail_uid:$mail_gid" "$dir/mail"
chmod 755 "$dir" "$dir/keys" "$dir/keys/mss-sandbox" "$dir/keys/mss-sandbox/RS256"
chmod 644 "$dir/keys/mss-sandbox/RS256/mss-sandbox-psc"

# Dovecot's submission servers relay to BASE+6: Postfix (which delivers into LMTP) when root, else
# Postfix's smtp-sink, which accepts and discards (Dovecot's LMTP does not speak SMTP to a relay)
relay_port=$p_relay

common_conf() { # name
  cat <<EOF
listen = 127.0.0.1
base_dir = $dir/$1/run
state_dir = $dir/$1/state
log_path = $dir/$1.log
instance_name = lps-$1
default_internal_user = $run_user
default_internal_group = $(id -gn "$run_user")
default_login_user = $login_user
hostname = mail.sante.test
submission_host = mail.sante.test
ssl = required
ssl_min_protocol = TLSv1.2
ssl_cert = <$pki/server.pem
ssl_key = <$pki/server.key
disable_plaintext_auth = yes
auth_failure_delay = 0
auth_verbose = yes
mail_location = maildir:$dir/mail/%u
first_valid_uid = 0
submission_relay_host = 127.0.0.1
submission_relay_port = $relay_port
submission_relay_trusted = yes
submission_max_mail_size = 25M
userdb {
  driver = static
  args = uid=$mail_uid gid=$mail_gid home=$dir/mail/%u allow_all_users=yes
}
service anvil {
  chroot =
}
service stats {
  unix_listener stats-writer {
    mode = 0666
  }
}
EOF
}

mkdir -p "$dir/psc/run" "$dir/psc/state" "$dir/authcli/run" "$dir/authcli/state"
{
  common_conf psc
  cat <<EOF
protocols = imap submission lmtp
auth_mechanisms = xoauth2 oauthbearer
passdb {
  driver = oauth2
  mechanisms = xoauth2 oauthbearer
  args = $dir/dovecot-oauth2.conf.ext
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $p_imap
  }
  inet_listener imaps {
    port = 0
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    port = $([[ $postfix == yes ]] && echo 0 || echo "$p_sub")
  }
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $p_lmtp
  }
}
protocol lmtp {
  auth_username_format = %Lu
}
# a server without UIDPLUS nor MOVE for clients from 127.0.0.254 (outside the tests' usual sources,
# crates/testing next_source): what retention must fall back on
remote 127.0.0.254 {
  imap_capability = IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ UNSELECT CHILDREN NAMESPACE SPECIAL-USE
}
EOF
  if [[ $postfix == yes ]]; then
    cat <<EOF
service auth {
  inet_listener {
    address = 127.0.0.1
    port = $p_auth
  }
}
EOF
  fi
} >"$dir/psc.conf"

# local JWT validation; `email` carries the BAL the token was issued for (the stand-in's convention)
cat >"$dir/dovecot-oauth2.conf.ext" <<EOF
introspection_mode = local
local_validation_key_dict = fs:posix:prefix=$dir/keys/
username_attribute = email
issuers = $issuer
debug = yes
EOF

{
  common_conf authcli
  cat <<EOF
protocols = imap submission
auth_mechanisms = plain
ssl_ca = <$pki/ca.pem
ssl_verify_client_cert = yes
ssl_require_crl = no
auth_ssl_require_client_cert = yes
# the certificate authenticates the structure; PLAIN only names the BAL (no password)
passdb {
  driver = static
  args = nopassword=y
}
service imap-login {
  chroot =
  inet_listener imap {
    port = $p_imap_app
  }
  inet_listener imaps {
    port = 0
  }
}
service submission-login {
  chroot =
  inet_listener submission {
    port = $p_sub_app
  }
}
EOF
} >"$dir/authcli.conf"

pids=()
cleanup() {
  trap - EXIT INT TERM
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  if [[ $postfix == yes ]]; then postfix -c "$dir/postfix" stop >/dev/null 2>&1 || true; fi
  wait 2>/dev/null || true
  if [[ $cleanup_dir == yes ]]; then rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 0' INT TERM

dovecot -F -c "$dir/psc.conf" 2>>"$dir/psc.stderr" &
pids+=($!)
dovecot -F -c "$dir/authcli.conf" 2>>"$dir/authcli.stderr" &
pids+=($!)

# ---------------------------------------------------------------- Postfix (root only)
if [[ $postfix == yes ]]; then
  pf=$dir/postfix
  mkdir -p "$pf/queue" "$pf/data"
  chown postfix "$pf/data"
  cat >"$pf/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $pf/queue
data_directory = $pf/data
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
shlib_directory = /usr/lib/postfix
meta_directory = /etc/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file_prefixes = $dir
maillog_file = $dir/postfix.log
myhostname = mail.sante.test
mydomain = sante.test
myorigin = \$mydomain
mydestination =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
relayhost =
alias_maps =
alias_database =
local_recipient_maps =
biff = no
append_dot_mydomain = no
smtputf8_enable = no
message_size_limit = 26214400
virtual_mailbox_domains = sante.test
virtual_transport = lmtp:inet:127.0.0.1:$p_lmtp
# a mailbox that does not exist behind the front: accepted, then bounced, so that Postfix writes a real DSN
transport_maps = inline:{ { unknown@sante.test = error:5.1.1 mailbox unknown } }
lmtp_destination_concurrency_limit = 4
smtpd_banner = \$myhostname ESMTP
smtpd_relay_restrictions = permit_mynetworks, reject
# the "espace de confiance" in miniature: only sante.test receives
smtpd_recipient_restrictions = check_recipient_access inline:{ sante.test=OK }, reject
EOF
  # standard services without chroot, plus our two listeners
  {
    echo "127.0.0.1:$p_relay inet n - n - - smtpd"
    echo "127.0.0.1:$p_sub inet n - n - - smtpd"
    echo "  -o syslog_name=postfix/submission"
    echo "  -o smtpd_tls_security_level=encrypt"
    echo "  -o smtpd_tls_mandatory_protocols=>=TLSv1.2"
    echo "  -o smtpd_tls_protocols=>=TLSv1.2"
    echo "  -o smtpd_tls_cert_file=$pki/server.pem"
    echo "  -o smtpd_tls_key_file=$pki/server.key"
    echo "  -o smtpd_tls_auth_only=yes"
    echo "  -o smtpd_sasl_auth_enable=yes"
    echo "  -o smtpd_sasl_type=dovecot"
    echo "  -o smtpd_sasl_path=inet:127.0.0.1:$p_auth"
    echo "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject"
    echo "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject"
    echo "  -o smtpd_sender_login_maps=inline:{}"
    # accept unknown@sante.test, so that its bounce comes back as a DSN
    echo "  -o smtpd_reject_unlisted_recipient=no"
    awk '/^#/ || /^[ \t]*$/ { next }
         /^[^ \t]/ { keep = ($2 != "inet" && $1 !~ /^(maildrop|uucp|ifmail|bsmtp|scalemail-backend|mailman)$/)
                     if (keep) { $5 = "n"; print }
                     next }
         keep { print }' /etc/postfix/master.cf
  } >"$pf/master.cf"
  postfix -c "$pf" set-permissions >/dev/null 2>&1 || true
  postfix -c "$pf" check >>"$dir/postfix.stderr" 2>&1 || true
  postfix -c "$pf" start-fg >>"$dir/postfix.stderr" 2>&1 &
  pids+=($!)
fi

if [[ $postfix == no ]]; then
  command -v smtp-sink >/dev/null || { echo "lps-operator: smtp-sink not installed (package postfix)" >&2; exit 3; }
  smtp-sink -c "127.0.0.1:$p_relay" 100 >>"$dir/smtp-sink.stderr" 2>&1 &
  pids+=($!)
fi

# ---------------------------------------------------------------- wait until every port answers
ports=("$p_imap" "$p_sub" "$p_imap_app" "$p_sub_app" "$p_lmtp" "$p_relay")
[[ $postfix == yes ]] && ports+=("$p_auth")
for _ in $(seq 1 100); do
  up=1
  for p in "${ports[@]}"; do (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { up=0; break; }; done
  ((up)) && break
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "lps-operator: a server exited; see $dir/*.log $dir/*.stderr" >&2; exit 4; }
  done
  sleep 0.1
done
((up)) || { echo "lps-operator: servers did not come up; see $dir/*.log $dir/*.stderr" >&2; exit 4; }

cat <<EOF
DIR=$dir
MODE=$([[ $postfix == yes ]] && echo postfix || echo dovecot)
IMAP_PORT=$p_imap
SUBMISSION_PORT=$p_sub
IMAP_APP_PORT=$p_imap_app
SUBMISSION_APP_PORT=$p_sub_app
LMTP_PORT=$p_lmtp
RELAY_PORT=$p_relay
CA=$pki/ca.pem
ROGUE_CA=$pki/rogue-ca.pem
APP_P12=$pki/app.p12
APP_CERT=$pki/app.pem
APP_KEY=$pki/app.key
ROGUE_APP_P12=$pki/rogue-app.p12
P12_PASSWORD=$p12_password
PSC_ISSUER=$issuer
PSC_DIR=$dir
MAILDIR=$dir/mail
READY
EOF

while :; do
  if [[ -n $watch_pid ]] && ! kill -0 "$watch_pid" 2>/dev/null; then exit 0; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "lps-operator: a server exited; see $dir/*.log" >&2; exit 4; }
  done
  sleep 0.5 &
  wait $! || true
done
