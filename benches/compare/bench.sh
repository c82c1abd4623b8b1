#!/usr/bin/env bash
# Throughput of rule aws-sensitive-untrusted-asn: trailguard vs DuckDB on the same NDJSON file.
#
#   benches/compare/bench.sh CLOUDTRAIL.ndjson ASN_IPV4_CSV [RUNS]      (RUNS default 3)
#
# Runs, RUNS times each, interleaved (round-robin, so a noisy moment hits every contender):
#   duckdb-1t    duckdb_compare.py --threads 1
#   duckdb-all   duckdb_compare.py --threads $(nproc)
#   tg-rule      trailguard run, only rule-sensitive-untrusted-asn.wasm
#   tg-all       trailguard run, every rule in target/modules (the default)
# each under /usr/bin/time -f "%e %M %U %S" (wall s, max RSS KiB, user and system CPU s), then
# prints min / median, the in-process times (DuckDB: the SQL without Python start-up;
# trailguard: its "elapsed"), and checks with check_same.py that the last run of every
# contender gave the same alerts.
# Uses the already-built target/release/trailguard and target/asn/asn.mmdb; never builds.
# Waits for the machine to be idle before each run (WAIT_IDLE=0 to skip) and repeats a run during
# which other work used the cores; the "other CPU" column is the most CPU time the rest of the
# machine used during one of a contender's kept runs (near 0: the numbers are clean).
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
input=${1:?usage: bench.sh CLOUDTRAIL.ndjson ASN_IPV4_CSV [RUNS]}
asn_csv=${2:?usage: bench.sh CLOUDTRAIL.ndjson ASN_IPV4_CSV [RUNS]}
runs=${3:-3}
tg=${TRAILGUARD:-$root/target/release/trailguard}
mmdb=${ASN_DB:-$root/target/asn/asn.mmdb}
rule=$root/target/modules/rule-sensitive-untrusted-asn.wasm
out=${OUT:-/tmp/trailguard-compare}
mkdir -p "$out"
: > "$out/times.txt"

# Sets the array `argv` to the command line of contender $1.
cmd() {
    case $1 in
    duckdb-1t) argv=(python3 "$here/duckdb_compare.py" "$input" "$asn_csv" --threads 1 -o "$out/$1.ndjson") ;;
    duckdb-all) argv=(python3 "$here/duckdb_compare.py" "$input" "$asn_csv" --threads "$(nproc)" -o "$out/$1.ndjson") ;;
    tg-rule) argv=("$tg" run "$input" --asn-db "$mmdb" --rules "$rule" -o "$out/$1.ndjson") ;;
    tg-all) argv=("$tg" run "$input" --asn-db "$mmdb" -o "$out/$1.ndjson") ;;
    esac
}

# CPU time (1/100 s) the whole machine has spent busy so far, from /proc/stat: compared with the
# contender's own user + system time, it shows whether anything else ran during a measurement.
busy_cpu() { awk '/^cpu /{print $2+$3+$4+$7+$8+$9; exit}' /proc/stat; }

# On a shared machine: wait (at most 15 minutes) until it has been idle for 4 s in a row.
wait_idle() {
    local quiet=0 start=$SECONDS a b
    while [ "$quiet" -lt 2 ] && [ $((SECONDS - start)) -lt 900 ]; do
        a=$(busy_cpu); sleep 2; b=$(busy_cpu)
        if [ $((b - a)) -lt 10 ]; then quiet=$((quiet + 1)); else quiet=0; fi
    done
}

