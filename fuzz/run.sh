#!/usr/bin/env bash
# Fuzzes every target (or the ones named) for SECONDS each, one after the other:
#   fuzz/run.sh [seconds] [target...]        (default: 60 seconds, every target)
# cargo-fuzz (libFuzzer) on the stable toolchain with RUSTC_BOOTSTRAP=1; installed with
# `cargo install cargo-fuzz --locked` when missing. New inputs go to fuzz/corpus/<target>/
# (trim it with `cmin` below before committing), crashes to fuzz/artifacts/<target>/:
# copy a minimised crash (`cargo fuzz tmin`) to fuzz/regressions/<target>/ with the fix,
# and the workspace test `securesign-fuzz-targets --test replay` keeps it fixed.
#
# Environment: FUZZ_JOBS (parallel libFuzzer jobs, default 1), FUZZ_SANITIZER (none by
# default: the code is safe Rust but for two FFI/mmap wrappers; `address` for ASan),
# FUZZ_NICE (niceness, default 10), FUZZ_CMIN=1 (minimise each corpus after its run).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
seconds=${1:-60}
shift || true
targets=("$@")
export RUSTC_BOOTSTRAP=1
if ! command -v cargo-fuzz >/dev/null; then
  cargo install cargo-fuzz --locked
fi
if [ ${#targets[@]} -eq 0 ]; then
  mapfile -t targets < <(cargo fuzz list)
fi
sanitizer=${FUZZ_SANITIZER:-none}
jobs=${FUZZ_JOBS:-1}
nice_level=${FUZZ_NICE:-10}
# Optimised, with debug assertions and overflow checks (an overflow is a finding).
flags=(--release --debug-assertions --sanitizer "$sanitizer")
nice -n "$nice_level" cargo fuzz build "${flags[@]}"
mkdir -p logs
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="logs/$target.log"
  echo "==> $target: ${seconds}s (log: fuzz/$log)"
  set +e
  nice -n "$nice_level" cargo fuzz run "${flags[@]}" "$target" \
    "corpus/$target" -- -max_total_time="$seconds" -jobs="$jobs" -workers="$jobs" \
    -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="artifacts/$target/" >"$log" 2>&1
  status=$?
  set -e
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  echo "    corpus: $(find "corpus/$target" -type f | wc -l) files; artifacts: $(find "artifacts/$target" -type f | wc -l)"
  if [ "$status" -ne 0 ]; then
    echo "    FINDING: libFuzzer exited $status; see fuzz/$log and fuzz/artifacts/$target/"
  fi
  if [ "${FUZZ_CMIN:-0}" = 1 ]; then
    nice -n "$nice_level" cargo fuzz cmin "${flags[@]}" "$target" "corpus/$target" \
      >"logs/$target.cmin.log" 2>&1 || echo "    cmin failed: fuzz/logs/$target.cmin.log"
  fi
done
