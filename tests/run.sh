#!/usr/bin/env bash
# Runs Roster's whole test suite: formatting and lints, unit tests, the HTTP integration tests
# on SQLite and PostgreSQL, a strict third-party SCIM client (Python, scim2-tester) against
# the real server on both, and the browser tests in headless Chromium.
#
#   bash tests/run.sh
#
# PostgreSQL: uses TEST_DATABASE_URL if set; otherwise creates the database `roster_test` on
# the local server (127.0.0.1:5432, user postgres) when one is reachable. ROSTER_REQUIRE_POSTGRES=1
# (set by CI) makes a missing Postgres an error instead of a SQLite-only run.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n==> %s\n' "$*"; }

# --- PostgreSQL ---------------------------------------------------------------------------
if [ -z "${TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1; then
  if ! pg_isready -h 127.0.0.1 -p 5432 -q; then
    if [ -d /etc/postgresql ] && command -v pg_ctlcluster >/dev/null 2>&1; then
      step "starting PostgreSQL"
      pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
      for _ in $(seq 1 30); do pg_isready -h 127.0.0.1 -p 5432 -q && break; sleep 1; done
    fi
  fi
  if pg_isready -h 127.0.0.1 -p 5432 -q; then
    db=roster_test
    dropdb -h 127.0.0.1 -U postgres --if-exists "$db"
    createdb -h 127.0.0.1 -U postgres "$db"
    export TEST_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$db"
  fi
fi
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  echo "PostgreSQL tests on ${TEST_DATABASE_URL}"
elif [ "${ROSTER_REQUIRE_POSTGRES:-}" = 1 ]; then
  echo "error: ROSTER_REQUIRE_POSTGRES=1 but no PostgreSQL is reachable" >&2
  exit 1
else
  echo "warning: no PostgreSQL reachable; database tests run on SQLite only" >&2
fi

# --- Rust ---------------------------------------------------------------------------------
step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --all-targets --locked -- -D warnings

step "cargo test (unit and HTTP integration tests)"
cargo test --locked

# --- A strict third-party SCIM client -------------------------------------------------------
step "strict SCIM client (scim2-tester): discovery and CRUD on every backend"
cargo build --locked --bin roster
ROSTER_BIN="$PWD/target/debug/roster" bash tests/scim_client/run.sh

# --- Browser ------------------------------------------------------------------------------
step "browser test (headless Chromium)"
if [ ! -x /usr/bin/chromium ]; then
  echo "installing Debian's chromium for the browser test"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
cargo build --locked --bin roster
ROSTER_BIN="$PWD/target/debug/roster" bash tests/e2e/run.sh