contenders="duckdb-1t duckdb-all tg-rule tg-all"
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "trailguard: $("$tg" --version); duckdb: $(python3 -c 'import duckdb; print(duckdb.__version__)'); python: $(python3 -c 'import platform; print(platform.python_version())')"
echo "input: $input ($(wc -l < "$input") records, $(du -h "$input" | cut -f1))"
# What exactly is measured: the binary and rule components may be rebuilt by others meanwhile.
fingerprint() { sha256sum "$tg" "$root"/target/modules/*.wasm | cut -c1-12 | tr '\n' ' '; }
build_before=$(fingerprint)
echo "trailguard build (sha256 of binary and rule components): $build_before"
# Warm-up, untimed: fills trailguard's compiled-rule cache (a rule changed since the last run is
# compiled once, then loaded from the cache) and the page cache for both engines.
head -n 1000 "$input" > "$out/warmup.ndjson"
"$tg" run "$out/warmup.ndjson" --asn-db "$mmdb" -o /dev/null 2> /dev/null || true
cat "$input" > /dev/null
for i in $(seq 1 "$runs"); do
    for c in $contenders; do
        cmd "$c"
        # A run during which the rest of the machine used more than 0.3 s of CPU shared the
        # cores with another job: wait for quiet and measure again (at most 3 tries; the last
        # one is kept either way, and its "other CPU" shows in the table).
        for try in 1 2 3; do
            [ "${WAIT_IDLE:-1}" = 1 ] && wait_idle
            before=$(busy_cpu)
            /usr/bin/time -f "%e %M %U %S" -o "$out/time.txt" "${argv[@]}" > "$out/$c.$i.log" 2>&1 || {
                status=$?
                # trailguard exits 3 when records were rejected; anything else is a failure
                [ "$status" = 3 ] || { echo "$c run $i failed ($status), see $out/$c.$i.log"; exit 1; }
            }
            after=$(busy_cpu)
            other=$(awk -v d=$((after - before)) '{ printf "%d", d - ($3 + $4) * 100 }' "$out/time.txt")
            [ "$other" -le 30 ] && break
            echo "  ($c run $i: the machine was busy with other work for $other/100 s of CPU; again)"
        done
        inner=$(grep -oE 'wall time: [0-9.]+ s|elapsed [0-9.]+ s' "$out/$c.$i.log" | grep -oE '[0-9.]+' | head -1)
        noasn=$(grep -oE 'without the ASN load: [0-9.]+' "$out/$c.$i.log" | grep -oE '[0-9.]+$' || true)
        echo "$c $i $(tail -1 "$out/time.txt") ${inner:--} ${noasn:--} $((after - before))" | tee -a "$out/times.txt"
    done
done

build_after=$(fingerprint)
if [ "$build_before" != "$build_after" ]; then
    echo "WARNING: trailguard was rebuilt during the measurement ($build_after); run again"
fi

python3 - "$out/times.txt" "$input" <<'EOF'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
records = sum(1 for _ in open(sys.argv[2], "rb"))
print()
print(f"{'contender':<11} {'wall min':>9} {'wall med':>9} {'events/s (min)':>15} {'CPU med':>8} {'max RSS med':>12} {'in-process min':>15} {'(no ASN load)':>14} {'other CPU max':>14}")
for c in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == c]
    wall = sorted(float(r[2]) for r in mine)
    rss = statistics.median(int(r[3]) for r in mine) / 1024
    cpu = statistics.median(float(r[4]) + float(r[5]) for r in mine)
    inner = [float(r[6]) for r in mine if r[6] != "-"]
    noasn = [float(r[7]) for r in mine if r[7] != "-"]
    # machine-wide busy CPU during the run minus the contender's own: other work on the machine
    others = max(int(r[8]) / 100 - float(r[4]) - float(r[5]) for r in mine)
    print(f"{c:<11} {wall[0]:>8.2f}s {statistics.median(wall):>8.2f}s {records / wall[0]:>15,.0f} {cpu:>7.2f}s {rss:>10.0f}MB "
          f"{(f'{min(inner):.2f}s' if inner else '-'):>15} {(f'{min(noasn):.2f}s' if noasn else '-'):>14} {others:>13.2f}s")
EOF

echo
for c in duckdb-1t duckdb-all tg-all; do
    echo "check_same tg-rule vs $c:"
    python3 "$here/check_same.py" --labels "tg-rule,$c" "$out/tg-rule.ndjson" "$out/$c.ndjson" | sed 's/^/  /'
done
