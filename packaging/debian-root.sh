#!/usr/bin/env bash
# The Debian bookworm root the package tests and the container image share, made once with
# debootstrap (--variant=minbase plus a few packages) and kept: packaging/test-systemd.sh boots
# it with systemd-nspawn; packaging/image.sh imports it as the image's base when no registry is
# reachable (podman import), so CI debootstraps once for both.
#
#   packaging/debian-root.sh [DIR]       DIR defaults to $SDROOT, else /var/tmp/sluice-sdroot
#
# When DIR already holds a root made with the same package list (recorded in DIR/.sluice-root)
# nothing is done; otherwise DIR is emptied and made afresh (about 45 s on a quiet 2-core
# machine, 2 minutes on a busy one; ~320 MB). Needs root, debootstrap (installed with apt-get
# when missing) and a Debian mirror: $MIRROR, default the one in apt's sources.
set -euo pipefail

name=debian-root
# shellcheck source=packaging/testlib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/testlib.sh"
[[ $(id -u) == 0 ]] || fail "run as root"
dir=${1:-${SDROOT:-/var/tmp/sluice-sdroot}}
# systemd and dbus for test-systemd's boot; curl, jq, sqlite3 and procps for its checks;
# adduser for the package's postinst; ca-certificates for upstreams over TLS in the image.
include=systemd,systemd-sysv,dbus,curl,jq,adduser,sqlite3,procps,ca-certificates

if [[ -f $dir/.sluice-root && $(<"$dir/.sluice-root") == "bookworm minbase $include" ]]; then
    exit 0
fi

if ! command -v debootstrap >/dev/null; then
    step "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null ||
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
fi
mirror=${MIRROR:-$(sed -n 's/^URIs: *\(http[^ ]*debian\)\/\?$/\1/p' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -n1)}
mirror=${mirror:-$(sed -n 's/^deb \[*[^]]*\]* *\(http[^ ]*\) bookworm .*/\1/p' /etc/apt/sources.list 2>/dev/null | head -n1)}
mirror=${mirror:-http://deb.debian.org/debian}
step "debootstrap bookworm into $dir from $mirror"
rm -rf "$dir"
log=${dir%/}.debootstrap.log
debootstrap --variant=minbase --include="$include" bookworm "$dir" "$mirror" >"$log" 2>&1 ||
    { tail -n 20 "$log"; fail "debootstrap failed (log: $log)"; }
echo sluice-sdtest >"$dir/etc/hostname"
# Nothing in the booted container needs a console login.
ln -sf /dev/null "$dir/etc/systemd/system/console-getty.service"
# A minbase root has no /etc/hosts; every server does (the tests name their mock "localhost").
[[ -s $dir/etc/hosts ]] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$dir/etc/hosts"
echo "bookworm minbase $include" >"$dir/.sluice-root"
