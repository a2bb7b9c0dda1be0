#!/usr/bin/env bash
# The package under a real systemd as PID 1 (packaging/README.md, "Under systemd"): what
# packaging/test-deb.sh cannot check without systemd — postinst enabling and starting the
# service, readiness (Type=notify), the watchdog killing and Restart= restarting a wedged
# process, SIGHUP reload, stop (drain + WAL checkpoint), the upgrade restart onto the new
# binary, the CPU profiler under the sandbox, and the online `systemd-analyze security` score.
#
# Two ways to run it, both as root:
#
#   packaging/test-systemd.sh            on a Debian machine without systemd as PID 1 (CI,
#                                        containers): builds a Debian bookworm root with
#                                        debootstrap under $SDROOT (default
#                                        /var/tmp/sluice-sdroot, kept and reused: about 320 MB,
#                                        ~45 s the first time), boots it with
#                                        `systemd-nspawn --boot --private-network` and runs the
#                                        checks below inside it, then powers it off.
#                                        The root is made by packaging/debian-root.sh (shared
#                                        with the container image's base). Needs:
#                                        debootstrap, systemd-container (installed with
#                                        apt-get when missing), a reachable Debian mirror the
#                                        first time ($MIRROR, default the one in apt's
#                                        sources), and `make deb` having run.
#   packaging/test-systemd.sh --inside DIR
#                                        the checks themselves, on a machine (or VM) that runs
#                                        systemd as PID 1 and does not have sluice installed.
#                                        DIR holds sluice_<v>_<arch>.deb, sluice_<v>+1_<arch>.deb
#                                        and sluice-mock. Installs, upgrades and purges sluice.
#
# The container has its own network namespace (only loopback), so port 3000 and the mock's port
# never collide with anything on the host. Takes about 2 minutes once the root exists (2m40s from
# scratch on 2 cores); most of it is the watchdog check (WatchdogSec=30s) and the stop with a
# stream running past the 30 s grace.
set -euo pipefail

name=test-systemd
# shellcheck source=packaging/testlib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/testlib.sh"
[[ $(id -u) == 0 ]] || fail "run as root"

