#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (ffmpeg, nginx
# as the LL-HLS edge cache, PostgreSQL, nats-server, Chromium and the DejaVu fonts from Debian's
# packages; hls.js from npm), checks formatting and lints, then runs every test, then
# every fuzz target for a bounded time.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v ffmpeg >/dev/null 2>&1 || need+=(ffmpeg)
command -v ffprobe >/dev/null 2>&1 || need+=(ffmpeg)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v node >/dev/null 2>&1 || need+=(nodejs npm)
# PostgreSQL, for the store's tests on it and the cluster's (the tests start their own
# servers in temporary folders, on free loopback ports).
compgen -G "/usr/lib/postgresql/*/bin/postgres" >/dev/null || need+=(postgresql)
# NATS, the cluster's message bus, for the cluster's tests.
command -v nats-server >/dev/null 2>&1 || [ -x /usr/sbin/nats-server ] || need+=(nats-server)
# livescope sim lays its plots' text out with DejaVu Sans.
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
# hls.js, Shaka Player, the strict playlist parser and a driver for Chromium, from the npm
# registry, for the browser tests (again whenever the lock file changed).
if [ ! -d scripts/browser/node_modules ] || [ scripts/browser/package-lock.json -nt scripts/browser/node_modules/.package-lock.json ]; then
  (cd scripts/browser && npm ci --silent --no-audit --no-fund)
fi
for component in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$component" || rustup component add "$component"
done

# On CI every build starts clean: incremental caches only cost disk and time there.
if [ "${CI:-}" = "true" ]; then export CARGO_INCREMENTAL=0; fi

cargo fmt --all --check
cargo clippy --all-targets -j2 -- -D warnings
# The fuzz targets live outside the workspace: check they still build before the long
# test run, not only at the end.
cargo check -j2 --manifest-path fuzz/Cargo.toml --bins
cargo test -j2 --all-targets
# The whole suite again, with every test server's state in PostgreSQL: the workspace's
# unit tests (the store's run on both databases in either pass) and every integration
# suite but the cluster's, which runs on PostgreSQL in the first pass already. Selected
# from the whole workspace, not with -p, so that dependencies keep the features of the
# first run and are not built again.
suites=()
for suite in crates/*/tests/*.rs; do
  name=$(basename "$suite" .rs)
  [ "$name" = cluster ] || suites+=(--test "$name")
done
LIVESCOPE_TEST_STORE=postgres cargo test -j2 --workspace --lib "${suites[@]}"
# Every fuzz target for a bounded time (cargo-fuzz on the stable toolchain).
FUZZ_SECONDS=${FUZZ_SECONDS:-10} bash scripts/fuzz.sh
