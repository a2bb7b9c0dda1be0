"""Waits for sluice to be ready, makes an admin account and prints its access token."""

import json
import os
import sys
import time
import urllib.request

base, pid = sys.argv[1], int(sys.argv[2])


def call(method, path, body=None, headers=None):
    req = urllib.request.Request(
        base + path,
        method=method,
        data=None if body is None else json.dumps(body).encode(),
        headers={"content-type": "application/json", **(headers or {})},
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.headers, json.loads(r.read() or b"null")


# Readiness has no event to wait on from outside the process: poll /readyz, bounded.
deadline = time.monotonic() + 60
while True:
    try:
        os.kill(pid, 0)
    except OSError:
        sys.exit("sluice exited during start-up")
    try:
        if call("GET", "/readyz")[0] == 200:
            break
    except OSError:
        pass
    if time.monotonic() > deadline:
        sys.exit("sluice was not ready within 60 s")
    time.sleep(0.1)


def token_of(user, password):
    _, headers, login = call("POST", "/api/auth/login", {"username": user, "password": password})
    cookie = headers["set-cookie"].split(";")[0]
    h = {"cookie": cookie, "x-csrf-token": login["csrf_token"]}
    return call("POST", "/api/me/access-token", headers=h)[2]["token"]


root = token_of("root", "schemathesis-root-pw")
auth = {"authorization": "Bearer " + root}
call("POST", "/api/users", {"username": "fuzzadmin", "password": "fuzz-admin-pw", "role": "admin"}, auth)
print(token_of("fuzzadmin", "fuzz-admin-pw"))
