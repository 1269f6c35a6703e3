#!/bin/bash
# The libFuzzer targets: builds them in build-fuzz/ (clang, ASan + UBSan,
# coverage) and runs each from its seed corpus in tests/fuzz/corpus/.
#   bash tests/fuzz.sh              a short run of each (CI): FUZZ_SECONDS, default 10
#   FUZZ_RUNS=1000000 bash tests/fuzz.sh   at least that many executions of each
# New inputs go to a scratch corpus, not into the tree; a crash leaves its
# input in build-fuzz/crashes/ and fails the run.
set -uo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
[ -x configure ] || ./autogen.sh >/dev/null 2>&1
mkdir -p build-fuzz/crashes
(cd build-fuzz && { [ -f Makefile ] || CC=clang ../configure -q --enable-fuzzers; } && make -s fuzz >/dev/null) ||
    { echo "FAIL: cannot build the fuzz targets (CC=clang, libclang-rt-14-dev)"; exit 1; }
pass=0
fail=0
for target in config args idx shard checkpoint; do
    work=$(mktemp -d)
    cp tests/fuzz/corpus/$target/* "$work/" 2>/dev/null
    limit=(-max_total_time="${FUZZ_SECONDS:-10}")
    [ -n "${FUZZ_RUNS:-}" ] && limit=(-runs="$FUZZ_RUNS")
    log=build-fuzz/fuzz_$target.log
    start=$SECONDS
    build-fuzz/tests/fuzz/fuzz_$target "$work" "${limit[@]}" -rss_limit_mb=2048 -timeout=20 -close_fd_mask=3 \
        -artifact_prefix=build-fuzz/crashes/$target- -print_final_stats=1 >"$log" 2>&1
    status=$?
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    if [ "$status" = 0 ]; then
        pass=$((pass + 1))
        echo "PASS: fuzz_$target: $runs runs in $((SECONDS - start)) s, $cov, corpus $(ls "$work" | wc -l), no crash"
    else
        fail=$((fail + 1))
        echo "FAIL: fuzz_$target (status $status) after $runs runs:"
        grep -E 'ERROR|SUMMARY|==[0-9]+==|runtime error|Test unit written' "$log" | head -20
    fi
    rm -rf "$work"
    rm -f /dev/shm/trainer-fuzz-*
done
echo "$pass passed, $fail failed"
[ "$fail" = 0 ]
