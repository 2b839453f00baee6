#!/usr/bin/env bash
# Fuzzes every target (or the ones named) for SECONDS each, one after the other:
#   fuzz/run.sh [seconds] [target...]        (default: 60 seconds, every target)
# cargo-fuzz (libFuzzer) on the stable toolchain with RUSTC_BOOTSTRAP=1; installed with
# `cargo install cargo-fuzz --locked` when missing. The targets are built once, then each
# binary runs on its corpus, fuzz/corpus/<target>/, which grows with what it finds new,
# and on the seeds, fuzz/seeds/<target>/ (made by fuzz/make-seeds.sh, never minimised);
# crashes go to fuzz/artifacts/<target>/ (git-ignored), logs to fuzz/logs/. A finding's
# minimised input (`<binary> -minimize_crash=1 <crash>`, or `cargo fuzz tmin`) belongs in
# fuzz/regressions/<target>/ with the fix: the workspace test
# `cargo test -p securesign-fuzz-targets --test replay` runs it and the corpora on stable.
#
# Environment:
#   FUZZ_JOBS       parallel libFuzzer jobs per target (default 1)
#   FUZZ_SANITIZER  none (default; safe Rust but for the FFI wrappers) or address
#   FUZZ_NICE       niceness (default 10)
#   FUZZ_CMIN=1     after its run, minimise each corpus in place (libFuzzer set-cover merge)
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
nice -n "$nice_level" cargo fuzz build --release --debug-assertions --sanitizer "$sanitizer"
triple=$(rustc -vV | sed -n 's/^host: //p')
bin_dir="$here/target/$triple/release"
mkdir -p logs
for target in "${targets[@]}"; do
  mkdir -p "corpus/$target" "artifacts/$target"
  log="logs/$target.log"
  echo "==> $target: ${seconds}s (log: fuzz/$log)"
  parallel=()
  if [ "$jobs" -gt 1 ]; then parallel=(-jobs="$jobs" -workers="$jobs"); fi
  set +e
  nice -n "$nice_level" "$bin_dir/$target" "corpus/$target" "seeds/$target" \
    -max_total_time="$seconds" "${parallel[@]}" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="artifacts/$target/" \
    >"$log" 2>&1
  status=$?
  set -e
  if [ "$jobs" -gt 1 ]; then cat fuzz-*.log >>"$log" 2>/dev/null && rm -f fuzz-*.log; fi
  grep -E '^stat::(number_of_executed_units|average_exec_per_sec|peak_rss_mb)' "$log" || true
  echo "    corpus: $(find "corpus/$target" -type f | wc -l) files," \
    "$(du -sk --apparent-size "corpus/$target" | cut -f1) KiB; artifacts: $(find "artifacts/$target" -type f | wc -l)"
  if [ "$status" -ne 0 ]; then
    echo "    FINDING: libFuzzer exited $status; see fuzz/$log and fuzz/artifacts/$target/"
  fi
  if [ "${FUZZ_CMIN:-0}" = 1 ]; then
    # Keeps a small set of inputs covering the edges the seeds do not (counters and
    # value profiles ignored, to keep the committed corpus small); seeds are not copied.
    minimised=$(mktemp -d)
    cp "seeds/$target"/* "$minimised"/
    nice -n "$nice_level" "$bin_dir/$target" -set_cover_merge=1 -use_counters=0 \
      "$minimised" "corpus/$target" \
      >"logs/$target.cmin.log" 2>&1
    rm -f "$minimised"/seed-*
    rm -rf "corpus/$target" && mv "$minimised" "corpus/$target"
    echo "    minimised: $(find "corpus/$target" -type f | wc -l) files," \
      "$(du -sk --apparent-size "corpus/$target" | cut -f1) KiB"
  fi
done