# ---------------------------------------------------------------------------------------------
# Inside: systemd is PID 1 here.
# ---------------------------------------------------------------------------------------------
inside() {
    local dir=$1
    [[ $(readlink /proc/1/exe) == */systemd ]] || fail "systemd is not PID 1 here"
    local deb1 deb2
    deb1=$(ls "$dir"/sluice_*.deb | grep -v '+1_' | head -n1)
    deb2=$(ls "$dir"/sluice_*+1_*.deb | head -n1)
    [[ -f $deb1 && -f $deb2 && -x $dir/sluice-mock ]] || fail "$dir needs both .debs and sluice-mock"
    for tool in curl jq sqlite3 systemd-analyze; do
        command -v "$tool" >/dev/null || fail "$tool is missing"
    done
    # The root is kept between runs: a run cut short (a timeout, a killed job) leaves its
    # package behind, and every later run would fail here. Start from no package instead.
    if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q installed; then
        step "purging the sluice package an earlier, interrupted run left in this root"
        systemctl stop sluice 2>/dev/null || true
        DEBIAN_FRONTEND=noninteractive dpkg --purge sluice >/dev/null ||
            fail "cannot purge the sluice package an earlier run left"
    fi

    local base=http://127.0.0.1:3000 pwfile=/var/lib/sluice/initial-root-password
    # Global: the EXIT trap runs after this function has returned.
    work=$(mktemp -d)
    mock_pid=''
    # shellcheck disable=SC2317 # called by the trap
    cleanup_inside() {
        local rc=$?
        [[ -n $mock_pid ]] && kill "$mock_pid" 2>/dev/null
        if ((rc != 0)); then
            echo '--- journalctl -u sluice (last 60 lines)' >&2
            journalctl -u sluice --no-pager -n 60 >&2 || true
        fi
        if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q installed; then
            apt-get purge -y -qq sluice >/dev/null 2>&1 || true
        fi
        rm -rf "$work"
        if ((rc == 0)); then
            printf '\ntest-systemd: OK in %ss\n' "$((SECONDS - started))"
        else
            printf '\ntest-systemd: failed after %ss (see above)\n' "$((SECONDS - started))" >&2
        fi
    }
    trap cleanup_inside EXIT

    prop() { systemctl show -P "$1" sluice; }
    journal_since() { journalctl -u sluice --no-pager -o cat --since "@$1"; }
    wait_until() { # wait_until SECONDS DESCRIPTION COMMAND...: polls every 0.5 s
        local limit=$1 what=$2 i
        shift 2
        for ((i = 0; i < limit * 2; i++)); do
            "$@" && return 0
            sleep 0.5
        done
        fail "$what (waited ${limit}s)"
    }
    active() { [[ $(systemctl is-active sluice) == active ]]; }
    ready() { curl -fsS --max-time 2 "$base/readyz" >/dev/null 2>&1; }

    step "install $(basename "$deb1") (postinst enables and starts the unit)"
    local t0 status run_start
    t0=$(date +%s)
    run_start=$t0 # a reused root keeps the journal of earlier runs
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb1" >"$work/install.log" 2>&1 ||
        { cat "$work/install.log"; fail "apt-get install failed"; }
    grep '^sluice:\|Created symlink' "$work/install.log" || true
    check "the unit is not enabled" test "$(systemctl is-enabled sluice)" = enabled
    # Type=notify: the start job (run by postinst) ends only at READY=1, so it is active now.
    check "not active right after the install: $(systemctl is-active sluice)" active
    systemctl show -p NotifyAccess,WatchdogUSec,ActiveState,SubState,MainPID,User,StatusText sluice
    # STATUS= came with READY=1 over the notify socket.
    check "StatusText $(prop StatusText)" test "$(prop StatusText)" = "serving on $base"
    check "NotifyAccess $(prop NotifyAccess)" test "$(prop NotifyAccess)" = main
    check "WatchdogUSec $(prop WatchdogUSec)" test "$(prop WatchdogUSec)" = 30s
    check "core files allowed: $(grep 'core file' "/proc/$(prop MainPID)/limits")" \
        grep -Eq 'Max core file size +0 +0 ' "/proc/$(prop MainPID)/limits"
    # LimitNOFILE=65536, or as much of it as this (container's) manager may give.
    local nofile
    nofile=$(awk '/^Max open files/ { print ($5 < 65536 ? $5 : 65536) }' /proc/1/limits)
    check "LimitNOFILE $(prop LimitNOFILE)" test "$(prop LimitNOFILE)" = 65536
    check "open files not limited to $nofile: $(grep 'open files' "/proc/$(prop MainPID)/limits")" \
        grep -Eq "Max open files +$nofile +$nofile " "/proc/$(prop MainPID)/limits"
    check "SubState $(prop SubState)" test "$(prop SubState)" = running
    local pid1
    pid1=$(prop MainPID)
    check "the service does not run as sluice" test "$(ps -o user= -p "$pid1")" = sluice
    check "/readyz does not answer" ready

    step "the sandbox is in effect (not silently dropped by the container)"
    local st
    st=$(</proc/"$pid1"/status)
    grep -E '^(Uid|CapEff|CapBnd|NoNewPrivs|Seccomp):' <<<"$st"
    check "no seccomp filter" grep -Eq '^Seccomp:[[:space:]]+2$' <<<"$st"
    check "NoNewPrivs is off" grep -Eq '^NoNewPrivs:[[:space:]]+1$' <<<"$st"
    check "the service has capabilities" grep -Eq '^CapEff:[[:space:]]+0+$' <<<"$st"
    # The system-call filter leaves a thread free to lower its own priority: the WAL checkpoint
    # thread runs at SCHED_IDLE (policy 5, the 41st field of its stat; the 39th after the name).
    local ckpt policy
    ckpt=$(grep -lx 'sqlite-checkpoi' /proc/"$pid1"/task/*/comm | head -n1) || true
    policy=$(sed 's/^.*) //' "${ckpt%/comm}/stat" 2>/dev/null | awk '{ print $39 }') || true
    check "the checkpoint thread's scheduling policy is '$policy', not SCHED_IDLE (5)" test "$policy" = 5
    echo "uid_map: $(tr -s ' ' </proc/"$pid1"/uid_map | tr '\n' ';')"
    check "no private user namespace (PrivateUsers=)" \
        test "$(readlink /proc/"$pid1"/ns/user)" != "$(readlink /proc/1/ns/user)"
    grep -E ' /proc | / ' /proc/"$pid1"/mountinfo | cut -d' ' -f5,6,9-
    check "/proc is not hidepid=invisible,subset=pid" \
        grep -Eq ' /proc .*(hidepid=invisible|hidepid=4).*subset=pid|subset=pid.*hidepid=(invisible|4)' /proc/"$pid1"/mountinfo
    check "/ is writable (ProtectSystem=strict)" grep -Eq '^[^ ]+ [^ ]+ [^ ]+ [^ ]+ / ro,' /proc/"$pid1"/mountinfo

    step "journal: readiness and the password file, never the password"
    # This start only (a reused root keeps the journal of earlier runs).
    journalctl --no-pager -o cat _SYSTEMD_INVOCATION_ID="$(prop InvocationID)" >"$work/journal1"
    grep -E 'starting|listening on|password|profiler' "$work/journal1"
    # The connection cap (max_connections 4096) fits the open-file limit: not lowered.
    refute "the connection cap was lowered" grep -q 'max_connections .* lowered' "$work/journal1"
    check "the journal does not name the password file" \
        grep -q "created the root account; its password is in $pwfile" "$work/journal1"
    check "$pwfile is not 0600 sluice" test "$(stat -c '%a %U' "$pwfile")" = "600 sluice"
    local password
    password=$(<"$pwfile")
    check "the password file is empty" test -n "$password"
    refute "the password is in the journal" grep -qF -- "$password" <(journalctl --no-pager -o cat)
    refute "the password is in a log file" grep -rqF -- "$password" /var/log/sluice
    # systemd logs "Started" only once READY=1 arrived.
    check "systemd did not log the start" \
        grep -q 'Started sluice.service' <(journalctl --no-pager -o cat --since "@$t0" _PID=1)

    step "relayed request through a channel to sluice-mock"
    "$dir/sluice-mock" --listen 127.0.0.1:0 >"$work/mock.log" 2>&1 &
    mock_pid=$!
    wait_until 10 "sluice-mock did not start" grep -q 'listening on http://' "$work/mock.log"
    local mock_url token key
    mock_url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/mock.log" | head -n1)
    # By name, not address: the upstream's name is resolved (getaddrinfo) inside the sandbox.
    mock_url=${mock_url/127.0.0.1/localhost}
    set_up_relay test-systemd '["gpt-x", "mock-slow-3000", "mock-drip-500"]'
    status=$(chat)
    check "relayed chat answered $status: $(cat "$work/chat.json")" test "$status" = 200
    check "not a chat completion: $(cat "$work/chat.json")" \
        jq -e '.object == "chat.completion" and .usage.total_tokens > 0' "$work/chat.json" >/dev/null
    jq -c '{object, model, usage}' "$work/chat.json"

    step "CPU profiler under the sandbox (SIGPROF timer, /proc limited to the process)"
    # CPU load while recording (sign-ins: each one hashes the password with argon2), so that
    # samples prove the SIGPROF timer fires in the sandbox.
    local end=$((SECONDS + 3)) loaders=()
    jq -n --arg p "$password" '{username: "root", password: $p}' >"$work/login.json"
    for _ in 1 2; do
        (while ((SECONDS < end)); do
            curl -s -o /dev/null -H 'content-type: application/json' --data "@$work/login.json" \
                "$base/api/auth/login"
        done) &
        loaders+=($!)
    done
    local profile pname samples
    profile=$(api POST /api/profiles '{"seconds": 2}') || fail "POST /api/profiles failed"
    wait "${loaders[@]}"
    echo "$profile"
    pname=$(jq -r '.name // empty' <<<"$profile")
    check "no profile name in the answer" test -n "$pname"
    check "the profile's .pb is empty" test -s "/var/lib/sluice/pprof/$pname.pb"
    check "the profile's .svg is missing" test -s "/var/lib/sluice/pprof/$pname.svg"
    jq -c . "/var/lib/sluice/pprof/$pname.json"
    samples=$(jq -r .samples "/var/lib/sluice/pprof/$pname.json")
    check "the profile has no samples (SIGPROF never fired?)" test "$samples" -gt 0
    curl -fsS --max-time 10 -H "authorization: Bearer $token" -o "$work/cpu.svg" \
        "$base/api/profiles/$pname.svg" || fail "GET the profile's svg failed"
    # Frames have names: the package keeps the symbol table (--no-strip).
    check "the flame graph names no argon2 frame" grep -q argon2 "$work/cpu.svg"
    # The automatic monitor (CPU time from /proc/<pid>/stat, under ProcSubset=pid) takes its
    # first sample 30 s after the start: checked after the watchdog step, below.

    step "systemctl reload (SIGHUP: a new log file)"
    local before after
    before=$(ls /var/log/sluice/sluice-*.log | wc -l)
    ls -l /var/log/sluice
    sleep 1.1 # file names carry the second they were opened
    t0=$(date +%s)
    systemctl reload sluice
    # Counted at each poll: a `test "$(ls …)"` argument is counted once, when wait_until is
    # called, right after `systemctl reload` returns and before the log thread (which rests
    # between batches) has opened the new file.
    more_log_files() { (($(ls /var/log/sluice/sluice-*.log | wc -l) > before)); }
    wait_until 10 "no new log file after the reload" more_log_files
    after=$(ls /var/log/sluice/sluice-*.log | wc -l)
    ls -l /var/log/sluice
    check "the reload is not in the journal" grep -q 'SIGHUP received' <(journal_since "$t0")
    check "the reload changed the main PID" test "$(prop MainPID)" = "$pid1"
    echo "log files: $before -> $after"

    step "Restart=on-failure: SIGKILL"
    local restarts
    restarts=$(prop NRestarts)
    kill -KILL "$pid1"
    wait_until 30 "not restarted after SIGKILL" \
        eval '[[ $(prop NRestarts) -gt $restarts && $(prop MainPID) != 0 && $(prop MainPID) != $pid1 ]] && active'
    pid1=$(prop MainPID)
    wait_until 20 "/readyz after the restart" ready
    echo "restarted: MainPID $pid1, NRestarts $(prop NRestarts)"

    step "watchdog: a stopped process is killed and restarted (WatchdogSec=30s)"
    restarts=$(prop NRestarts)
    t0=$(date +%s)
    kill -STOP "$pid1"
    wait_until 90 "the watchdog did not restart the stopped process" \
        eval '[[ $(prop NRestarts) -gt $restarts && $(prop MainPID) != 0 && $(prop MainPID) != $pid1 ]] && active'
    echo "restarted after $(($(date +%s) - t0))s: MainPID $(prop MainPID), NRestarts $(prop NRestarts)"
    journalctl --no-pager -o cat --since "@$t0" _PID=1 | grep -i 'sluice' | head -n 8
    check "systemd did not log a watchdog timeout" \
        grep -qi 'watchdog timeout' <(journalctl --no-pager -o cat --since "@$t0" _PID=1)
    pid1=$(prop MainPID)
    wait_until 20 "/readyz after the watchdog restart" ready
    # It is fed: still the same process after more than one period.
    sleep 35
    check "the watchdog killed a healthy process" test "$(prop MainPID)" = "$pid1"
    refute "a second watchdog timeout" test "$(journalctl --no-pager -o cat --since "@$t0" _PID=1 |
        grep -ci 'watchdog timeout')" -gt 1

    step "the automatic CPU monitor samples /proc under ProcSubset=pid"
    api GET /api/profiles | jq -c .status
    check "the CPU monitor took no sample" \
        test "$(api GET /api/profiles | jq -r .status.last_sample_at)" != null
    check "the profiler reports an error" \
        test "$(api GET /api/profiles | jq -r .status.last_error)" = null

    step "systemctl stop: drain, cut, checkpoint; the copied database has the charges"
    # A request in flight (the mock answers after 3 s) when the stop begins is answered; a
    # stream far longer than the grace (200 words, one every 0.5 s) is cut when the grace
    # (shutdown_grace_secs, 30 s) ends, charged for what it sent, and the stop still ends well
    # inside TimeoutStopSec.
    local slow_pid stream_pid stop_secs grace timeout_stop
    grace=$(sed -n 's/^shutdown_grace_secs = \([0-9]*\)/\1/p' /etc/sluice/sluice.toml)
    timeout_stop=$(systemctl show -P TimeoutStopUSec sluice)
    chat mock-slow-3000 "$work/slow.json" >"$work/slow.status" &
    slow_pid=$!
    curl -sS -N --max-time 120 -o "$work/stream.txt" -D "$work/stream.headers" \
        -H "authorization: Bearer $key" -H 'content-type: application/json' \
        --data '{"model":"mock-drip-500","stream":true,"max_tokens":200,"messages":[{"role":"user","content":"hello"}]}' \
        "$base/v1/chat/completions" &
    stream_pid=$!
    wait_until 10 "the stream did not start" grep -qs "data: " "$work/stream.txt"
    t0=$(date +%s)
    systemctl stop sluice
    stop_secs=$(($(date +%s) - t0))
    wait "$slow_pid" || true
    wait "$stream_pid" || true
    echo "stop took ${stop_secs}s (grace ${grace}s, TimeoutStopSec ${timeout_stop}); the request in flight got $(cat "$work/slow.status")"
    check "the request in flight was not answered: $(cat "$work/slow.status") $(cat "$work/slow.json")" \
        test "$(cat "$work/slow.status")" = 200
    check "not inactive after stop: $(systemctl is-active sluice)" \
        test "$(systemctl is-active sluice)" = inactive
    check "the stop was not clean: Result=$(prop Result)" test "$(prop Result)" = success
    check "the stop took ${stop_secs}s: not one grace (${grace}s) and a little" \
        test "$stop_secs" -ge "$grace" -a "$stop_secs" -le $((grace + 14))
    tail -n 2 "$work/stream.txt"
    check "the cut stream did not end with the shutdown's error event" \
        grep -q '"code":"shutting_down"' <(tail -n 2 "$work/stream.txt")
    journal_since "$t0" | tail -n 6
    check "no cut in the journal" grep -q 'shutdown grace of .* is over: cutting 1 relays' <(journal_since "$t0")
    check "no checkpoint at stop" grep -q 'stopped; the database is checkpointed' <(journal_since "$t0")
    if [[ -e /var/lib/sluice/sluice.db-wal ]]; then
        check "the WAL is not empty after stop" test ! -s /var/lib/sluice/sluice.db-wal
    fi
    cp /var/lib/sluice/sluice.db "$work/copy.db"
    local rows words cut
    sqlite3 "$work/copy.db" "SELECT model, status, prompt_tokens, completion_tokens, quota, content FROM logs WHERE key_name = 'test-systemd'"
    rows=$(sqlite3 "$work/copy.db" "SELECT count(DISTINCT model) FROM logs WHERE key_name = 'test-systemd' AND model IN ('gpt-x', 'mock-slow-3000') AND prompt_tokens + completion_tokens > 0")
    check "the copied database lacks a charge row (both models: $rows)" test "$rows" = 2
    # The cut stream: one row, status 503, 'cut by shutdown', charged for the words it sent.
    words=$(grep -o hello "$work/stream.txt" | wc -l)
    cut=$(sqlite3 "$work/copy.db" "SELECT count(*) FROM logs WHERE key_name = 'test-systemd' AND model = 'mock-drip-500' AND type = 2 AND status = 503 AND content LIKE 'cut by shutdown%' AND completion_tokens = $words AND quota = prompt_tokens + completion_tokens")
    check "no row for the cut stream charged for its $words words" test "$cut" = 1

    step "upgrade to $(basename "$deb2") (postinst restarts the service on the new binary)"
    systemctl start sluice
    pid1=$(prop MainPID)
    t0=$(date +%s)
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$deb2" >"$work/upgrade.log" 2>&1 ||
        { cat "$work/upgrade.log"; fail "the upgrade failed"; }
    local pid2
    pid2=$(prop MainPID)
    echo "version $(dpkg-query -W -f='${Version}' sluice), MainPID $pid1 -> $pid2"
    check "the upgrade did not install +1" grep -q '+1$' <<<"$(dpkg-query -W -f='${Version}' sluice)"
    check "not active after the upgrade" active
    check "the upgrade did not restart the service" test "$pid2" != "$pid1"
    check "the service runs a deleted (old) binary" \
        test "$(readlink "/proc/$pid2/exe")" = /usr/bin/sluice
    check "the upgrade made a new root account" \
        test "$(journal_since "$t0" | grep -c 'created the root account')" = 0
    wait_until 20 "/readyz after the upgrade" ready
    status=$(chat)
    check "after the upgrade the chat answered $status" test "$status" = 200

    step "systemd-analyze security sluice (the running unit)"
    systemd-analyze security --no-pager sluice >"$work/security.log" 2>&1 || true
    grep -v '^✓' "$work/security.log" || true
    local exposure
    exposure=$(sed -n 's/.*Overall exposure level for sluice.service: \([0-9.]*\).*/\1/p' "$work/security.log")
    check "no exposure level" test -n "$exposure"
    check "exposure $exposure is above 2.0" awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'
    echo "exposure: $exposure"

    step "nothing in the journal about the sandbox getting in the way"
    journalctl -u sluice --no-pager -o cat --since "@$run_start" >"$work/journal-all"
    # Expected: the kills above, and the stop that cut the long stream.
    if grep -E '^\[(WARN|ERR)' "$work/journal-all" | grep -v 'SIGKILL\|SIGSTOP\|shutdown grace of [0-9]* s is over'; then
        fail "the service logged warnings or errors (above)"
    fi
    grep -iE 'operation not permitted|permission denied|EPERM|EACCES|seccomp' "$work/journal-all" &&
        fail "the sandbox refused something (above)"

    step "purge"
    kill "$mock_pid" 2>/dev/null || true
    mock_pid=''
    DEBIAN_FRONTEND=noninteractive apt-get purge -y -qq sluice >"$work/purge.log" 2>&1 ||
        { cat "$work/purge.log"; fail "purge failed"; }
    grep '^sluice:' "$work/purge.log" || true
    check "still active after purge" test "$(systemctl is-active sluice)" != active
    for path in /var/lib/sluice /var/log/sluice /etc/sluice /usr/bin/sluice \
        /lib/systemd/system/sluice.service /etc/systemd/system/multi-user.target.wants/sluice.service; do
        check "$path is left after purge" test ! -e "$path" -a ! -L "$path"
    done
    refute "the sluice user is left after purge" getent passwd sluice
}

if [[ ${1:-} == --inside ]]; then
    inside "${2:?--inside needs the directory with the .debs and sluice-mock}"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Outside: build (once) and boot a Debian root with systemd-nspawn, run the checks in it.
# ---------------------------------------------------------------------------------------------
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
SDROOT=${SDROOT:-/var/tmp/sluice-sdroot}
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
deb=target/debian/sluice_${version}_${arch}.deb
[[ -f $deb ]] || fail "$deb is missing: run make deb"
[[ -x target/release/sluice-mock ]] || fail "target/release/sluice-mock is missing: run make release"

if ! command -v systemd-nspawn >/dev/null; then
    step "installing systemd-container"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container >/dev/null; }
