#!/usr/bin/env python3
"""Write a small CloudTrail NDJSON file of edge cases for aws-sensitive-untrusted-asn.

    python3 make_edge_cases.py /tmp/cmp/edge.ndjson     # + /tmp/cmp/edge.expected.json

`trailguard gen` data is tame (three AS organizations, no failures among the attacks, one event
exactly on an hour), so this file puts each rule detail of ../shared/specs/rules.md (rule A) and
cloudtrail-mapping.md on a knife edge, one identity per case: window ends inclusive, recency
bound, ratio exactly 0.01, failed calls, the case-sensitive `Amazon` prefix (which trusts
"Amazonia Publicidade Ltda" and not "AMAZON TELECOM LTDA"), at most 5 organizations, user.name
per identity type, a missing identity type, IPv4-mapped / leading-zero / private addresses,
a duplicated record, other time formats, ConsoleLogin outcome and user name, newUserName.
The expected alerts (as this author reads the spec) go to NAME.expected.json; check_same.py
--expected compares both engines with them. IP addresses are from the DB-IP / RouteViews table
(ip-location-db asn-ipv4.csv, CC BY 4.0).
"""

import datetime as dt
import json
import sys

H = 3_600_000
DAY = 24 * H
D = int(dt.datetime(2026, 5, 1, tzinfo=dt.timezone.utc).timestamp() * 1000)

AMAZON = "18.204.100.15"          # Amazon.com, Inc.            trusted (prefix Amazon)
AMAZONIA = "186.232.176.10"       # Amazonia Publicidade Ltda   trusted too (prefix, case-sensitive)
AMAZON_UPPER = "38.210.63.10"     # AMAZON TELECOM LTDA         untrusted (case-sensitive prefix)
GOOGLE = "1.179.112.10"           # Google LLC                  trusted
MICROSOFT = "1.186.0.10"          # Microsoft Corporation       trusted
MONGODB = "31.88.0.10"            # MongoDB, Inc.               trusted
TOR = "185.220.101.20"            # Stiftung Erneuerbare Freiheit (Tor exits) untrusted

records = []   # (sort time, position tweak, record)
expected = []
counter = [0]


def iso(ms, style="z"):
    t = dt.datetime.fromtimestamp(ms / 1000, tz=dt.timezone.utc)
    if style == "athena":                       # 2026-05-03 10:00:00  (UTC, no zone)
        return t.strftime("%Y-%m-%d %H:%M:%S")
    if style == "offset":                       # the same instant written at +02:00
        return t.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat(timespec="milliseconds")
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    return text + (f".{ms % 1000:03d}" if ms % 1000 else "") + "Z"


def role(name, session_user=None, kind="AssumedRole"):
    ident = {"type": kind, "arn": f"arn:aws:sts::123456789012:assumed-role/{name}/s",
             "accountId": "123456789012",
             "sessionContext": {"sessionIssuer": {"type": "Role", "userName": name}}}
    if session_user:
        ident["userName"] = session_user
    return ident


def user(name, kind="IAMUser"):
    ident = {"accountId": "123456789012"}
    if kind:
        ident["type"] = kind
    if name:
        ident["userName"] = name
    return ident


def event(t, name, ip, identity, time_style="z", order=0, **extra):
    counter[0] += 1
    rec = {
        "eventVersion": "1.09", "eventTime": iso(t, time_style), "eventName": name,
        "eventSource": "sts.amazonaws.com", "awsRegion": "us-east-1",
        "eventID": f"edge-{counter[0]:06d}", "recipientAccountId": "123456789012",
        "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.30", "userIdentity": identity,
        "requestParameters": None, "responseElements": None,
    }
    rec.update(extra)
    records.append((t, order, rec))
    return rec


def background(identity, n, start, end, ips=(AMAZON,), name="DescribeInstances"):
    """n trusted, successful, non-sensitive calls spread over [start, end], never on an hour."""
    step = (end - start) // max(n, 1)
    for i in range(n):
        t = start + i * step + 7_123
        assert t % H != 0
        event(t, name, ips[i % len(ips)], identity)


def expect(user_name, kind, t, why):
    expected.append({"user.name": user_name, "aws.cloudtrail.user_identity.type": kind,
                     "@timestamp": iso(t), "why": why})


# S1 window ends and ratio: 198 trusted in [T0-7d, T0] (one exactly at T0-7d, one 1 ms before,
# which is out), untrusted GetCallerIdentity exactly at T0-1h (recency bound) and ListBuckets
# exactly at T0: ratio 2/200 = 0.01 exactly -> alert at T0. At T0+1h the T0-7d event is out:
# 2/199 > 0.01 -> none. At T0-1h one action only -> none.
T0 = D + 8 * DAY + 12 * H
ident = role("edge-threshold")
event(T0 - 7 * DAY - 1, "DescribeInstances", AMAZON, ident)
event(T0 - 7 * DAY, "DescribeInstances", AMAZON, ident)
background(ident, 197, T0 - 7 * DAY + 30 * 60_000, T0 - DAY)
event(T0 - H, "GetCallerIdentity", TOR, ident)
event(T0, "ListBuckets", TOR, ident)
expect("edge-threshold", "AssumedRole", T0, "inclusive window ends, ratio exactly 0.01, recency bound")

