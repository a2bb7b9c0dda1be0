#!/usr/bin/env bash
# The pinned `openai` Python SDK (requirements.txt) in a venv, for tests/it/azure_sdk.rs: its
# AzureOpenAI client, unchanged, is what the mock's Azure mode is checked against. Built once
# per requirements change, from the package index as pip is set up here; prints the venv's
# python. Usage: tests/azure_sdk/venv.sh [VENV_DIR]  (default: target/azure-sdk-venv)
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${1:-${CARGO_TARGET_DIR:-$root/target}/azure-sdk-venv}
if ! cmp -s "$here/requirements.txt" "$venv/.requirements" 2>/dev/null; then
  python3 -c 'import ensurepip' 2>/dev/null || {
    echo "python3 venv support is missing: apt-get install -y python3-venv" >&2
    exit 1
  }
  rm -rf "$venv"
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --disable-pip-version-check --no-deps -r "$here/requirements.txt" >&2
  cp "$here/requirements.txt" "$venv/.requirements"
fi
echo "$venv/bin/python"
