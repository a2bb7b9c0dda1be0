#!/usr/bin/env bash
# The container image, run (packaging/README.md, "Container image"): builds it with
# packaging/image.sh, then starts it with a named volume, checks the user, the HEALTHCHECK and
# the files' modes, relays a chat completion to sluice-mock, restarts the container and finds
# the call's row still in the volume. Run as root after `make release` (CI: after
# test-systemd.sh, whose Debian root it imports as the image's base). Leaves the images
# (localhost/sluice-base:bookworm, localhost/sluice:<version>) for reuse; removes the rest.
# On 2 cores: 7 s with the root already made (importing the base, building, the checks), 2-3 s
# when the images exist; a root from scratch adds its debootstrap (45 s to 2 min).
set -euo pipefail

name=test-image
# shellcheck source=packaging/testlib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/testlib.sh"
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
[[ $(id -u) == 0 ]] || fail "run as root"
for tool in curl jq; do
    command -v "$tool" >/dev/null || fail "$tool is missing"
done
if ! command -v podman >/dev/null || ! command -v runc >/dev/null; then
    step "installing podman and runc"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc >/dev/null; }
fi
[[ -x target/release/sluice-mock ]] || fail "target/release/sluice-mock is missing: run make release"
podman_env
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
image=localhost/sluice:$version

work=$(mktemp -d)
ctr=sluice-test-$$
vol=sluice-test-data-$$
mock_pid=''
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$?
    [[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null
    if ((rc != 0)) && podman container exists "$ctr" 2>/dev/null; then
        echo "--- podman logs $ctr (last 40 lines)" >&2
        podman logs --tail 40 "$ctr" >&2 || true
    fi
    podman rm -f -t 0 "$ctr" >/dev/null 2>&1 || true
    podman volume rm -f "$vol" >/dev/null 2>&1 || true
    rm -rf "$work"
    if ((rc == 0)); then
        printf '\ntest-image: OK in %ss\n' "$((SECONDS - started))"
    else
        printf '\ntest-image: failed after %ss (see above)\n' "$((SECONDS - started))" >&2
    fi
}
trap cleanup EXIT

packaging/image.sh

step "the image: user, volume, HEALTHCHECK"
cfg=$(podman image inspect "$image" | jq '.[0] | .Config + {Healthcheck}')
jq -c '{User, Volumes, Healthcheck, Env, Entrypoint, Cmd}' <<<"$cfg"
check "not run as sluice: $(jq -r .User <<<"$cfg")" test "$(jq -r .User <<<"$cfg")" = sluice:sluice
check "no volume at /var/lib/sluice" jq -e '.Volumes["/var/lib/sluice"] != null' <<<"$cfg" >/dev/null
check "no HEALTHCHECK running sluice healthcheck" \
    jq -e '.Healthcheck.Test == ["CMD", "/usr/bin/sluice", "healthcheck"]' <<<"$cfg" >/dev/null

# The container shares the host's network (no bridge to set up on a CI host): sluice on a free
# loopback port, the mock on another.
listening() { # listening PORT: something listens on it (IPv4 or IPv6)
    local hex
    hex=$(printf ':%04X ' "$1")
    awk -v h="$hex" '$4 == "0A" && index($2 " ", h) { found = 1 } END { exit !found }' \
        /proc/net/tcp /proc/net/tcp6
}
port=''
for _ in $(seq 20); do
    p=$((20000 + RANDOM % 20000))
    listening "$p" || { port=$p; break; }
done
check "no free port found" test -n "$port"
base=http://127.0.0.1:$port
target/release/sluice-mock --listen 127.0.0.1:0 >"$work/mock.log" 2>&1 &
mock_pid=$!
for _ in $(seq 50); do
    grep -q 'listening on http://' "$work/mock.log" && break
    sleep 0.2
done
mock_url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/mock.log" | head -n1)
check "sluice-mock did not start" test -n "$mock_url"

password=test-image-root-password
ready() { # ready SECONDS: the image's own HEALTHCHECK passes within that long
    local i
    for ((i = 0; i < $1 * 4; i++)); do
        podman healthcheck run "$ctr" >/dev/null 2>&1 && return 0
        sleep 0.25
    done
    return 1
}

step "podman run $image (volume $vol, port $port)"
podman volume create "$vol" >/dev/null
# podman schedules HEALTHCHECK runs with systemd timers; without systemd as PID 1 it cannot
# (and says so on stderr at every start and stop: kept in podman.err), so the check is run by
# hand here.
run() {
    podman run -d --name "$ctr" --network host --stop-timeout 50 -v "$vol:/var/lib/sluice" \
        -e SLUICE_LISTEN="127.0.0.1:$port" -e SLUICE_ROOT_PASSWORD="$password" "$image" \
        >/dev/null 2>>"$work/podman.err" || { cat "$work/podman.err"; fail "podman run failed"; }
}
t0=$SECONDS
run
check "the HEALTHCHECK did not pass within 30 s" ready 30
echo "healthy after $((SECONDS - t0))s"
uid=$(podman exec "$ctr" sh -c 'grep ^Uid: /proc/1/status' | awk '{print $2}')
check "sluice runs as uid $uid, not 10001" test "$uid" = 10001
mnt=$(podman volume inspect --format '{{.Mountpoint}}' "$vol")
ls -ln "$mnt"
check "the database is not 0600 uid 10001: $(stat -c '%a %u' "$mnt/sluice.db")" \
    test "$(stat -c '%a %u' "$mnt/sluice.db")" = "600 10001"

step "a chat completion relayed to sluice-mock"
set_up_relay test-image '["gpt-x"]'
status=$(chat)
check "relayed chat answered $status: $(cat "$work/chat.json")" test "$status" = 200
jq -c '{object, model, usage}' "$work/chat.json"
rid_rows() { api GET "/api/log?type=consume&token_name=test-image" | jq '.items | length'; }
check "no row for the call" test "$(rid_rows)" = 1

step "restart: a clean stop, a new container on the same volume, the row still there"
t0=$SECONDS
podman stop "$ctr" >/dev/null 2>>"$work/podman.err" || { cat "$work/podman.err"; fail "podman stop failed"; }
echo "stopped in $((SECONDS - t0))s"
check "the stop was not clean: exit code $(podman inspect --format '{{.State.ExitCode}}' "$ctr")" \
    test "$(podman inspect --format '{{.State.ExitCode}}' "$ctr")" = 0
check "no checkpoint at stop" grep -q 'stopped; the database is checkpointed' <(podman logs "$ctr" 2>&1)
podman logs "$ctr" >"$work/first.log" 2>&1
# A new container (as after an upgrade to a new image): only the volume carries the data over.
podman rm "$ctr" >/dev/null 2>>"$work/podman.err"
run
check "not healthy again within 30 s of the restart" ready 30
# The access token lives in the database too: the same one works after the restart.
check "the row is gone after the restart" test "$(rid_rows)" = 1
status=$(chat)
check "after the restart the chat answered $status" test "$status" = 200
check "the second call has no row" test "$(rid_rows)" = 2
podman logs "$ctr" >>"$work/first.log" 2>&1
refute "the password reached the container's log" grep -qF -- "$password" "$work/first.log"
