#!/usr/bin/env bash
# Installs bee-trace into a venv for the action, without a compiler when possible. Prints the
# venv's bee-trace path last. Where the wheel comes from (BT_INSTALL, default auto):
#   dist   - a wheel shipped in the action's dist/ (release tags carry one, built by `pip wheel .`)
#   pypi   - `pip install bee-trace==VERSION`, VERSION = the action's own pyproject.toml version
#   source - `make deps bpf` in the action's checkout (installs clang/bpftool), then `pip wheel .`
#   auto   - dist, else pypi, else source
set -euo pipefail
action_dir="${GITHUB_ACTION_PATH:?GITHUB_ACTION_PATH is not set}"
venv="${BT_VENV:-$RUNNER_TEMP/bee-trace-venv}"
mode="${BT_INSTALL:-auto}"
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
log() { echo "bee-trace: $*" >&2; }

# Runtime needs: libbpf.so.1 (Debian/Ubuntu package libbpf1) and Python >= 3.11 with venv.
if ! ldconfig -p 2>/dev/null | grep -q 'libbpf\.so\.1 '; then
  log "installing libbpf1 (libbpf.so.1)"
  $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq libbpf1 >&2
fi
py="${BT_PYTHON:-python3}"
if ! "$py" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "::error title=bee-trace::$py is older than 3.11 (use actions/setup-python before bee-trace)" >&2
  exit 1
fi
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" >&2 || {
    log "python3 -m venv failed; installing python3-venv"
    $SUDO apt-get update -qq && $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >&2
    "$py" -m venv "$venv" >&2
  }
fi
pip=("$venv/bin/python" -m pip install -q --disable-pip-version-check)
version="$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$action_dir/pyproject.toml" | head -1)"

from_dist() {
  local whl
  whl="$(ls -1 "$action_dir"/dist/bee_trace-"$version"-*.whl 2>/dev/null | tail -1)"
  [ -n "$whl" ] || return 1
  log "installing $whl"
  "${pip[@]}" "$whl" >&2
}
from_pypi() {
  log "installing bee-trace==$version from the package index"
  "${pip[@]}" "bee-trace==$version" >&2
}
from_source() {
  log "building from source (installs clang-19, bpftool, libbpf-dev: slow)"
  $SUDO make -C "$action_dir" apt bpf >&2
  local out; out="$(mktemp -d)"
  "$venv/bin/python" -m pip wheel -q --no-deps -w "$out" "$action_dir" >&2
  "${pip[@]}" "$out"/bee_trace-*.whl >&2
}

case "$mode" in
  dist) from_dist ;;
  pypi) from_pypi ;;
  source) from_source ;;
  auto) from_dist || from_pypi || from_source ;;
  *) echo "::error title=bee-trace::install must be auto, dist, pypi or source (got $mode)" >&2; exit 1 ;;
esac
echo "$venv/bin/bee-trace"
