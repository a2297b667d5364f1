#!/usr/bin/env bash
# The browser test: installs playwright-core (no browser download; Debian's chromium is used)
# and runs it with Node's test runner. ROSTER_BIN: the roster binary to test.
set -euo pipefail
cd "$(dirname "$0")"
export ROSTER_BIN="${ROSTER_BIN:-$(cd ../.. && pwd)/target/debug/roster}"
npm ci --no-audit --no-fund --loglevel=error
npm test
