#!/usr/bin/env bash
# `mode: stop` (run it with `if: always()`): stop the monitor cleanly, then write the report, the
# step summary, annotations and outputs. A monitor that is gone (killed, crashed) leaves a stream
# without its summary record: the report's verdict is then `interrupted`.
set -euo pipefail
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
out="$RUNNER_TEMP/bee-trace.jsonl"; pidf="$RUNNER_TEMP/bee-trace.pid"
log="$RUNNER_TEMP/bee-trace.log"
fail_on="${BT_FAIL_ON:-none}"
bt="$(cat "$RUNNER_TEMP/bee-trace.bin" 2>/dev/null || true)"
# Running = signalable and not a zombie (a killed monitor may wait for its reaper for a while).
alive() { $SUDO kill -0 "$1" 2>/dev/null && ! $SUDO grep -qs '^[0-9]* (.*) Z' "/proc/$1/stat"; }
if [ -s "$pidf" ]; then
  pid="$(cat "$pidf")"
  if alive "$pid"; then
    # SIGINT = clean shutdown: the monitor drains its rings and writes the summary record.
    $SUDO kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 300); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
      echo "::warning title=bee-trace::monitor did not stop within 30 s; killing it (verdict: interrupted)"
      $SUDO kill -KILL "$pid" || true
    fi
  else
    echo "::warning title=bee-trace::monitor (pid $pid) was no longer running: it was killed or crashed; verdict: interrupted"
    tail -n 20 "$log" 2>/dev/null || true
  fi
else
  echo "::warning title=bee-trace::no monitor was started (did mode: start run and succeed?)"
fi
if [ -z "$bt" ] || [ ! -x "$bt" ] || [ ! -e "$out" ]; then
  msg="bee-trace did not run in this job: no events were recorded, nothing was monitored."
  echo "::error title=bee-trace::$msg"
  if [ -n "${GITHUB_STEP_SUMMARY:-}" ]; then
    printf '## bee-trace security report\n\n**Verdict: not monitored.** %s\n' "$msg" >>"$GITHUB_STEP_SUMMARY"
  fi
  [ "$fail_on" = "none" ] && exit 0 || exit 1
fi
$SUDO chown "$(id -u):$(id -g)" "$out" "$log" 2>/dev/null || true
case "${BT_FORMAT:-markdown}" in json) ext=json ;; csv) ext=csv ;; *) ext=md ;; esac
report="$RUNNER_TEMP/bee-trace-report.$ext"
args=(report "$out" --format "${BT_FORMAT:-markdown}" --output "$report" --fail-on "$fail_on")
if [ -n "${BT_CONFIG:-}" ]; then args+=(--config "$BT_CONFIG"); fi
# With GITHUB_ACTIONS=true, `report` writes the step summary, annotations and the
# report-path / events-detected / high-severity-events outputs itself.
rc=0
"$bt" "${args[@]}" || rc=$?
verdict="$("$(dirname "$bt")/python" - "$out" <<'PY'
import json, sys
verdict = "interrupted"  # no summary record: the monitor did not shut down cleanly
with open(sys.argv[1], encoding="utf-8", errors="replace") as f:
    for line in f:
        if '"kind":"summary"' in line.replace(" ", ""):
            try:
                verdict = json.loads(line).get("verdict") or verdict
            except ValueError:
                pass
print(verdict)
PY
)"
echo "bee-trace: verdict: $verdict (report: $report)"
if [ -n "${GITHUB_OUTPUT:-}" ]; then echo "verdict=$verdict" >>"$GITHUB_OUTPUT"; fi
exit "$rc"
