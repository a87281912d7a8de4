#!/usr/bin/env bash
# `mode: start`: install bee-trace (action/install.sh), start the monitor in the background as
# root from the workspace and return once its probes are attached. Inputs come as BT_* env.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
t0=$EPOCHREALTIME
out="$RUNNER_TEMP/bee-trace.jsonl"; pidf="$RUNNER_TEMP/bee-trace.pid"
ready="$RUNNER_TEMP/bee-trace.ready"; log="$RUNNER_TEMP/bee-trace.log"
rm -f "$ready" "$pidf"
bt="$("$here/install.sh" | tail -1)"
echo "$bt" > "$RUNNER_TEMP/bee-trace.bin"
t1=$EPOCHREALTIME
args=(run --probe-type "${BT_PROBE:-all}" --output "$out" --format jsonl --ready-file "$ready")
if [ -n "${BT_CONFIG:-}" ]; then args+=(--config "$(realpath "$BT_CONFIG")"); fi
# The monitor runs from the workspace so .github/security.yml is found by default; `exec` in
# the inner shell makes the recorded pid the monitor itself.
$SUDO env GITHUB_ACTIONS="${GITHUB_ACTIONS:-}" bash -c \
  'cd "$1"; shift; pidf="$1"; log="$2"; shift 2; nohup "$@" >"$log" 2>&1 </dev/null & echo $! >"$pidf"' \
  _ "${GITHUB_WORKSPACE:-$PWD}" "$pidf" "$log" "$bt" "${args[@]}"
pid="$(cat "$pidf")"
for _ in $(seq $(( ${BT_TIMEOUT:-120} * 20 ))); do
  if [ -e "$ready" ]; then
    t2=$EPOCHREALTIME
    awk -v p="$pid" -v a="$t0" -v b="$t1" -v c="$t2" 'BEGIN { printf \
      "bee-trace is monitoring (pid %s): installed in %.1f s, probes attached %.1f s later\n", p, b - a, c - b }'
    exit 0
  fi
  if ! $SUDO kill -0 "$pid" 2>/dev/null; then break; fi
  sleep 0.05
done
echo "::error title=bee-trace::monitor did not become ready; log follows"
$SUDO cat "$log" || true
exit 1