# S2 recency: newest untrusted at T1-1h-1ms: alerts at T1-1h, not at T1.
T1 = D + 9 * DAY + 6 * H
ident = role("edge-recency")
background(ident, 300, T1 - 6 * DAY, T1 - 3 * H)
event(T1 - 2 * H - 30 * 60_000, "ListSecrets", TOR, ident)
event(T1 - H - 1, "GetSecretValue", TOR, ident)
expect("edge-recency", "AssumedRole", T1 - H, "newest untrusted event 1 ms before T1-1h")

# S3 failures do not count: AssumeRole with errorCode, ListBuckets with errorMessage only.
T3 = D + 9 * DAY + 15 * H
ident = role("edge-failures")
background(ident, 300, T3 - 5 * DAY, T3 - 4 * H)
event(T3 - 3 * H - 20 * 60_000, "GetCallerIdentity", TOR, ident)
event(T3 - 3 * H - 19 * 60_000, "AssumeRole", TOR, ident, errorCode="AccessDenied",
      errorMessage="not authorized")
event(T3 - 3 * H - 18 * 60_000, "ListBuckets", TOR, ident, errorMessage="denied")
event(T3 - 10 * 60_000, "GetParameter", TOR, ident)
expect("edge-failures", "AssumedRole", T3, "2 successful untrusted actions; 2 failed ones ignored")

# S4 organizations. 6 distinct (5 trusted + Tor): none. 5 distinct, Amazonia trusted by the
# case-sensitive prefix (else the ratio fails): alert. AMAZON TELECOM LTDA is untrusted: alert.
T4 = D + 10 * DAY + 3 * H
ident = role("edge-orgs6")
background(ident, 300, T4 - 6 * DAY, T4 - 2 * H, ips=(AMAZON, AMAZONIA, GOOGLE, MICROSOFT, MONGODB))
event(T4 - 30 * 60_000, "GetCallerIdentity", TOR, ident)
event(T4 - 20 * 60_000, "ListBuckets", TOR, ident)
ident = role("edge-orgs5")
background(ident, 240, T4 - 6 * DAY, T4 - 2 * H, ips=(AMAZONIA, GOOGLE, MICROSOFT, MONGODB))
event(T4 - 30 * 60_000, "GetCallerIdentity", TOR, ident)
event(T4 - 20 * 60_000, "ListBuckets", TOR, ident)
expect("edge-orgs5", "AssumedRole", T4, "5 organizations; Amazonia trusted by the Amazon prefix")
T4b = T4 + 2 * H
ident = role("edge-amazon-upper")
background(ident, 250, T4b - 6 * DAY, T4b - 2 * H)
event(T4b - 30 * 60_000, "GetCallerIdentity", AMAZON_UPPER, ident)
event(T4b - 20 * 60_000, "ListBuckets", AMAZON_UPPER, ident)
expect("edge-amazon-upper", "AssumedRole", T4b, "AMAZON TELECOM LTDA is not trusted (case-sensitive)")

# S5 user.name by identity type.
T5 = D + 10 * DAY + 8 * H
cases = [
    (role("edge-mapped", session_user="session-user"), "edge-mapped", "AssumedRole"),
    (role("edge-fed", kind="FederatedUser"), "edge-fed", "FederatedUser"),
    (user("edge-notype", kind=None), "edge-notype", None),
    (user("edge-root-alias", kind="Root"), "edge-root-alias", "Root"),
    # AssumedRole without a session issuer: user.name is null, nothing counts (not "edge-nosession")
    ({"type": "AssumedRole", "userName": "edge-nosession"}, None, None),
    # Root without a user name: null, nothing counts
    (user(None, kind="Root"), None, None),
]
for ident, name, kind in cases:
    background(ident, 250, T5 - 6 * DAY, T5 - 2 * H)
    event(T5 - 30 * 60_000, "GetCallerIdentity", TOR, ident)
    event(T5 - 20 * 60_000, "ListBuckets", TOR, ident)
    if name:
        expect(name, kind, T5, "user.name for identity type " + str(kind))
# One user.name, two identity types: two groups. Neither alerts (merged, they would).
background(user("edge-dup-name"), 250, T5 - 6 * DAY, T5 - 2 * H)
event(T5 - 30 * 60_000, "GetCallerIdentity", TOR, user("edge-dup-name"))
event(T5 - 25 * 60_000, "ListBuckets", TOR, role("edge-dup-name"))
event(T5 - 20 * 60_000, "GetSecretValue", TOR, role("edge-dup-name"))

