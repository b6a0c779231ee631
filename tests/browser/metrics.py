"""Reads an mss /metrics exposition (stdin) with the Prometheus project's own OpenMetrics parser
(python3-prometheus-client, scripts/install-deps.sh) and checks the console's series after the browser test;
then checks that every metric the Grafana dashboard queries is one the service exposes.

Usage: python3 metrics.py DASHBOARD_JSON SENDER... < exposition
"""
import json
import re
import sys

from prometheus_client.openmetrics.parser import text_string_to_metric_families

STATES = ["queued", "sending", "sent", "deferred", "failed", "delivered", "read", "cancelled"]

dashboard_path, senders = sys.argv[1], sys.argv[2:]
families = list(text_string_to_metric_families(sys.stdin.read()))
names = set()
samples = {}
for f in families:
    names.add(f.name)
    for s in f.samples:
        names.add(s.name)
        samples.setdefault(s.name, []).append(s)


def value(name, **labels):
    found = [s.value for s in samples.get(name, []) if all(s.labels.get(k) == v for k, v in labels.items())]
    assert len(found) == 1, f"{name}{labels}: {len(found)} series"
    return found[0]


# a series for every configured sender and state, zeros included
for sender in senders:
    for state in STATES:
        value("mss_outbox_recipients", sender=sender, state=state)
    value("mss_outbox_oldest_pending_age_seconds", sender=sender)
hop, alice = senders[0], senders[1]
assert value("mss_outbox_sender_paused", sender=alice) == 1
assert value("mss_outbox_sender_paused", sender=hop) == 0
# the retried recipient was sent; alice's three waiting ones were cancelled, apart from the failed ones
assert value("mss_outbox_recipients", sender=hop, state="sent") + value(
    "mss_outbox_recipients", sender=hop, state="delivered") >= 1
assert value("mss_outbox_recipients", sender=alice, state="cancelled") == 3
assert value("mss_outbox_recipients", sender=alice, state="failed") == 0
assert value("mss_outbox_recipients", sender=alice, state="queued") == 0
# the patient message, in error; the receiving mailbox has its three statuses
assert value("mss_inbox_messages", mailbox=hop, status="error") == 1
assert value("mss_inbox_messages", mailbox=hop, status="new") == 0
value("mss_inbox_messages", mailbox=hop, status="integrated")
value("mss_inbox_oldest_waiting_age_seconds", mailbox=hop)
for source in ["extraction", "ldap", "fhir"]:
    value("mss_directory_source_last_success_timestamp_seconds", source=source)
    value("mss_directory_source_last_attempt_timestamp_seconds", source=source)
    value("mss_directory_source_last_run_failed", source=source)
    value("mss_directory_source_next_run_timestamp_seconds", source=source)
# the hourly harvest of a directory that does not answer (seen failed by the console before this scrape)
assert value("mss_directory_source_last_run_failed", source="ldap") == 1, "the failed harvest"
assert value("mss_directory_source_next_run_timestamp_seconds", source="ldap") > 1.7e9, "its next run"
assert value("mss_directory_source_last_run_failed", source="fhir") == 0, "not scheduled"
assert value("mss_directory_source_last_success_timestamp_seconds", source="extraction") > 1.7e9, \
    "the import is recorded"

dashboard = json.load(open(dashboard_path))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
assert len(exprs) >= 8, exprs
for expr in exprs:
    for metric in re.findall(r"\b(mss_[a-z_]+)", expr):
        assert metric in names, f"the dashboard queries {metric}, which /metrics does not expose"
print(f"metrics ok: {len(families)} families, {len(exprs)} dashboard queries")
