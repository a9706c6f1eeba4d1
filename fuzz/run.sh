#!/usr/bin/env bash
# Builds every fuzz target, then runs each for SECONDS (default 20) from its corpus in
# fuzz/corpus/<target> (seeded from fuzz/seeds/<target>), and prints libFuzzer's final
# stats. Exits non-zero if any target crashes, fails an invariant, times out or runs out
# of memory; the reproducer is left in fuzz/artifacts/<target>/.
#
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")"

seconds=${1:-20}
if (($# > 0)); then shift; fi
targets=("$@")
if ((${#targets[@]} == 0)); then
    targets=(fuzz_targets/*.rs)
    targets=("${targets[@]##*/}")
    targets=("${targets[@]%.rs}")
fi

# cargo-fuzz needs nightly flags; the stable toolchain allows them with RUSTC_BOOTSTRAP.
export RUSTC_BOOTSTRAP=1
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi
# Optimized, but with debug assertions and overflow checks: an overflow is a bug too.
flags=(-O --debug-assertions)
cargo fuzz build "${flags[@]}"

mkdir -p target/logs
failed=()
printf '%-18s %12s %14s  %s\n' target execs/s "total execs" result
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    cp -n "seeds/$target"/* "corpus/$target/" 2>/dev/null || true
    log="target/logs/$target.log"
    result=ok
    if ! cargo fuzz run "${flags[@]}" "$target" "corpus/$target" -- \
        -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$log" 2>&1; then
        result="FAILED (log: fuzz/$log)"
        failed+=("$target")
    fi
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
    total=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    printf '%-18s %12s %14s  %s\n' "$target" "${rate:--}" "${total:--}" "$result"
done

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]} > 0)); then
    for target in "${failed[@]}"; do
        echo "=== $target"
        grep -E -A12 'panicked|ERROR: libFuzzer|SUMMARY' "target/logs/$target.log" | head -40 || true
        ls "artifacts/$target" 2>/dev/null || true
    done
    exit 1
fi
