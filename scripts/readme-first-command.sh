#!/usr/bin/env bash
# Runs the README's first command exactly as written there (read from README.md, not a
# copy), as a newcomer on a fresh clone would: waits for the generated API token it prints,
# checks `GET /ping`, creates a room and a peer token with that API token, asks the console
# for stats with the README's own `connect` line, checks that `GET /` serves the meeting
# page (built into the binary: no Node needed), then stops the server.
set -euo pipefail
cd "$(dirname "$0")/.."

# The first line of the first ```sh block, without its trailing comment.
first=$(awk '/^```sh$/ {inside=1; next} inside {print; exit}' README.md | sed 's/[[:space:]]*#.*$//')
# The README's console line (the `connect` binary), without its comment.
console=$(grep -m1 -- '--bin connect' README.md | sed 's/[[:space:]]*#.*$//')
case "$first" in
  "cargo run"*) ;;
  *) echo "README's first command is not a cargo run: '$first'" >&2; exit 1 ;;
esac
echo "README's first command: $first"

log=$(mktemp)
# Its own session (process group), so that stopping it stops cargo and the server.
setsid bash -c "$first" >"$log" 2>&1 &
pid=$!
# SIGTERM drains the server (the room made below keeps it up to 10 s); the second stops it
# at once.
stop() {
  kill -TERM -- "-$pid" 2>/dev/null || true
  sleep 1
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}
trap stop EXIT

token=""
for _ in $(seq 1 1200); do # up to 10 minutes: the first release build happens here
  token=$(grep -o 'generated AUTH_TOKEN=[^[:space:]]*' "$log" | head -1 | cut -d= -f2 || true)
  [ -n "$token" ] && break
  if ! kill -0 "$pid" 2>/dev/null; then
    echo "the server exited before printing its token:" >&2; tail -30 "$log" >&2; exit 1
  fi
  sleep 0.5
done
[ -n "$token" ] || { echo "no token printed within 10 minutes:" >&2; tail -30 "$log" >&2; exit 1; }

base=http://127.0.0.1:12443
pong=$(curl -s --max-time 5 "$base/ping")
[ "$pong" = "PONG" ] || { echo "GET /ping answered '$pong'" >&2; tail -30 "$log" >&2; exit 1; }
room=$(curl -s --max-time 5 -XPOST -H "X-Auth-Token: $token" "$base/meetmedia/api/sessions" |
  sed -n 's/.*"id":"\([^"]*\)".*/\1/p')
[ -n "$room" ] || { echo "creating a room with the printed token failed" >&2; exit 1; }
peer=$(curl -s --max-time 5 -XPOST -H "X-Auth-Token: $token" -d '{"role":31}' \
  "$base/meetmedia/api/sessions/$room/connection")
case "$peer" in
  *'"token":"ws://'*) ;;
  *) echo "creating a peer token answered '$peer'" >&2; exit 1 ;;
esac
stats=$(bash -c "$console")
case "$stats" in
  *rooms:1*) ;;
  *) echo "the README's console line printed '$stats'" >&2; exit 1 ;;
esac
page=$(curl -s --max-time 5 "$base/")
case "$page" in
  *'<script src="/demo/meeting.js"'*) ;;
  *) echo "GET / did not answer the meeting page: '${page:0:200}'" >&2; exit 1 ;;
esac
script=$(curl -s --max-time 5 -o /dev/null -w '%{http_code} %{size_download}' "$base/demo/meeting.js")
case "$script" in
  "200 "[1-9]*) ;;
  *) echo "GET /demo/meeting.js answered '$script'" >&2; exit 1 ;;
esac
echo "README's first command: token printed, /ping PONG, room $room created, console: $stats, meeting page served"
