#!/usr/bin/env bash
# Runs every test of the project: formatting and lints, Rust unit and integration tests,
# the JavaScript compatibility suite against the real binary (real socket.io-client and
# mediasoup-client), the browser suite (real Chromium), and a short smoke run of every
# fuzz target.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*"; }

step "cargo fmt --check"
cargo fmt --all -- --check

step "no import cycles between module files"
python3 scripts/module_cycles.py

step "the meeting page's committed bundle is what its source builds"
# api/demo/dist/meeting.js is built into the binary (so the README's first command needs
# no Node); it must be exactly what api/demo/build.mjs makes of api/demo/src with the
# pinned versions of api/demo/package-lock.json.
if [ ! -d api/demo/node_modules ]; then
  (cd api/demo && npm ci --no-audit --no-fund)
fi
rebuilt=$(mktemp --suffix=.js)
(cd api/demo && node build.mjs "$rebuilt")
if ! cmp -s "$rebuilt" api/demo/dist/meeting.js; then
  echo "api/demo/dist/meeting.js differs from a rebuild: run (cd api/demo && npm ci && npm run build) and commit it" >&2
  rm -f "$rebuilt"
  exit 1
fi
rm -f "$rebuilt"

step "cargo clippy --all-targets -D warnings"
cargo clippy --workspace --all-targets -- -D warnings
# The engine and the server with the fault injection of the test builds too.
cargo clippy -p kolabmeet-engine -p kolabmeet-server --all-targets \
  --features kolabmeet-engine/fault-injection,kolabmeet-server/fault-injection -- -D warnings

step "cargo test"
cargo test --workspace
# A panic injected into one transport closes it alone (needs the fault injection).
cargo test -p kolabmeet-engine --features fault-injection --test transport_panic

step "build the release binaries"
# First the test build with fault injection (the browser suite's worker failure and
# transport panic tests make a media worker or one transport panic through its console),
# kept aside; then the default binary,
# which has none of it. Cargo keeps both builds, so switching back only relinks.
cargo build --release -p kolabmeet-server --features fault-injection
cp target/release/kolabmeet-server target/release/kolabmeet-server-fault
cargo build --release -p kolabmeet-server
for command in crashWorker crashTransport; do
  if grep -q "$command" target/release/kolabmeet-server; then
    echo "the default binary must not have the fault injection ($command)" >&2
    exit 1
  fi
done

step "deploy/: the systemd unit (systemd-analyze verify, security exposure)"
if ! command -v systemd-analyze >/dev/null 2>&1; then
  echo "systemd-analyze is missing: apt-get install systemd (as .ci/run does)" >&2
  exit 1
fi
unit_dir=$(mktemp -d)
# The unit as installed, pointing at this build of the binary.
sed "s|^ExecStart=.*|ExecStart=$PWD/target/release/kolabmeet-server|" \
  deploy/kolabmeet-server.service >"$unit_dir/kolabmeet-server.service"
systemd-analyze verify "$unit_dir/kolabmeet-server.service"
# At most 2.0 of 10 ("OK"); it scores 1.4.
systemd-analyze security --offline=true --threshold=20 "$unit_dir/kolabmeet-server.service" | tail -1
rm -rf "$unit_dir"

step "compatibility suite (node --test, real clients)"
if [ ! -d tests/compat/node_modules ]; then
  (cd tests/compat && npm ci --no-audit --no-fund)
fi
(cd tests/compat && KOLABMEET_BIN="$PWD/../../target/release/kolabmeet-server" npm test)

step "browser suite (real Chromium with mediasoup-client)"
if [ ! -x "${CHROMIUM_BIN:-/usr/bin/chromium}" ]; then
  echo "Chromium is missing: apt-get install chromium (as .ci/run does), or set CHROMIUM_BIN" >&2
  exit 1
fi
for tool in "${PROMTOOL_BIN:-/usr/bin/promtool}" "${PROMETHEUS_BIN:-/usr/bin/prometheus}"; do
  if [ ! -x "$tool" ]; then
    echo "$tool is missing: apt-get install prometheus (as .ci/run does), or set PROMTOOL_BIN and PROMETHEUS_BIN" >&2
    exit 1
  fi
done
if [ ! -d tests/browser/node_modules ]; then
  (cd tests/browser && npm ci --no-audit --no-fund)
fi
(cd tests/browser && KOLABMEET_BIN="$PWD/../../target/release/kolabmeet-server" \
  KOLABMEET_FAULT_BIN="$PWD/../../target/release/kolabmeet-server-fault" npm test)

if [ "${FUZZ_SECONDS:-10}" != "0" ] && command -v cargo-fuzz >/dev/null 2>&1; then
  step "fuzz smoke (${FUZZ_SECONDS:-10} s per target)"
  for t in $(cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz list); do
    (cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" -- -max_total_time="${FUZZ_SECONDS:-10}" -rss_limit_mb=2048 >/tmp/fuzz-"$t".log 2>&1) \
      || { echo "fuzz target $t failed:"; tail -40 /tmp/fuzz-"$t".log; exit 1; }
    echo "fuzz $t: $(grep -o 'Done [0-9]* runs' /tmp/fuzz-"$t".log | tail -1)"
  done
fi

step "all tests passed"
