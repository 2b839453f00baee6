#!/usr/bin/env bash
# Idle memory of the app, measured without WebDriver (automation changes WebKit's behaviour):
# launches APP (default: the release binary) directly under a private Xvfb and D-Bus, waits
# until it is idle on the home screen, and reports RSS and PSS (proportional: shared pages
# split between processes, so the sum is not inflated) of the app and its WebKit children.
# Each variant is an environment setting applied to the app; the baseline runs in the same
# invocation, and each is measured RUNS times (median). Needs Xvfb and dbus (tests/app/install.sh).
#
#   tests/app/rss.sh [APP]
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
app="${1:-${CARGO_TARGET_DIR:-$root/target}/release/securesign-app}"
runs="${RUNS:-3}"
idle="${IDLE_SECONDS:-6}"
work="$(mktemp -d /tmp/securesign-rss.XXXXXX)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT
[[ -x "$app" ]] || { echo "no app at $app"; exit 1; }

display=""
for n in $(seq 150 190); do
  [[ -e "/tmp/.X$n-lock" || -e "/tmp/.X11-unix/X$n" ]] && continue
  Xvfb ":$n" -screen 0 1280x900x24 -nolisten tcp >"$work/xvfb.log" 2>&1 &
  pids+=($!); sleep 0.5
  if kill -0 "${pids[-1]}" 2>/dev/null; then display=":$n"; break; fi
done
[[ -n "$display" ]] || { echo "no free X display"; exit 1; }
mkdir -p "$work/config"
echo '{"apiBaseUrl": "http://127.0.0.1:9"}' > "$work/config/settings.json"

# Sum of a value (kB) from /proc/PID/{status,smaps_rollup} over the app and its descendants.
tree() { local p="$1"; echo "$p"; for c in $(cat /proc/"$p"/task/*/children 2>/dev/null); do tree "$c"; done; }
sum() {
  local key="$1" file="$2" total=0 p v
  for p in $(tree "$3"); do
    v="$(awk -v k="$key:" '$1 == k {print $2}' "/proc/$p/$file" 2>/dev/null || true)"
    total=$((total + ${v:-0}))
  done
  echo "$total"
}

# The newest process whose command line is exactly the app (no procps needed).
app_pid() {
  local p best=""
  for p in /proc/[0-9]*; do
    [[ "$(tr '\0' ' ' 2>/dev/null < "$p/cmdline")" == "$app " ]] && best="${p#/proc/}"
  done
  echo "$best"
}

mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

measure() { # NAME ENV...
  local name="$1"; shift
  local rss=() pss=() own=() i
  for i in $(seq "$runs"); do
    env "$@" DISPLAY="$display" SECURESIGN_CONFIG_DIR="$work/config" \
      XDG_DATA_HOME="$work/xdg" XDG_CONFIG_HOME="$work/xdg" XDG_CACHE_HOME="$work/cache" \
      dbus-run-session -- "$app" >/dev/null 2>&1 &
    local session=$!
    sleep "$idle"
    local pid
    pid="$(app_pid)"
    if [[ -n "$pid" ]]; then
      own+=("$(awk '$1 == "VmRSS:" {print $2}' "/proc/$pid/status")")
      rss+=("$(sum VmRSS status "$pid")")
      pss+=("$(sum Pss smaps_rollup "$pid")")
      kill "$pid" 2>/dev/null || true
    fi
    wait "$session" 2>/dev/null || true
  done
  med() { printf '%s\n' "$@" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
  printf '%-22s app RSS %6s MB | app+WebKit RSS %6s MB | PSS %6s MB  (median of %s)\n' "$name" \
    "$(mb "$(med "${own[@]}")")" "$(mb "$(med "${rss[@]}")")" "$(mb "$(med "${pss[@]}")")" "${#rss[@]}"
}

# The app turns WebKit's accelerated compositing off and does not load the EGL stack
# (src-tauri/src/desktop.rs); SECURESIGN_GPU_COMPOSITING=1 keeps both: the "before"
# baseline. The middle row keeps EGL but turns compositing off (the previous default).
measure "GPU paths on (before)" SECURESIGN_GPU_COMPOSITING=1
measure "compositing off only" SECURESIGN_GPU_COMPOSITING=1 WEBKIT_DISABLE_COMPOSITING_MODE=1
measure "app default"
for extra in ${RSS_EXTRA:-}; do measure "default + $extra" "$extra"; done
