#!/usr/bin/env python3
"""Run rule aws-sensitive-untrusted-asn in DuckDB over raw CloudTrail NDJSON.

    python3 duckdb_compare.py CLOUDTRAIL.ndjson asn-ipv4.csv [--threads N] [-o alerts.ndjson]
                              [--rule-config trailguard.toml]

Loads the ASN CSV, runs sensitive_untrusted_asn.sql (next to this script) step by step, prints
the alerts (identity, evaluation time T, counts) and the wall time of each step, measured inside
the process (so Python's start-up and `import duckdb` are excluded). With -o, writes the alerts
as NDJSON with trailguard's field names, for check_same.py.

--rule-config reads the `[rules.aws-sensitive-untrusted-asn]` table of a trailguard TOML
configuration, so both engines can be run with the same non-default thresholds.
"""

import argparse
import datetime as dt
import json
import os
import re
import sys
import time
import tomllib

import duckdb

HERE = os.path.dirname(os.path.abspath(__file__))
RULE_ID = "aws-sensitive-untrusted-asn"
# Rule settings the SQL understands (the elastic-compatible preset's keys).
SETTINGS = {
    "interval_minutes": int,
    "window_hours": int,
    "recency_minutes": int,
    "min_trusted_events": int,
    "min_untrusted_events": int,
    "max_untrusted_ratio": float,
    "min_distinct_sensitive_actions": int,
    "max_distinct_organizations": int,
    "trusted_org_prefixes": list,
    "trusted_orgs": list,
    "sensitive_actions": list,
}
# Keys of trailguard's rule configuration the SQL does not implement (only the defaults).
DEFAULT_ONLY = {
    "preset": "elastic-compatible",
    "trusted_asns": [],
    "case_insensitive_orgs": False,
}


def iso_ms(ms):
    """RFC 3339 like trailguard's format_timestamp_ms: millis only when not zero."""
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if ms % 1000:
        text += f".{ms % 1000:03d}"
    return text + "Z"


def read_rule_config(path):
    with open(path, "rb") as f:
        table = tomllib.load(f).get("rules", {}).get(RULE_ID, {})
    settings = {}
    for key, value in table.items():
        if key == "alert_suppression":
            sys.exit(f"{path}: alert_suppression is not implemented by the SQL")
        if key in DEFAULT_ONLY:
            if value != DEFAULT_ONLY[key]:
                sys.exit(f"{path}: `{key} = {value!r}` is not implemented by the SQL")
            continue
        if key == "max_untrusted_events_in_alert":
            continue  # only shapes trailguard's alert text, not which alerts there are
        if key not in SETTINGS:
            sys.exit(f"{path}: unknown key `{key}`")
        settings[key] = value
    return settings


