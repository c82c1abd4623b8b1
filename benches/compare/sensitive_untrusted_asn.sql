-- Rule aws-sensitive-untrusted-asn ("AWS Sensitive API Actions from Untrusted ASN", Elastic's
-- ES|QL rule "AWS Rare Source AS Organization Activity") as DuckDB SQL, over raw CloudTrail NDJSON.
--
-- Spec: ../shared/specs/rules.md, rule A (numbers A1..A8 below refer to its items) and
-- ../shared/specs/cloudtrail-mapping.md (raw CloudTrail -> ECS fields). Reference implementation:
-- modules/sensitive-untrusted-asn/src/{config.rs,window.rs}, preset "elastic-compatible".
--
-- Inputs (DuckDB variables, set before this file runs; duckdb_compare.py sets them):
--   cloudtrail_path   NDJSON file (or glob) of raw CloudTrail records, one record per line
--   asn_csv_path      ip-location-db asn-ipv4.csv: start_ip,end_ip,as_number,organization
--   optional overrides of the rule's settings, same names as trailguard's rule configuration:
--   interval_minutes, window_hours, recency_minutes, min_trusted_events, min_untrusted_events,
--   max_untrusted_ratio, min_distinct_sensitive_actions, max_distinct_organizations,
--   trusted_org_prefixes, trusted_orgs, sensitive_actions
-- Output: table `alerts`, one row per (user.name, identity type, evaluation time T).
--
-- Statements end with ';' at the end of a line; a line '-- step: NAME' names the statement that
-- follows it (duckdb_compare.py times each step). The file also runs in the duckdb CLI after
-- SET VARIABLE cloudtrail_path = '...'; SET VARIABLE asn_csv_path = '...';

-- step: settings
SET TimeZone = 'UTC';
-- DuckDB plans an ASOF join as a nested loop when it expects at most this many rows on the left;
-- the many filters on the JSON scan make it expect ~8 (there are tens of thousands of distinct
-- IPs), and the nested loop against 412k ranges then takes seconds. Always use the real ASOF.
SET asof_loop_join_threshold = 0;

-- Rule settings: trailguard's defaults (config.rs, Config::preset(ElasticCompatible)) unless set.
SET VARIABLE interval_ms = CAST(COALESCE(getvariable('interval_minutes'), 60) AS BIGINT) * 60000;
SET VARIABLE window_ms = CAST(COALESCE(getvariable('window_hours'), 7 * 24) AS BIGINT) * 3600000;
SET VARIABLE recency_ms = CAST(COALESCE(getvariable('recency_minutes'), 60) AS BIGINT) * 60000;
SET VARIABLE min_trusted = CAST(COALESCE(getvariable('min_trusted_events'), 100) AS BIGINT);
SET VARIABLE min_untrusted = CAST(COALESCE(getvariable('min_untrusted_events'), 1) AS BIGINT);
SET VARIABLE max_ratio = CAST(COALESCE(getvariable('max_untrusted_ratio'), 0.01) AS DOUBLE);
SET VARIABLE min_actions = CAST(COALESCE(getvariable('min_distinct_sensitive_actions'), 2) AS BIGINT);
SET VARIABLE max_orgs = CAST(COALESCE(getvariable('max_distinct_organizations'), 5) AS BIGINT);
-- A4: trusted cloud = organization name starts with 'Amazon' (case-sensitive) or equals one of three.
SET VARIABLE trusted_prefixes = CAST(COALESCE(getvariable('trusted_org_prefixes'), ['Amazon']) AS VARCHAR[]);
SET VARIABLE trusted_names = CAST(COALESCE(getvariable('trusted_orgs'),
    ['Google LLC', 'Microsoft Corporation', 'MongoDB, Inc.']) AS VARCHAR[]);
-- A5: the 29 sensitive actions, in Elastic's order.
SET VARIABLE sensitive = CAST(COALESCE(getvariable('sensitive_actions'), [
    'GetCallerIdentity', 'GetAccountSummary', 'ListAccountAliases',
    'GetSecretValue', 'ListSecrets', 'DescribeSecret',
    'GetParameter', 'GetParameters', 'GetParametersByPath',
    'AssumeRole', 'AssumeRoleWithWebIdentity', 'AssumeRoleWithSAML',
    'AttachUserPolicy', 'AttachRolePolicy', 'PutUserPolicy', 'PutRolePolicy',
    'CreateAccessKey', 'UpdateAccessKey', 'CreateUser', 'CreateLoginProfile', 'UpdateLoginProfile',
    'AddUserToGroup', 'GetObject', 'ListBuckets', 'ListObjects', 'ListObjectsV2',
    'InvokeModel', 'InvokeModelWithResponseStream', 'Converse']) AS VARCHAR[]);

