#!/usr/bin/env bash
# Same alerts from trailguard and DuckDB? Runs both on each input, with the rule's default
# settings and with loose.toml (thousands of alerts), and compares with check_same.py; the edge
# case file is also compared with the alerts expected from the spec.
#
#   benches/compare/validate.sh ASN_IPV4_CSV FILE.ndjson...
#
# A file named edge.ndjson next to an edge.expected.json (make_edge_cases.py writes both) is
# checked against it too. Uses the already-built target/release/trailguard; never builds.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
asn_csv=${1:?usage: validate.sh ASN_IPV4_CSV FILE.ndjson...}
shift
tg=${TRAILGUARD:-$root/target/release/trailguard}
mmdb=${ASN_DB:-$root/target/asn/asn.mmdb}
rule=$root/target/modules/rule-sensitive-untrusted-asn.wasm
out=${OUT:-/tmp/trailguard-compare}
mkdir -p "$out"
failed=0

for input in "$@"; do
    name=$(basename "$input" .ndjson)
    for profile in default loose; do
        tg_args=() duck_args=()
        if [ "$profile" = loose ]; then
            tg_args=(--config "$here/loose.toml")
            duck_args=(--rule-config "$here/loose.toml")
        fi
        "$tg" run "$input" --asn-db "$mmdb" --rules "$rule" "${tg_args[@]}" \
            -o "$out/$name.$profile.trailguard.ndjson" 2> "$out/$name.$profile.trailguard.log"
        status=$?
        [ "$status" = 0 ] || [ "$status" = 3 ] || { echo "trailguard failed on $input"; failed=1; continue; }
        python3 "$here/duckdb_compare.py" "$input" "$asn_csv" "${duck_args[@]}" --max-print 0 \
            -o "$out/$name.$profile.duckdb.ndjson" > "$out/$name.$profile.duckdb.log" || { failed=1; continue; }
        expected=()
        stem=${input%.ndjson}
        if [ "$profile" = default ] && [ -f "$stem.expected.json" ]; then
            expected=(--expected "$stem.expected.json")
        fi
        echo "== $input, $profile settings"
        python3 "$here/check_same.py" "$out/$name.$profile.trailguard.ndjson" \
            "$out/$name.$profile.duckdb.ndjson" "${expected[@]}" | sed 's/^/   /'
        [ "${PIPESTATUS[0]}" = 0 ] || failed=1
    done
done
[ "$failed" = 0 ] && echo "ALL SAME" || echo "SOME DIFFER (see above; files in $out)"
exit "$failed"
