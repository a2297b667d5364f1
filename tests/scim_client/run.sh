#!/usr/bin/env bash
# The strict SCIM client check (check.py, on python-scim's scim2-tester) against a real
# `roster serve`, on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL.
#
#   bash tests/scim_client/run.sh            (ROSTER_BIN: the binary, default target/debug/roster)
#
# The Python packages go to a venv under target/scim-venv (reused; reinstalled when
# requirements.txt changes). PostgreSQL: a fresh database roster_scim_client on the local
# server (dropdb/createdb -h 127.0.0.1 -U postgres). Exits non-zero when a backend fails.
set -euo pipefail
cd "$(dirname "$0")/../.."
root="$PWD"
here="$root/tests/scim_client"
ROSTER_BIN="${ROSTER_BIN:-$root/target/debug/roster}"
case "$ROSTER_BIN" in /*) ;; *) ROSTER_BIN="$root/$ROSTER_BIN" ;; esac
if [ ! -x "$ROSTER_BIN" ]; then
  echo "error: no roster binary at $ROSTER_BIN (cargo build --bin roster, or set ROSTER_BIN)" >&2
  exit 2
fi

step() { printf '\n==> %s\n' "$*"; }

# --- Python venv ----------------------------------------------------------------------------
venv="$root/target/scim-venv"
python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
  echo "error: the SCIM client check needs Python >= 3.11 (found $(python3 --version 2>&1))" >&2
  exit 2
}
if [ ! -x "$venv/bin/python" ]; then
  step "creating the venv $venv"
  python3 -m venv "$venv"
fi
if ! cmp -s "$here/requirements.txt" "$venv/.requirements.txt"; then
  step "installing tests/scim_client/requirements.txt"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$venv/.requirements.txt"
fi

# --- Servers, always stopped ----------------------------------------------------------------
work="$(mktemp -d "${TMPDIR:-/tmp}/roster-scim-client.XXXXXX")"
# Outside the working directory: on Postgres the key file would default to ./roster.key.
export ROSTER_SECRET_KEY_FILE="$work/roster.key"
server_pid=""
stop_server() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
}
cleanup() {
  stop_server
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

# Starts roster on URL with a free port, waits (bounded) for "Roster listening on", creates an
# org and a generic directory with the CLI, and runs check.py against the directory.
run_backend() {
  local name="$1" url="$2" port base log i org_json dir_json endpoint token status
  port="$(free_port)"
  base="http://127.0.0.1:$port"
  log="$work/$name.log"
  step "$name: roster serve on $base"
  # errexit does not apply inside a function called with ||: every step checks its own status.
  "$ROSTER_BIN" --database-url "$url" migrate >"$log" 2>&1 || {
    echo "error: roster migrate failed:" >&2; cat "$log" >&2; return 1
  }
  "$ROSTER_BIN" --database-url "$url" --bind "127.0.0.1:$port" --public-url "$base" serve \
    >>"$log" 2>&1 &
  server_pid=$!
  # Bounded poll: at most 60 s for the server to say it listens (or to die).
  for i in $(seq 1 300); do
    grep -q "Roster listening on" "$log" && break
    if ! kill -0 "$server_pid" 2>/dev/null; then
      echo "error: roster exited before listening:" >&2
      cat "$log" >&2
      server_pid=""
      return 1
    fi
    sleep 0.2
  done
  if ! grep -q "Roster listening on" "$log"; then
    echo "error: roster did not say 'Roster listening on' within 60 s:" >&2
    cat "$log" >&2
    stop_server
    return 1
  fi

  org_json="$("$ROSTER_BIN" --database-url "$url" --public-url "$base" \
    org create "Acme" --scim-enabled --json)" &&
    dir_json="$("$ROSTER_BIN" --database-url "$url" --public-url "$base" \
      directory create Acme --provider generic --json)" &&
    endpoint="$(printf '%s' "$dir_json" | json_field endpoint_url)" &&
    token="$(printf '%s' "$dir_json" | json_field token)" || {
    echo "error: creating the org and directory with the CLI failed" >&2
    stop_server
    return 1
  }
  echo "org $(printf '%s' "$org_json" | json_field id), directory $endpoint"

  step "$name: strict SCIM client check"
  status=0
  ROSTER_SCIM_URL="$endpoint" ROSTER_SCIM_TOKEN="$token" \
    "$venv/bin/python" "$here/check.py" || status=$?
  stop_server
  if [ "$status" -ne 0 ]; then
    echo "($name server log: last lines)"
    tail -n 20 "$log" || true
  fi
  return "$status"
}

failed=()
run_backend sqlite "sqlite://$work/roster.db" || failed+=(SQLite)

if [ -n "${TEST_DATABASE_URL:-}" ]; then
  db=roster_scim_client
  dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
  createdb -h 127.0.0.1 -U postgres "$db"
  run_backend postgres "postgres://postgres@127.0.0.1:5432/$db" || failed+=(PostgreSQL)
else
  echo
  echo "note: TEST_DATABASE_URL is not set; the SCIM client check ran on SQLite only"
fi

echo
if [ "${#failed[@]}" -ne 0 ]; then
  echo "strict SCIM client check FAILED on: ${failed[*]}"
  exit 1
fi
echo "strict SCIM client check passed"
