# Helpers shared by packaging/test-deb.sh and packaging/test-systemd.sh (sourced, not run).
# The sourcing script sets $name (its name in messages) before sourcing this file.

started=$SECONDS
step() { printf '\n== %s (%ss)\n' "$*" "$((SECONDS - started))"; }
fail() {
    printf '%s: FAIL: %s\n' "$name" "$*" >&2
    exit 1
}
check() { # check DESCRIPTION COMMAND...: runs the command, fails the test with DESCRIPTION
    local what=$1
    shift
    "$@" || fail "$what"
}
refute() { # refute DESCRIPTION COMMAND...: fails the test with DESCRIPTION when the command succeeds
    local what=$1
    shift
    ! "$@" || fail "$what"
}