-- Helpers. Times are integer milliseconds since the epoch (UTC), as in trailguard.
CREATE OR REPLACE TEMP MACRO floor_to(t, step) AS t - (((t % step) + step) % step);
CREATE OR REPLACE TEMP MACRO ceil_to(t, step) AS -floor_to(-t, step);
-- Slots, as window.rs cuts time: slot 2k holds events exactly at k*interval, slot 2k+1 those
-- strictly between k*interval and (k+1)*interval. The window [T - window, T] of T = k*interval,
-- both ends included, is then exactly the slots 2(k - n) .. 2k, n = window / interval.
CREATE OR REPLACE TEMP MACRO slot_of(t, step) AS
    2 * (floor_to(t, step) // step) + CASE WHEN t = floor_to(t, step) THEN 0 ELSE 1 END;
-- A literal IPv4 address as Rust's Ipv4Addr parses it: four decimal octets 0..255, no leading
-- zeros ('075.050.255.67' is not literal, cloudtrail-mapping.md), nothing else.
CREATE OR REPLACE TEMP MACRO is_ipv4(a) AS regexp_full_match(a,
    '(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}');
CREATE OR REPLACE TEMP MACRO ipv4_to_int(a) AS
    CAST(split_part(a, '.', 1) AS UBIGINT) * 16777216 + CAST(split_part(a, '.', 2) AS UBIGINT) * 65536
  + CAST(split_part(a, '.', 3) AS UBIGINT) * 256 + CAST(split_part(a, '.', 4) AS UBIGINT);
-- A free-form CloudTrail object (requestParameters, ...) arrives as an object or as a string
-- holding one; anything else reads as absent (normalize.rs `nested`).
CREATE OR REPLACE TEMP MACRO json_object_of(j) AS CASE
    WHEN json_type(j) = 'OBJECT' THEN j
    WHEN json_type(j) = 'VARCHAR' THEN TRY_CAST(j ->> '$' AS JSON) END;

-- step: load_asn
-- The IPv4 range table (inclusive ranges, sorted, non-overlapping but for one DoD range), with
-- the addresses as integers for an ASOF join. A range without an organization name gives no
-- organization (trailguard's importer stores none), so its events do not count (A3).
CREATE OR REPLACE TEMP TABLE asn AS
SELECT ipv4_to_int(start_ip) AS ip_start, ipv4_to_int(end_ip) AS ip_end, as_number,
       NULLIF(organization, '') AS organization
FROM read_csv(getvariable('asn_csv_path'), header = false, quote = '"', escape = '"',
              columns = {'start_ip': 'VARCHAR', 'end_ip': 'VARCHAR', 'as_number': 'UBIGINT',
                         'organization': 'VARCHAR'})
WHERE is_ipv4(start_ip)
ORDER BY ip_start;

-- step: counted_events
-- Every CloudTrail record -> the fields the rule reads (cloudtrail-mapping.md), then the filter
-- of A2 and A3. Only the keys the rule needs are read; the others are skipped by the reader.
CREATE OR REPLACE TEMP TABLE counted AS
WITH raw AS (
    SELECT *
    FROM read_json(getvariable('cloudtrail_path'), format = 'newline_delimited',
        columns = {
            'eventTime': 'VARCHAR', '@timestamp': 'VARCHAR', 'eventName': 'VARCHAR',
            'eventID': 'VARCHAR', 'sourceIPAddress': 'VARCHAR', 'userAgent': 'VARCHAR',
            'errorCode': 'VARCHAR', 'errorMessage': 'VARCHAR',
            'userIdentity': 'STRUCT(type VARCHAR, userName VARCHAR,
                                    sessionContext STRUCT(sessionIssuer STRUCT(userName VARCHAR)))',
            'requestParameters': 'JSON', 'responseElements': 'JSON', 'additionalEventData': 'JSON'})
),
normalized AS (
    SELECT
        -- @timestamp <- eventTime (or a Logstash @timestamp); a record without a readable time
        -- is rejected by trailguard.
        epoch_ms(TRY_CAST(COALESCE(eventTime, "@timestamp") AS TIMESTAMPTZ)) AS t_ms,
        eventID AS event_id,
        eventName AS event_action,
        userIdentity.type AS identity_type,
        -- user.name: the role name (sessionIssuer.userName) for AssumedRole / FederatedUser,
        -- userIdentity.userName otherwise; ConsoleLogin / UserAuthentication without one:
        -- additionalEventData.UserName.
        COALESCE(
            CASE WHEN userIdentity.type IN ('AssumedRole', 'FederatedUser')
                 THEN userIdentity.sessionContext.sessionIssuer.userName
                 ELSE userIdentity.userName END,
            CASE WHEN eventName IN ('ConsoleLogin', 'UserAuthentication')
                 THEN json_object_of(additionalEventData) ->> 'UserName' END) AS user_name,
        -- A2 event.outcome: for ConsoleLogin the lower-cased responseElements.ConsoleLogin when
        -- present; otherwise 'failure' when errorCode or errorMessage is present, else 'success'.
        CASE
            WHEN eventName = 'ConsoleLogin'
                 AND (json_object_of(responseElements) ->> 'ConsoleLogin') IS NOT NULL
                THEN lower(json_object_of(responseElements) ->> 'ConsoleLogin')
            WHEN errorCode IS NOT NULL OR errorMessage IS NOT NULL THEN 'failure'
            ELSE 'success' END AS outcome,
        -- source.ip: sourceIPAddress when it is a literal address (IPv4 here; an IPv4-mapped IPv6
        -- address becomes IPv4). Host names ('ec2.amazonaws.com'), 'AWS Internal', junk: none.
        CASE WHEN is_ipv4(sourceIPAddress) THEN sourceIPAddress
             WHEN lower(sourceIPAddress) LIKE '::ffff:%' AND is_ipv4(sourceIPAddress[8:])
                THEN sourceIPAddress[8:] END AS source_ip,
        userAgent AS user_agent,
        json_object_of(requestParameters) ->> 'newUserName' AS new_user_name
    FROM raw
),
successful AS (
    -- A2: success only; A3: a user.name (and an organization, checked by the join below).
    SELECT * FROM normalized
    WHERE t_ms IS NOT NULL AND outcome = 'success' AND user_name IS NOT NULL
          AND source_ip IS NOT NULL
    -- The same record delivered twice counts once (trailguard drops an eventID seen again
    -- within 60 minutes of event time; here the first of each eventID is kept).
    QUALIFY event_id IS NULL OR row_number() OVER (PARTITION BY event_id ORDER BY t_ms) = 1
),
source_orgs AS (
    -- Each distinct source IP once: its AS organization (A3) and whether it is a trusted cloud
    -- (A4). ASOF picks the range with the greatest start <= ip; the ip must also be <= its end.
    SELECT i.source_ip, a.organization,
           list_contains(getvariable('trusted_names'), a.organization)
           OR len(list_filter(getvariable('trusted_prefixes'),
                              lambda p: starts_with(a.organization, p))) > 0 AS trusted
    FROM (SELECT DISTINCT source_ip, ipv4_to_int(source_ip) AS ip FROM successful) i
    ASOF JOIN asn a ON i.ip >= a.ip_start
    WHERE i.ip <= a.ip_end AND a.organization IS NOT NULL
)
SELECT e.user_name, e.identity_type, e.t_ms, e.event_id, e.event_action, e.source_ip,
       e.user_agent, e.new_user_name, o.organization, o.trusted,
       -- A5: sensitive action (only matters for untrusted events)
       list_contains(getvariable('sensitive'), e.event_action) AS sensitive
FROM successful e JOIN source_orgs o USING (source_ip);

-- step: evaluate
-- A1: evaluations run at every whole interval T (hourly) with window [T - 7 days, T]. An alert
-- needs an untrusted event at or after T - recency (A7 latest_untrusted >= T - 1 hour), and that
-- event must be in the window (<= T); so only T with T - recency <= t <= T for some untrusted
-- event t can alert. Those T are enumerated ("candidates"); every other hourly T fails A7.
-- Cheap counts first over per-slot partial aggregates with a sliding RANGE frame, then the
-- distinct sets (A6) for the few (identity, T) that pass, from the events of their window.
CREATE OR REPLACE TEMP TABLE alerts AS
WITH slot_counts AS (
    -- Per identity (A6 group: user.name, identity type; NULL type is its own group) and slot.
    SELECT user_name, identity_type, slot_of(t_ms, getvariable('interval_ms')) AS slot,
           count(*) AS total,
           count(*) FILTER (WHERE trusted) AS trusted,
           count(*) FILTER (WHERE NOT trusted) AS untrusted,
           max(t_ms) FILTER (WHERE NOT trusted) AS latest_untrusted,
           false AS candidate
    FROM counted GROUP BY ALL
),
candidates AS (
    -- Each untrusted event makes its identity a candidate for every T (multiple of the
    -- interval) with t <= T <= t + recency; T = k*interval sits in slot 2k.
    SELECT DISTINCT user_name, identity_type, 2 * (t_eval // getvariable('interval_ms')) AS slot
    FROM (SELECT user_name, identity_type,
                 unnest(generate_series(ceil_to(t_ms, getvariable('interval_ms')),
                                        t_ms + getvariable('recency_ms'),
                                        getvariable('interval_ms'))) AS t_eval
          FROM counted WHERE NOT trusted)
),
slots AS (
    SELECT user_name, identity_type, slot,
           sum(total) AS total, sum(trusted) AS trusted, sum(untrusted) AS untrusted,
           max(latest_untrusted) AS latest_untrusted, bool_or(candidate) AS candidate
    FROM (SELECT * FROM slot_counts
          UNION ALL
          SELECT user_name, identity_type, slot, 0, 0, 0, NULL, true FROM candidates)
    GROUP BY ALL
),
windowed AS (
    -- A1/A6: sums over the window of T = slot/2 * interval: slots [slot - 2n, slot].
    SELECT user_name, identity_type, candidate,
           slot // 2 * getvariable('interval_ms') AS t_eval,
           sum(total) OVER w AS total,
           sum(trusted) OVER w AS trusted,
           sum(untrusted) OVER w AS untrusted,
           max(latest_untrusted) OVER w AS latest_untrusted
    FROM slots
    WINDOW w AS (PARTITION BY user_name, identity_type ORDER BY slot
                 RANGE BETWEEN 2 * getvariable('window_ms') // getvariable('interval_ms') PRECEDING
                           AND CURRENT ROW)
),
passing_counts AS (
    -- A7, the count conditions: trusted_count >= 100, untrusted_count >= 1,
    -- ratio = untrusted / total <= 0.01 (as a float), latest_untrusted >= T - 1 hour.
    SELECT * FROM windowed
    WHERE candidate
      AND trusted >= getvariable('min_trusted')
      AND untrusted >= getvariable('min_untrusted')
      AND untrusted::DOUBLE / total::DOUBLE <= getvariable('max_ratio')
      AND latest_untrusted >= t_eval - getvariable('recency_ms')
),
with_sets AS (
    -- A6, the distinct sets, from the counted events of each remaining window [T - 7d, T].
    SELECT p.user_name, p.identity_type, p.t_eval, p.total, p.trusted, p.untrusted,
           p.latest_untrusted,
           count(*) FILTER (WHERE NOT e.trusted AND e.sensitive) AS untrusted_sensitive,
           -- (an empty set is [], not NULL)
           COALESCE(list_sort(list(DISTINCT e.organization)), []) AS orgs,
           COALESCE(list_sort(list(DISTINCT e.event_action) FILTER (WHERE NOT e.trusted AND e.sensitive)),
                    []) AS untrusted_sensitive_actions,
           COALESCE(list_sort(list(DISTINCT e.user_agent) FILTER (WHERE e.user_agent IS NOT NULL)),
                    []) AS user_agents,
           COALESCE(list_sort(list(DISTINCT e.new_user_name) FILTER (WHERE e.new_user_name IS NOT NULL)),
                    []) AS related_users,
           COALESCE(list_sort(list(DISTINCT e.source_ip)), []) AS source_ips
    FROM passing_counts p
    JOIN counted e
      ON e.user_name = p.user_name AND e.identity_type IS NOT DISTINCT FROM p.identity_type
     AND e.t_ms BETWEEN p.t_eval - getvariable('window_ms') AND p.t_eval
    GROUP BY ALL
)
-- A7, the set conditions: at least 2 distinct untrusted sensitive actions, at most 5 distinct
-- organizations (trusted ones included). A8: one alert per group and T, with Elastic's names.
SELECT user_name, identity_type,
       t_eval,
       total AS total_events_all_asns,
       len(orgs) AS count_distinct_asns,
       orgs AS src_asn_values,
       user_agents AS user_agent_values,
       related_users,
       source_ips AS source_ip_values,
       trusted > 0 AS has_trusted_cloud_asn,
       trusted AS trusted_cloud_event_count,
       untrusted AS untrusted_event_count,
       untrusted_sensitive AS untrusted_suspicious_count,
       untrusted_sensitive_actions AS untrusted_suspicious_actions,
       latest_untrusted AS most_recent_low_asn_ms,
       untrusted::DOUBLE / total::DOUBLE AS rare_asn_ratio,
       len(untrusted_sensitive_actions) AS unique_action_from_untrusted_asn
FROM with_sets
WHERE len(untrusted_sensitive_actions) >= getvariable('min_actions')
  AND len(orgs) <= getvariable('max_orgs')
ORDER BY t_eval, user_name, identity_type;
