# Helpers shared by the packaging scripts (test-deb.sh, test-systemd.sh, test-image.sh, image.sh,
# debian-root.sh; sourced, not run).
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

# The admin API and a relayed chat, against $base. `set_up_relay` sets $token and $key.
api() { # api METHOD PATH [JSON]: as root, with the access token
    curl -fsS --max-time 20 -X "$1" -H "authorization: Bearer $token" \
        -H 'content-type: application/json' ${3:+--data "$3"} "$base$2"
}
chat() { # chat [MODEL [OUT]]: prints the HTTP status; the body goes to OUT ($work/chat.json)
    curl -sS --max-time 20 -o "${2:-$work/chat.json}" -w '%{http_code}' \
        -H "authorization: Bearer $key" -H 'content-type: application/json' \
        --data "{\"model\":\"${1:-gpt-x}\",\"messages\":[{\"role\":\"user\",\"content\":\"hello\"}],\"max_tokens\":3}" \
        "$base/v1/chat/completions"
}
set_up_relay() { # set_up_relay NAME MODELS_JSON: as root (password $password), a channel to
    # $mock_url serving MODELS, quota for root and an unlimited key named NAME
    local name=$1 models=$2 login csrf
    login=$(curl -fsS --max-time 10 -c "$work/cookies" -H 'content-type: application/json' \
        --data "$(jq -n --arg p "$password" '{username: "root", password: $p}')" "$base/api/auth/login")
    csrf=$(jq -r .csrf_token <<<"$login")
    token=$(curl -fsS --max-time 10 -b "$work/cookies" -H "x-csrf-token: $csrf" -X POST \
        "$base/api/me/access-token" | jq -r .token)
    check "no access token" test -n "$token" -a "$token" != null
    api PUT /api/option '{"pricing.allow_unpriced_models": true}' >/dev/null
    api POST /api/channels "$(jq -n --arg u "$mock_url" --arg k "sk-$name" --argjson m "$models" \
        '{name: "mock", base_url: ($u + "/v1"), api_key: $k, models: $m}')" >/dev/null
    api PATCH /api/users/1 '{"quota": 1000}' >/dev/null
    key=$(api POST /api/keys "$(jq -n --arg n "$name" '{name: $n, unlimited: true}')" | jq -r .key)
    check "no API key" test -n "$key" -a "$key" != null
}

# podman on a host without systemd as PID 1 (CI containers, this kind of machine): no systemd
# cgroup manager, no crun, journald absent, and a hard open-file limit below the container
# ulimits podman sets by default. A containers.conf saying so, unless the caller brought one.
podman_env() {
    [[ -n ${CONTAINERS_CONF:-} || $(readlink /proc/1/exe) == */systemd ]] && return 0
    CONTAINERS_CONF=/var/tmp/sluice-containers.conf
    cat >"$CONTAINERS_CONF" <<'CONF'
# Written by packaging/testlib.sh (podman_env) for a host without systemd as PID 1.
[containers]
default_ulimits = []
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
CONF
    export CONTAINERS_CONF
}