# S6 address forms: IPv4-mapped IPv6 counts as IPv4; leading zeros, private, 'AWS Internal',
# documentation IPv6 have no AS organization and do not count.
T6 = D + 11 * DAY + 2 * H
ident = role("edge-ip")
background(ident, 250, T6 - 6 * DAY, T6 - 2 * H - 1)
base = T6 - 2 * H + 10 * 60_000
event(base, "GetCallerIdentity", "::ffff:185.220.101.7", ident)
event(base + 1000, "ListBuckets", "185.220.101.007", ident)
event(base + 2000, "ListSecrets", "10.1.2.3", ident)
event(base + 3000, "DescribeSecret", "AWS Internal", ident)
event(base + 4000, "GetParameter", "2001:db8::1", ident)
event(T6 - 20 * 60_000, "GetSecretValue", "185.220.101.8", ident)
expect("edge-ip", "AssumedRole", T6, "::ffff:185.220.101.7 counts; 3 other forms do not")

# S7 the same record delivered twice (same eventID, 2 minutes later in the file): counted once.
T7 = D + 11 * DAY + 9 * H
ident = role("edge-dupid")
background(ident, 250, T7 - 6 * DAY, T7 - 2 * H)
dup = event(T7 - 40 * 60_000, "GetCallerIdentity", TOR, ident)
records.append((T7 - 38 * 60_000, 0, dict(dup)))
event(T7 - 30 * 60_000, "ListBuckets", TOR, ident)
expect("edge-dupid", "AssumedRole", T7, "duplicate eventID counted once (untrusted_event_count 2)")

# S8 other time formats: Athena's '2026-05-12 10:00:00' (UTC) and an RFC 3339 offset.
T8 = D + 12 * DAY + 4 * H
ident = role("edge-times")
background(ident, 250, T8 - 6 * DAY, T8 - 2 * H)
event(T8 - 50 * 60_000, "GetCallerIdentity", TOR, ident, time_style="offset")
event(T8 - 40 * 60_000, "ListBuckets", TOR, ident, time_style="athena")
expect("edge-times", "AssumedRole", T8, "eventTime with +02:00 offset and in Athena's form")

# S9 ConsoleLogin: user name from additionalEventData, outcome from responseElements
# (an object or a string holding one). The successful login counts as untrusted, not sensitive.
T9 = D + 12 * DAY + 9 * H
ident = user("edge-console")
background(ident, 350, T9 - 6 * DAY, T9 - 2 * H)
no_name = user(None)
event(T9 - 50 * 60_000, "ConsoleLogin", TOR, no_name, eventSource="signin.amazonaws.com",
      additionalEventData={"UserName": "edge-console"},
      responseElements={"ConsoleLogin": "Success"})
event(T9 - 49 * 60_000, "ConsoleLogin", TOR, no_name, eventSource="signin.amazonaws.com",
      additionalEventData={"UserName": "edge-console"},
      responseElements='{"ConsoleLogin":"Failure"}')
event(T9 - 40 * 60_000, "GetCallerIdentity", TOR, ident)
event(T9 - 30 * 60_000, "ListBuckets", TOR, ident)
expect("edge-console", "IAMUser", T9, "successful ConsoleLogin counts (untrusted 3), failed one not")

# S10 related users (requestParameters.newUserName, also as a string holding JSON), and an
# event 5 minutes older than the one before it in the file (within the allowed lateness).
T10 = D + 13 * DAY + H
ident = role("edge-related")
background(ident, 300, T10 - 6 * DAY, T10 - 2 * H)
event(T10 - 30 * 60_000, "CreateUser", TOR, ident, requestParameters={"newUserName": "backdoor"})
event(T10 - 35 * 60_000, "CreateAccessKey", TOR, ident, order=1,
      requestParameters='{"newUserName":"backdoor2"}')
expect("edge-related", "AssumedRole", T10, "related users from newUserName; a late-by-5-min event")


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "edge.ndjson"
    # Time order, except `order=1` records, which go right after the record before them in time
    # (so they arrive late) - and the duplicate, placed at its own later time.
    ordered = sorted(records, key=lambda r: r[0])
    late = [r for r in ordered if r[1] == 1]
    ordered = [r for r in ordered if r[1] != 1]
    for r in late:
        i = next(i for i, o in enumerate(ordered) if o[0] > r[0] + 5 * 60_000 - 1)
        ordered.insert(i + 1, r)
    with open(out, "w", encoding="utf-8") as f:
        for _, _, rec in ordered:
            f.write(json.dumps(rec) + "\n")
    stem = out[: -len(".ndjson")] if out.endswith(".ndjson") else out
    with open(stem + ".expected.json", "w", encoding="utf-8") as f:
        json.dump(sorted(expected, key=lambda e: e["@timestamp"]), f, indent=2)
    print(f"wrote {len(ordered)} records to {out} and {len(expected)} expected alerts to {stem}.expected.json")


if __name__ == "__main__":
    main()
