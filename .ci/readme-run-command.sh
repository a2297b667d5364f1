#!/usr/bin/env bash
# Runs the README's run command exactly as the README writes it (the first command of the
# "## Run it" section, read from the file), waits for the one-time owner setup link it prints,
# opens that link over HTTP, and stops the server. Fails when the command no longer works.
set -euo pipefail
cd "$(dirname "$0")/.."

command=$(awk '
  /^## Run it/ { in_section = 1; next }
  in_section && /^## / { exit }
  in_section && /^```/ { if (in_block) exit; in_block = 1; next }
  in_block && NF { print; exit }
' README.md)
if [ -z "$command" ]; then
  echo "error: README.md has no command in a code block under '## Run it'" >&2
  exit 1
fi
echo "README's run command: $command"

if [ -e roster.db ]; then
  echo "error: roster.db already exists here; this check needs a first run" >&2
  exit 1
fi
log=$(mktemp)
cleanup() {
  if [ -n "${pid:-}" ]; then kill -TERM -- "-$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
  rm -f roster.db roster.db-wal roster.db-shm "$log"
}
trap cleanup EXIT

# Its own process group, so stopping it stops cargo and the server it started.
set -m
bash -c "$command" >"$log" 2>&1 &
pid=$!
set +m

# A release build from scratch takes minutes: wait up to 40 minutes for the link.
link=""
for _ in $(seq 1 2400); do
  link=$(grep -Eo 'https?://[^ ]+/owner/setup/roster_setup_[A-Za-z0-9_-]+' "$log" | head -n1 || true)
  [ -n "$link" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "error: the README's run command exited before printing a setup link:" >&2
    tail -n 40 "$log" >&2
    exit 1
  fi
  sleep 1
done
if [ -z "$link" ]; then
  echo "error: no owner setup link after 40 minutes:" >&2
  tail -n 40 "$log" >&2
  exit 1
fi
page=$(mktemp)
status=$(curl -sS -o "$page" -w '%{http_code}' "$link")
if [ "$status" != 200 ] || ! grep -q 'name="password"' "$page"; then
  echo "error: the setup link answered $status without the password form" >&2
  head -c 2000 "$page" >&2
  rm -f "$page"
  exit 1
fi
rm -f "$page"

# The first-run output names the command that prints a fresh link; it must work from here.
hint=$(sed -n 's/.*Ask for a fresh one any time with: //p' "$log" | head -n1)
if [ -z "$hint" ]; then
  echo "error: the first-run output does not say how to get a fresh setup link" >&2
  exit 1
fi
echo "first-run hint: $hint"
hint_out=$(bash -c "$hint" 2>&1 || true)
if ! grep -Eq '/owner/setup/roster_setup_' <<<"$hint_out"; then
  echo "error: the hinted command '$hint' does not print a setup link from here:" >&2
  printf '%s\n' "$hint_out" | tail -n 20 >&2
  exit 1
fi

echo "ok: the README's run command started Roster and its setup link opens the setup form"