def sql_steps(path):
    """(name, statement) pairs: statements end with ';' at the end of a line, and a
    '-- step: NAME' line names the statements that follow it."""
    steps, name, lines = [], "setup", []
    for line in open(path, encoding="utf-8"):
        m = re.match(r"\s*--\s*step:\s*(\S+)", line)
        if m:
            name = m.group(1)
            continue
        lines.append(line)
        if line.rstrip().endswith(";"):
            text = "".join(lines).strip()
            if any(not l.strip().startswith("--") for l in text.splitlines() if l.strip()):
                steps.append((name, text))
            lines = []
    if "".join(lines).strip():
        steps.append((name, "".join(lines)))
    return steps


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("cloudtrail", help="raw CloudTrail NDJSON (one record per line); a glob works")
    ap.add_argument("asn_csv", help="ip-location-db asn-ipv4.csv (start_ip,end_ip,asn,organization)")
    ap.add_argument("--threads", type=int, help="DuckDB threads (default: all cores)")
    ap.add_argument("-o", "--output", help="write the alerts here as NDJSON")
    ap.add_argument("--rule-config", help="trailguard TOML whose [rules.%s] table to apply" % RULE_ID)
    ap.add_argument("--sql", default=os.path.join(HERE, "sensitive_untrusted_asn.sql"))
    ap.add_argument("--memory-limit", help="DuckDB memory_limit, e.g. 4GB")
    ap.add_argument("--max-print", type=int, default=50, help="alerts printed (default 50)")
    args = ap.parse_args()

    settings = read_rule_config(args.rule_config) if args.rule_config else {}

    con = duckdb.connect()
    if args.threads:
        con.execute(f"SET threads = {int(args.threads)}")
    if args.memory_limit:
        con.execute("SET memory_limit = ?", [args.memory_limit])
    threads = con.execute("SELECT current_setting('threads')").fetchone()[0]
    con.execute("SET VARIABLE cloudtrail_path = ?", [args.cloudtrail])
    con.execute("SET VARIABLE asn_csv_path = ?", [args.asn_csv])
    for key, value in settings.items():
        con.execute(f"SET VARIABLE {key} = ?", [value])

    timings = {}
    start = time.perf_counter()
    for name, statement in sql_steps(args.sql):
        t0 = time.perf_counter()
        con.execute(statement)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
    total = time.perf_counter() - start

    asn_rows = con.execute("SELECT count(*) FROM asn").fetchone()[0]
    if asn_rows == 0:
        sys.exit(f"{args.asn_csv}: no IPv4 range read (use asn-ipv4.csv, not the -num.csv file)")
    counted = con.execute("SELECT count(*) FROM counted").fetchone()[0]
    cur = con.execute("SELECT * FROM alerts")
    columns = [d[0] for d in cur.description]
    alerts = [dict(zip(columns, row)) for row in cur.fetchall()]

    print(f"duckdb {duckdb.__version__}, threads {threads}; {args.cloudtrail}")
    print(f"ASN ranges: {asn_rows}; counted events (successful, user.name, AS organization): {counted}")
    if settings:
        print(f"rule settings from {args.rule_config}: {settings}")
    print(f"{len(alerts)} alert(s)")
    header = f"{'T (evaluation)':<21} {'user.name':<20} {'type':<12} {'total':>6} {'trust':>6} {'untr':>5} {'acts':>4} {'orgs':>4}  ratio"
    print(header)
    for a in alerts[: args.max_print]:
        print(
            f"{iso_ms(a['t_eval']):<21} {a['user_name']:<20} {str(a['identity_type']):<12} "
            f"{a['total_events_all_asns']:>6} {a['trusted_cloud_event_count']:>6} "
            f"{a['untrusted_event_count']:>5} {a['unique_action_from_untrusted_asn']:>4} "
            f"{a['count_distinct_asns']:>4}  {a['rare_asn_ratio']:.5f}"
        )
    if len(alerts) > args.max_print:
        print(f"... {len(alerts) - args.max_print} more")

    if args.output:
        with open(args.output, "w", encoding="utf-8") as out:
            for a in alerts:
                doc = {
                    "@timestamp": iso_ms(a["t_eval"]),
                    "kibana.alert.rule.rule_id": RULE_ID,
                    "user.name": a["user_name"],
                    "aws.cloudtrail.user_identity.type": a["identity_type"],
                    "trailguard.window.start": iso_ms(a["t_eval"] - (settings.get("window_hours", 168) * 3_600_000)),
                    "trailguard.window.end": iso_ms(a["t_eval"]),
                }
                for key in columns:
                    if key in ("user_name", "identity_type", "t_eval", "most_recent_low_asn_ms"):
                        continue
                    doc["Esql." + key] = a[key]
                doc["Esql.most_recent_low_asn_day"] = iso_ms(a["most_recent_low_asn_ms"])
                out.write(json.dumps(doc) + "\n")
        print(f"alerts written to {args.output}")

    steps = ", ".join(f"{k} {v:.3f} s" for k, v in timings.items())
    query = total - timings.get("load_asn", 0.0)
    print(f"wall time: {total:.3f} s in DuckDB ({steps}); without the ASN load: {query:.3f} s")


if __name__ == "__main__":
    main()