fi

# The root is shared with the container image's base (packaging/image.sh): made once, kept.
packaging/debian-root.sh "$SDROOT"

step "copying the packages, sluice-mock and this script into $SDROOT/root/sdtest"
rm -rf "$SDROOT/root/sdtest"
mkdir -p "$SDROOT/root/sdtest"
cp "$deb" target/release/sluice-mock packaging/test-systemd.sh packaging/testlib.sh "$SDROOT/root/sdtest/"
# The upgrade target: the same binary under a version that sorts after $version. cargo-deb
# deletes the package's other .debs in target/debian when it writes one, so $deb is put back.
cargo deb --no-build --no-strip --deb-version "${version}+1" \
    --output "$SDROOT/root/sdtest/sluice_${version}+1_${arch}.deb" >/dev/null
[[ -f $deb ]] || cp "$SDROOT/root/sdtest/$(basename "$deb")" "$deb"

step "booting $SDROOT with systemd-nspawn"
nspawn_log=$(mktemp)
# --keep-unit --register=no: no systemd (and no machined) on the host to ask for a scope.
systemd-nspawn --quiet -D "$SDROOT" --boot --private-network --register=no --keep-unit \
    --console=pipe >"$nspawn_log" 2>&1 </dev/null &
nspawn_pid=$!
leader=''
# shellcheck disable=SC2317 # called by the trap
cleanup() {
    local rc=$?
    if [[ -n $leader ]] && kill -0 "$leader" 2>/dev/null; then
        # SIGRTMIN+4 to the container's PID 1 powers it off cleanly.
        kill -s SIGRTMIN+4 "$leader" 2>/dev/null || true
    fi
    for ((i = 0; i < 100; i++)); do
        kill -0 "$nspawn_pid" 2>/dev/null || break
        sleep 0.2
    done
    kill -KILL "$nspawn_pid" 2>/dev/null || true
    rm -f "$nspawn_log"
    exit "$rc"
}
trap cleanup EXIT
for ((i = 0; i < 100; i++)); do
    leader=$(pgrep -P "$nspawn_pid" -x systemd || true)
    [[ -n $leader ]] && break
    kill -0 "$nspawn_pid" 2>/dev/null || { cat "$nspawn_log"; fail "systemd-nspawn exited"; }
    sleep 0.2
done
[[ -n $leader ]] || { cat "$nspawn_log"; fail "no systemd in the container"; }
in_container() { nsenter -t "$leader" -a "$@"; }
# systemctl cannot wait for a manager whose bus socket is not there yet (a busy host boots the
# container slowly): until it is, it fails at once with "Failed to connect to bus".
for ((i = 0; i < 120; i++)); do
    state=$(in_container timeout 60 systemctl is-system-running --wait 2>&1 || true)
    [[ $state == *"Failed to connect to bus"* ]] || break
    sleep 0.5
done
echo "container (PID 1 = host pid $leader): $state"
[[ $state == running || $state == degraded ]] || fail "the container did not boot: $state"
[[ $state == degraded ]] && in_container systemctl --failed --no-pager
in_container /root/sdtest/test-systemd.sh --inside /root/sdtest
