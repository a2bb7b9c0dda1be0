#!/usr/bin/env bash
# Builds the container image localhost/sluice:<version> (also tagged :latest) from Containerfile
# with podman, around target/release/sluice (`make image` builds that first).
#
#   packaging/image.sh            BASE unset: the base is localhost/sluice-base:bookworm, imported
#                                 (once) from the debootstrapped Debian root the package tests
#                                 share (packaging/debian-root.sh): no registry needed
#   BASE=docker.io/library/debian:bookworm-slim packaging/image.sh
#                                 any Debian 12 image from a registry
#
# Runs as root (podman import, and the base root is made with debootstrap). On a host without
# systemd as PID 1 it gives podman the settings such a host needs (testlib.sh, podman_env).
set -euo pipefail

name=image
# shellcheck source=packaging/testlib.sh
source "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/testlib.sh"
cd "$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")/.."
command -v podman >/dev/null || fail "podman is missing: apt-get install podman runc"
[[ -x target/release/sluice ]] || fail "target/release/sluice is missing: run make release"
podman_env
version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n1)
image=${IMAGE:-localhost/sluice}

if [[ -z ${BASE:-} ]]; then
    BASE=localhost/sluice-base:bookworm
    if ! podman image exists "$BASE"; then
        [[ $(id -u) == 0 ]] || fail "importing the base image needs root (or set BASE)"
        root=${SDROOT:-/var/tmp/sluice-sdroot}
        packaging/debian-root.sh "$root"
        step "importing $root as $BASE"
        # What the package tests leave in the root, and what a server image does not need.
        tar -C "$root" --numeric-owner \
            --exclude=./root/sdtest --exclude=./.sluice-root \
            --exclude='./var/log/journal/*' --exclude='./var/cache/apt/archives/*.deb' \
            --exclude='./var/lib/apt/lists/*' --exclude='./usr/share/doc/*' \
            --exclude='./usr/share/man/*' --exclude='./usr/share/locale/*' \
            --exclude='./proc/*' --exclude='./sys/*' --exclude='./dev/*' --exclude='./run/*' \
            --exclude='./tmp/*' --exclude=./etc/machine-id \
            -c . | podman import --message "debootstrap bookworm ($root)" - "$BASE" >/dev/null
    fi
fi

step "building $image:$version from $BASE"
# A build context of the Containerfile and the binary alone (see .dockerignore for the same
# with `podman build .` or `docker build .`).
ctx=$(mktemp -d)
trap 'rm -rf "$ctx"' EXIT
mkdir -p "$ctx/target/release"
cp target/release/sluice "$ctx/target/release/"
cp Containerfile "$ctx/"
# Docker format: the OCI image format has no HEALTHCHECK.
podman build --quiet --format docker --build-arg BASE="$BASE" \
    -t "$image:$version" -t "$image:latest" -f "$ctx/Containerfile" "$ctx"
podman image ls --format '{{.Repository}}:{{.Tag}} {{.Size}}' "$image:$version"
