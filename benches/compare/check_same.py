#!/usr/bin/env python3
"""Compare the aws-sensitive-untrusted-asn alerts of trailguard and of DuckDB.

    python3 check_same.py TRAILGUARD_ALERTS.ndjson DUCKDB_ALERTS.ndjson [--expected FILE.json]

An alert is keyed by (user.name, identity type, evaluation time T); T is the alert's
`trailguard.window.end` (= @timestamp). Reports the keys only one side has and, for the keys
both have, every aggregate that differs (counts, distinct sets, the newest untrusted event time,
the ratio). Alerts of other rules in the trailguard file are ignored. Exit status 0 when both
sides agree on keys and aggregates (and, with --expected, on the keys listed there, as
make_edge_cases.py writes them), 1 otherwise.
"""

import argparse
import datetime as dt
import json
import math
import sys

RULE_ID = "aws-sensitive-untrusted-asn"
# Aggregates compared exactly (lists as sets).
FIELDS = [
    "Esql.total_events_all_asns",
    "Esql.count_distinct_asns",
    "Esql.src_asn_values",
    "Esql.user_agent_values",
    "Esql.related_users",
    "Esql.source_ip_values",
    "Esql.has_trusted_cloud_asn",
    "Esql.trusted_cloud_event_count",
    "Esql.untrusted_event_count",
    "Esql.untrusted_suspicious_count",
    "Esql.untrusted_suspicious_actions",
    "Esql.unique_action_from_untrusted_asn",
]


def epoch_ms(text):
    return round(dt.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def rule_of(doc):
    for key in ("kibana.alert.rule.rule_id", "rule.id", "kibana.alert.rule.parameters.rule_id"):
        if key in doc:
            return doc[key]
    rule = doc.get("kibana.alert.rule.uuid") or doc.get("rule", {})
    return rule if isinstance(rule, str) else None


def load(path):
    alerts, other = {}, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            doc = json.loads(line)
            rule = rule_of(doc)
            if rule is not None and rule != RULE_ID:
                other += 1
                continue
            end = doc.get("trailguard.window.end") or doc["@timestamp"]
            key = (doc.get("user.name"), doc.get("aws.cloudtrail.user_identity.type"), epoch_ms(end))
            if key in alerts:
                print(f"{path}:{n}: second alert for {show(key)}")
            alerts[key] = doc
    return alerts, other


def show(key):
    user, kind, t = key
    when = dt.datetime.fromtimestamp(t / 1000, tz=dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"({user}, {kind}, T={when})"


def norm(value):
    return sorted(value) if isinstance(value, list) else value


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("trailguard")
    ap.add_argument("duckdb")
    ap.add_argument("--expected", help="JSON list of the alerts expected (user.name, type, @timestamp)")
    ap.add_argument("--labels", default="trailguard,duckdb", help="names of the two files in the report")
    ap.add_argument("--max-shown", type=int, default=20)
    args = ap.parse_args()

    tg, tg_other = load(args.trailguard)
    dk, dk_other = load(args.duckdb)
    only_tg = sorted(set(tg) - set(dk), key=lambda k: (k[2], str(k[0]), str(k[1])))
    only_dk = sorted(set(dk) - set(tg), key=lambda k: (k[2], str(k[0]), str(k[1])))
    both = sorted(set(tg) & set(dk), key=lambda k: (k[2], str(k[0]), str(k[1])))

    field_diffs = []
    for key in both:
        a, b = tg[key], dk[key]
        for field in FIELDS:
            if norm(a.get(field)) != norm(b.get(field)):
                field_diffs.append((key, field, a.get(field), b.get(field)))
        ta, tb = a.get("Esql.most_recent_low_asn_day"), b.get("Esql.most_recent_low_asn_day")
        if (ta and epoch_ms(ta)) != (tb and epoch_ms(tb)):
            field_diffs.append((key, "Esql.most_recent_low_asn_day", ta, tb))
        ra, rb = a.get("Esql.rare_asn_ratio"), b.get("Esql.rare_asn_ratio")
        if not math.isclose(ra, rb, rel_tol=1e-12, abs_tol=0.0):
            field_diffs.append((key, "Esql.rare_asn_ratio", ra, rb))

    la, lb = args.labels.split(",")
    print(f"{la}: {len(tg)} alert(s) of {RULE_ID}" + (f" ({tg_other} of other rules ignored)" if tg_other else ""))
    print(f"{lb}: {len(dk)} alert(s)" + (f" ({dk_other} of other rules ignored)" if dk_other else ""))
    print(f"same (identity, type, T): {len(both)}; only {la}: {len(only_tg)}; only {lb}: {len(only_dk)}")
    print(f"aggregates compared on the common alerts: {len(FIELDS) + 2} per alert; differences: {len(field_diffs)}")
    for title, keys in ((f"only in {la}", only_tg), (f"only in {lb}", only_dk)):
        for key in keys[: args.max_shown]:
            print(f"  {title}: {show(key)}")
    for key, field, a, b in field_diffs[: args.max_shown]:
        print(f"  {show(key)} {field}: {la} {a!r} vs {lb} {b!r}")
    same = not only_tg and not only_dk and not field_diffs
    if args.expected:
        with open(args.expected, encoding="utf-8") as f:
            wanted = {(e["user.name"], e["aws.cloudtrail.user_identity.type"], epoch_ms(e["@timestamp"])): e.get("why", "")
                      for e in json.load(f)}
        for name, got in ((la, tg), (lb, dk)):
            missing = sorted(set(wanted) - set(got), key=lambda k: k[2])
            extra = sorted(set(got) - set(wanted), key=lambda k: k[2])
            print(f"{name} vs expected ({len(wanted)}): missing {len(missing)}, unexpected {len(extra)}")
            for key in missing:
                print(f"  missing in {name}: {show(key)} ({wanted[key]})")
            for key in extra:
                print(f"  unexpected in {name}: {show(key)}")
            same = same and not missing and not extra
    print("RESULT: " + ("identical" if same else "DIFFERENT"))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
