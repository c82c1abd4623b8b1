#!/usr/bin/env bash
# trailguard's whole run vs the rsigma CLI evaluating only SigmaHQ's CloudTrail rules, on one
# NDJSON file of CloudTrail records, same machine, same cores.
#
#   benches/compare/rsigma.sh CLOUDTRAIL.ndjson [RUNS]      (RUNS default 3)
#
# Contenders, RUNS times each, interleaved (round-robin, so a noisy moment hits every one):
#   rsigma     rsigma engine eval: the 57 rules of rules/sigma/cloud/aws/cloudtrail, detections
#              only (no correlation rules among them), one match per line on stdout
#   tg-sigma   trailguard run with only the Sigma pack (the same 57 rules, sandboxed)
#   tg-all     trailguard run with every shipped rule plus the Sigma pack: parse, enrich with
#              the AS, the four shipped rules and the 57 Sigma rules, alerts written
# each under /usr/bin/time -f "%e %M %U %S" (wall s, max RSS KiB, user and system CPU s); prints
# the median of each and the ratio tg-all / rsigma (the issue's target: <= 1.0).
# Before timing, one untimed run of rsigma with --include-event and one of tg-sigma are compared
# match for match: the same (eventID, rule id) pairs, or the script fails.
#
# Installs the rsigma CLI once into target/compare/rsigma (cargo install, pinned to the version
# of the rsigma crates the pack uses, without its daemon), which takes a few minutes. Uses the
# already-built target/release/trailguard and target/asn/asn.mmdb; never builds trailguard.
# trailguard runs with --dedup-window 0 --max-future 0 --max-time-jump 0 so that it evaluates
# every record as rsigma does (no deduplication, no clock checks).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
input=${1:?usage: rsigma.sh CLOUDTRAIL.ndjson [RUNS]}
runs=${2:-3}
version=0.23.0
tg=${TRAILGUARD:-$root/target/release/trailguard}
mmdb=${ASN_DB:-$root/target/asn/asn.mmdb}
rules=${SIGMA_RULES:-$root/rules/sigma}
out=${OUT:-/tmp/trailguard-rsigma}
rsigma=$root/target/compare/rsigma/bin/rsigma
mkdir -p "$out"

if ! "$rsigma" --version 2>/dev/null | grep -q "$version"; then
    echo "installing rsigma $version into target/compare/rsigma (once)"
    cargo install rsigma --version "$version" --locked --no-default-features --features rsigma-runtime \
        --root "$root/target/compare/rsigma"
fi

tg_flags=(--asn-db "$mmdb" --sigma "$rules" --dedup-window 0 --max-future 0 --max-time-jump 0)
cmd() {
    case $1 in
    rsigma) argv=("$rsigma" engine eval -r "$rules" -e "@$input") ;;
    tg-sigma) argv=("$tg" run "$input" --rules "$root/target/modules/rule-sigma.wasm" "${tg_flags[@]}") ;;
    tg-all) argv=("$tg" run "$input" "${tg_flags[@]}") ;;
    esac
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "trailguard: $("$tg" --version); rsigma: $("$rsigma" --version)"
echo "input: $input ($(wc -l < "$input") records, $(du -h "$input" | cut -f1))"

# The same matches: (eventID, rule id) from both.
"$rsigma" engine eval -r "$rules" -e "@$input" --include-event \
    > "$out/rsigma-events.ndjson" 2> "$out/rsigma-events.log"
"$tg" run "$input" --rules "$root/target/modules/rule-sigma.wasm" "${tg_flags[@]}" \
    -o "$out/tg-check.ndjson" 2> "$out/tg-check.log" || [ $? -eq 3 ]
python3 - "$out/rsigma-events.ndjson" "$out/tg-check.ndjson" <<'EOF'
import json, sys
def pairs(path, event_id, rule_id):
    got = set()
    with open(path) as f:
        for line in f:
            if line.strip():
                m = json.loads(line)
                got.add((event_id(m), rule_id(m)))
    return got
rs = pairs(sys.argv[1], lambda m: (m.get("event") or {}).get("eventID"), lambda m: m.get("rule_id"))
tg = pairs(sys.argv[2], lambda m: m.get("event.id"), lambda m: m.get("kibana.alert.rule.rule_id"))
print(f"matches: rsigma {len(rs)}, trailguard {len(tg)}, of {len({r for _, r in rs})} rules")
if rs != tg:
    print("DIFFERENT: only rsigma", sorted(rs - tg)[:10], "only trailguard", sorted(tg - rs)[:10])
    sys.exit(1)
print("the same (eventID, rule id) pairs")
EOF

# Warm-up, untimed: trailguard's compile cache and the page cache.
"$tg" run "$input" "${tg_flags[@]}" -o /dev/null 2> /dev/null || true
: > "$out/times.txt"
for i in $(seq 1 "$runs"); do
    for c in rsigma tg-sigma tg-all; do
        cmd "$c"
        /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" "${argv[@]}" > /dev/null 2> "$out/$c.$i.log" \
            || [ $? -eq 3 ] || { echo "$c failed:"; tail -5 "$out/$c.$i.log"; exit 1; }
        echo "$c $(cat "$out/time.txt")" >> "$out/times.txt"
    done
done
python3 - "$out/times.txt" <<'EOF'
import statistics, sys
rows = {}
for line in open(sys.argv[1]):
    name, wall, rss, user, system = line.split()
    rows.setdefault(name, []).append((float(wall), int(rss), float(user) + float(system)))
med = {}
print(f"{'contender':<10} {'wall s (median)':>16} {'CPU s':>8} {'peak RSS MiB':>13}")
for name, runs in rows.items():
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[2] for r in runs)
    rss = max(r[1] for r in runs) / 1024
    med[name] = wall
    print(f"{name:<10} {wall:>16.2f} {cpu:>8.2f} {rss:>13.0f}")
print(f"tg-all / rsigma (wall): {med['tg-all'] / med['rsigma']:.2f}")
print(f"tg-sigma / rsigma (wall): {med['tg-sigma'] / med['rsigma']:.2f}")
EOF
