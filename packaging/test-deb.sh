#!/usr/bin/env bash
# The package test (make test-deb): checks the .deb's contents and metadata, runs lintian,
# installs it, runs the installed binary as the sluice user with the packaged config and relays
# one request to the mock upstream, upgrades to a newer build, removes and purges, and checks
# what is left at each step. The unit is checked with systemd-analyze (verify, security).
#
# Runs as root on a Debian machine without needing systemd as PID 1; it installs and purges the
# sluice package and leaves the machine as it found it. Expects `make deb` to have run (the
# release binaries, target/man/*); `make test-deb` does that first.
set -euo pipefail
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."

name=test-deb
# shellcheck source=packaging/testlib.sh
source packaging/testlib.sh

[[ $(id -u) == 0 ]] || fail "run as root: the test installs and purges the package"

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
arch=$(dpkg --print-architecture)
deb=target/debian/sluice_${version}_${arch}.deb
# Sorts after $version, as a next release would.
next_version=${version}+test1
[[ -f $deb ]] || fail "$deb is missing: run make deb"
[[ -x target/release/sluice-mock ]] || fail "target/release/sluice-mock is missing: run make release"

apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
}
missing=()
command -v lintian >/dev/null || missing+=(lintian)
command -v jq >/dev/null || missing+=(jq)
command -v curl >/dev/null || missing+=(curl)
command -v systemd-analyze >/dev/null || missing+=(systemd)
if ((${#missing[@]})); then
    step "installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

work=$(mktemp -d)
server_pid='' mock_pid=''
stop_pid() { # stop_pid PID: SIGTERM, then wait up to 30 s for it to exit
    local pid=$1 i
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < 300; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    return 1
}
cleanup() {
    local rc=$?
    [[ -n $server_pid ]] && stop_pid "$server_pid"
    [[ -n $mock_pid ]] && stop_pid "$mock_pid"
    if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q installed; then
        dpkg -P sluice >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
    if ((rc == 0)); then
        printf '\ntest-deb: OK in %ss\n' "$((SECONDS - started))"
    else
        printf '\ntest-deb: failed after %ss (see above)\n' "$((SECONDS - started))" >&2
    fi
}
trap cleanup EXIT

if dpkg-query -W -f='${Status}' sluice 2>/dev/null | grep -q installed; then
    fail "sluice is already installed on this machine; purge it first (dpkg -P sluice)"
fi

step "contents of $deb"
dpkg-deb -c "$deb" | awk '{print $NF}' | sed 's|^\./|/|' >"$work/contents"
for path in /usr/bin/sluice /etc/sluice/sluice.toml /usr/lib/systemd/system/sluice.service \
    /usr/share/man/man1/sluice.1.gz /usr/share/doc/sluice/copyright \
    /usr/share/doc/sluice/changelog.gz /usr/share/doc/sluice/operations.md \
    /usr/share/doc/sluice/README.md /usr/share/lintian/overrides/sluice; do
    check "$path is not in the package" grep -qx -- "$path" "$work/contents"
done
dpkg-deb -x "$deb" "$work/root"
readelf -S "$work/root/usr/bin/sluice" >"$work/sections"
refute "the binary still has debug info" grep -q '\.debug_info' "$work/sections"
check "the config does not listen on 127.0.0.1:3000" \
    grep -qx 'listen = "127.0.0.1:3000"' "$work/root/etc/sluice/sluice.toml"
check "the config does not keep data in /var/lib/sluice" \
    grep -qx 'data_dir = "/var/lib/sluice"' "$work/root/etc/sluice/sluice.toml"
# Both carry the version by hand: a release that bumps Cargo.toml must bump them too.
check "packaging/changelog's newest entry is not $version" \
    grep -q "^sluice ($version) " <(zcat "$work/root/usr/share/doc/sluice/changelog.gz" | head -n1)
check "the man page does not say sluice $version" \
    grep -q "^\.TH SLUICE 1 .* \"sluice $version\"" <(zcat "$work/root/usr/share/man/man1/sluice.1.gz")
if command -v man >/dev/null; then
    LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$work/root/usr/share/man/man1/sluice.1.gz" \
        2>"$work/man.log" >/dev/null
    check "the man page has warnings: $(cat "$work/man.log")" test ! -s "$work/man.log"
fi

step "metadata"
field() { dpkg-deb -f "$deb" "$1"; }
check "Package" test "$(field Package)" = sluice
check "Version $(field Version)" test "$(field Version)" = "$version"
check "Architecture" test "$(field Architecture)" = "$arch"
check "Section" test "$(field Section)" = net
check "Priority" test "$(field Priority)" = optional
check "Maintainer" test -n "$(field Maintainer)"
check "Depends lacks adduser: $(field Depends)" grep -q adduser <<<"$(field Depends)"
check "Depends lacks libc6: $(field Depends)" grep -q libc6 <<<"$(field Depends)"
dpkg-deb -e "$deb" "$work/control"
check "sluice.toml is not a conffile" grep -qx /etc/sluice/sluice.toml "$work/control/conffiles"
for script in postinst prerm postrm; do
    check "$script is missing" test -x "$work/control/$script"
    check "$script is not valid sh" sh -n "$work/control/$script"
done
dpkg-deb -f "$deb"

step "lintian"
# Errors fail the test; warnings are overridden with a reason in packaging/lintian-overrides.
lintian --fail-on error,warning --info --show-overrides "$deb" 2>&1 | grep -v '^N:' |
    grep -v 'running with root privileges' || true
lintian --fail-on error,warning "$deb" >/dev/null 2>&1 || fail "lintian reports errors or warnings"

step "install"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$PWD/$deb" 2>&1 | tee "$work/install.log"
check "postinst does not say where the first password is" \
    grep -q '/var/lib/sluice/initial-root-password' "$work/install.log"
check "no sluice user" getent passwd sluice
check "no sluice group" getent group sluice
uid=$(id -u sluice)
check "sluice is not a system user (uid $uid)" test "$uid" -lt 1000
check "the sluice user has a login shell" grep -Eq ':/(usr/)?s?bin/(nologin|false)$' <<<"$(getent passwd sluice)"
check "/var/lib/sluice is not 0750 sluice:sluice" test "$(stat -c '%a %U:%G' /var/lib/sluice)" = "750 sluice:sluice"
check "/var/log/sluice is not owned by sluice" test "$(stat -c '%U' /var/log/sluice)" = sluice
check "the unit is not enabled" test -L /etc/systemd/system/multi-user.target.wants/sluice.service
check "/usr/bin/sluice does not run" /usr/bin/sluice --version
dpkg -L sluice | sort >"$work/installed-files"

step "systemd-analyze verify and security"
# No man(1) on a minimal machine: then verify does not check Documentation=man:sluice(1).
man_flag=--man=yes
command -v man >/dev/null || man_flag=--man=no
systemd-analyze verify "$man_flag" /usr/lib/systemd/system/sluice.service >"$work/verify.log" 2>&1 ||
    fail "systemd-analyze verify: $(cat "$work/verify.log")"
check "systemd-analyze verify complains: $(cat "$work/verify.log")" test ! -s "$work/verify.log"
systemd-analyze security --offline=true /usr/lib/systemd/system/sluice.service >"$work/security.log" 2>&1 || true
grep -v '^✓' "$work/security.log" || true
exposure=$(sed -n 's/.*Overall exposure level for sluice.service: \([0-9.]*\).*/\1/p' "$work/security.log")
check "no exposure level in systemd-analyze security output" test -n "$exposure"
check "exposure $exposure is above 2.0" awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }'
echo "exposure: $exposure"

# --- running the installed binary -------------------------------------------------------------

start_mock() {
    target/release/sluice-mock --listen 127.0.0.1:0 >"$work/mock.log" 2>&1 &
    mock_pid=$!
    wait_for_line "$work/mock.log" 'listening on http://' "sluice-mock did not start"
    mock_url=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$work/mock.log" | head -n1)
}

wait_for_line() { # wait_for_line FILE PATTERN MESSAGE: up to 30 s
    local i
    for ((i = 0; i < 300; i++)); do
        grep -q "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
    done
    cat "$1" >&2 || true
    fail "$3"
}

# The installed binary as the service would run it: the sluice user, the packaged config, the
# packaged directories. Only the port is picked by the kernel, so the test never collides with
# something already on 3000.
start_server() {
    local log=$1
    (cd / && exec setpriv --reuid=sluice --regid=sluice --init-groups \
        env -i PATH=/usr/bin:/bin SLUICE_LISTEN=127.0.0.1:0 \
        /usr/bin/sluice serve --config /etc/sluice/sluice.toml) >"$log" 2>&1 &
    server_pid=$!
    wait_for_line "$log" 'listening on http://' "sluice did not start (log above)"
    base=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n1)
    curl -fsS --retry 20 --retry-connrefused --retry-delay 1 --max-time 5 "$base/readyz" >/dev/null ||
        fail "$base/readyz does not answer"
}

stop_server() {
    stop_pid "$server_pid" || fail "sluice did not stop on SIGTERM within 30 s"
    wait "$server_pid" || fail "sluice exited non-zero on SIGTERM"
    server_pid=''
}

step "run /usr/bin/sluice as the sluice user with the packaged config"
start_mock
start_server "$work/server1.log"
check "the server does not run as sluice" test "$(ps -o user= -p "$server_pid")" = sluice
curl -fsS --max-time 10 "$base/" >"$work/index.html"
check "no HTML at /" grep -qi '<!doctype html' "$work/index.html"
refute "the web UI was not built into the binary" grep -q 'was not built' "$work/index.html"
pwfile=/var/lib/sluice/initial-root-password
check "no $pwfile" test -f "$pwfile"
check "$pwfile is not 0600 sluice" test "$(stat -c '%a %U' "$pwfile")" = "600 sluice"
password=$(<"$pwfile")
refute "the password reached the server's output" grep -qF -- "$password" "$work/server1.log"
check "the log does not say where the password is" grep -q "its password is in $pwfile" "$work/server1.log"
check "no log file in /var/log/sluice" compgen -G '/var/log/sluice/sluice-*.log' >/dev/null

set_up_relay test-deb '["gpt-x"]'
status=$(chat)
check "relayed chat answered $status: $(cat "$work/chat.json")" test "$status" = 200
check "the answer is not a chat completion: $(cat "$work/chat.json")" \
    jq -e '.object == "chat.completion" and (.choices[0].message.content | length > 0) and .usage.total_tokens > 0' "$work/chat.json" >/dev/null
check "sluice healthcheck disagrees" setpriv --reuid=sluice --regid=sluice --init-groups \
    /usr/bin/sluice healthcheck --config /etc/sluice/sluice.toml --listen "${base#http://}" >/dev/null
stop_server
check "the database is not in /var/lib/sluice" test -f /var/lib/sluice/sluice.db
check "sluice.db is not owned by sluice" test "$(stat -c '%U' /var/lib/sluice/sluice.db)" = sluice
check "SIGTERM did not checkpoint" grep -q checkpointed "$work/server1.log"

step "upgrade to $next_version"
# cargo-deb deletes the package's other .debs in target/debian when it writes one, even with
# --output elsewhere: make deb's package is put back for whatever runs next (test-systemd.sh).
cp "$deb" "$work/this.deb"
cargo deb --no-build --no-strip --deb-version "$next_version" --output "$work/next.deb" >/dev/null
[[ -f $deb ]] || cp "$work/this.deb" "$deb"
# The administrator's edit to the conffile must survive the upgrade.
echo '# edited by test-deb' >>/etc/sluice/sluice.toml
DEBIAN_FRONTEND=noninteractive dpkg -i "$work/next.deb"
check "the upgrade did not install $next_version" \
    test "$(dpkg-query -W -f='${Version}' sluice)" = "$next_version"
check "the upgrade changed the sluice user's uid" test "$(id -u sluice)" = "$uid"
check "the upgrade lost the conffile edit" grep -qx '# edited by test-deb' /etc/sluice/sluice.toml
start_server "$work/server2.log"
# The key and the channel made before the upgrade still work: the data survived.
status=$(chat)
check "after the upgrade the chat answered $status: $(cat "$work/chat.json")" test "$status" = 200
refute "the upgrade made a new root account" grep -q 'created the root account' "$work/server2.log"
stop_server
stop_pid "$mock_pid"
mock_pid=''

step "remove (keeps the data)"
dpkg -r sluice
check "/usr/bin/sluice is still there" test ! -e /usr/bin/sluice
check "the unit is still there" test ! -e /usr/lib/systemd/system/sluice.service -a ! -e /lib/systemd/system/sluice.service
check "remove deleted the database" test -f /var/lib/sluice/sluice.db
check "remove deleted the conffile" test -f /etc/sluice/sluice.toml
check "remove deleted the sluice user" getent passwd sluice

step "purge (deletes the data after saying so)"
dpkg -P sluice 2>&1 | tee "$work/purge.log"
check "purge did not say what it deletes" grep -q 'purge deletes /var/lib/sluice' "$work/purge.log"
for path in /etc/sluice /usr/bin/sluice /lib/systemd/system/sluice.service \
    /usr/lib/systemd/system/sluice.service /var/lib/sluice /var/log/sluice \
    /etc/systemd/system/multi-user.target.wants/sluice.service /etc/systemd/system/sluice.service \
    /var/lib/systemd/deb-systemd-helper-enabled/sluice.service \
    /var/lib/systemd/deb-systemd-helper-masked/sluice.service; do
    check "$path is left after purge" test ! -e "$path" -a ! -L "$path"
done
# Every file the package installed is gone (directories are shared with other packages).
while read -r path; do
    [[ -d $path ]] && continue
    check "$path is left after purge" test ! -e "$path"
done <"$work/installed-files"
refute "the sluice user is left after purge" getent passwd sluice
refute "the sluice group is left after purge" getent group sluice
refute "dpkg still lists sluice" dpkg-query -W sluice 2>/dev/null
