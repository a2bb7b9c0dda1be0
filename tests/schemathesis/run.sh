#!/usr/bin/env bash
# Property-based API tests: schemathesis (pinned in requirements.txt) runs every check it has
# (all are on by default, as `--checks all`; the flag is not passed because on the command line
# it would override the per-operation exceptions in schemathesis.toml) against the OpenAPI document a real debug binary serves, signed in as an
# admin. It finds operations that reject input their schema allows, accept input it forbids,
# answer 5xx, or answer outside their documented statuses, headers and schemas.
#
# The server and schemathesis run in a network namespace of their own with only loopback up:
# generated channel and receiver URLs (then tested by the run) cannot reach any other host.
#
#   tests/schemathesis/run.sh            (make test-schema; part of make test)
#   SCHEMATHESIS_MAX_EXAMPLES=50 tests/schemathesis/run.sh   (a longer run)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
target=${CARGO_TARGET_DIR:-$root/target}
bin=${SLUICE_BIN:-$target/debug/sluice}
venv=${SCHEMATHESIS_VENV:-$target/schemathesis-venv}
examples=${SCHEMATHESIS_MAX_EXAMPLES:-15}

if [[ -z ${SLUICE_SCHEMA_NETNS:-} ]]; then
  [[ -x $bin ]] || { echo "no sluice binary at $bin: run cargo build --bins first" >&2; exit 1; }
  # The tool, once per requirements change (the registry is reachable only out here).
  if ! cmp -s "$here/requirements.txt" "$venv/.requirements" 2>/dev/null; then
    python3 -c 'import ensurepip' 2>/dev/null || {
      echo "python3 venv support is missing: apt-get install -y python3-venv" >&2
      exit 1
    }
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
    cp "$here/requirements.txt" "$venv/.requirements"
  fi
  command -v unshare >/dev/null && command -v ip >/dev/null || {
    echo "unshare and ip are needed to run isolated: apt-get install -y util-linux iproute2" >&2
    exit 1
  }
  # As root a plain network namespace; otherwise one inside a user namespace (mapped to root).
  if [[ $EUID -eq 0 ]]; then ns=(unshare --net); else ns=(unshare --map-root-user --net); fi
  exec "${ns[@]}" env SLUICE_SCHEMA_NETNS=1 SLUICE_BIN="$bin" SCHEMATHESIS_VENV="$venv" "$0" "$@"
fi

ip link set lo up
work=$(mktemp -d)
pid=
cleanup() {
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    # A stop that hangs must fail the run, not hang it.
    timeout 30 tail --pid="$pid" -f /dev/null || { kill -KILL "$pid"; echo "sluice did not stop within 30 s" >&2; }
  fi
  rm -rf "$work"
}
trap cleanup EXIT

base=http://127.0.0.1:3000
SLUICE_DATA_DIR="$work/data" SLUICE_LISTEN=127.0.0.1:3000 SLUICE_LOG_FILES=false \
  SLUICE_ROOT_PASSWORD=schemathesis-root-pw SLUICE_SHUTDOWN_GRACE_SECS=2 \
  "$bin" serve >"$work/server.log" 2>&1 &
pid=$!

# Sign-in set-up (Python, from the venv): an admin (not root, so generated requests cannot
# change root) with a personal access token.
SLUICE_TOKEN=$("$venv/bin/python" "$here/setup.py" "$base" "$pid")
export SLUICE_TOKEN

set +e
# Its cache (.schemathesis/) goes in the scratch directory, not the work tree.
cd "$work"
"$venv/bin/schemathesis" --config-file "$here/schemathesis.toml" run "$base/api/openapi.json" \
  --max-examples "$examples" \
  --phases examples,coverage,fuzzing \
  --request-timeout 20 \
  --seed "${SCHEMATHESIS_SEED:-1}" \
  --suppress-health-check all \
  --exclude-operation-id createAccessToken \
  --exclude-operation-id startProfile \
  --exclude-path-regex '^/(v1|dashboard)/' \
  --exclude-path /metrics \
  --output-truncate false \
  "$@"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "--- last server log lines ---" >&2
  tail -n 40 "$work/server.log" >&2
fi
exit $rc
