#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for a bounded time, on a machine with only the
# stable Rust toolchain:
#   1. installs cargo-fuzz if `cargo fuzz` is missing (`cargo install cargo-fuzz --locked`);
#   2. builds all targets once, optimized with debug assertions and AddressSanitizer;
#      cargo-fuzz passes nightly-only `-Z` flags, which RUSTC_BOOTSTRAP=1 lets the stable
#      compiler take (no nightly toolchain is fetched);
#   3. runs each target for FUZZ_SECONDS (default 20) from the committed seeds in
#      fuzz/corpus/<target>/ (read only); what the fuzzer finds goes to a temporary
#      directory that is removed afterwards, so the work tree stays as it was.
# Exits non-zero if any target crashed, timed out or ran out of memory, after printing
# each reproducer (kept in fuzz/artifacts/<target>/, which git ignores) and the command
# that replays it.
#
# Settings: FUZZ_SECONDS (per target), FUZZ_JOBS (build jobs, default 2), FUZZ_SANITIZER
# (address, or none for faster runs), FUZZ_TARGETS (space-separated subset; default all).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
jobs="${FUZZ_JOBS:-2}"
sanitizer="${FUZZ_SANITIZER:-address}"
started=$(date +%s)

phase_start=$(date +%s)
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz"
  cargo install cargo-fuzz --locked --jobs "$jobs"
fi
install_s=$(($(date +%s) - phase_start))

targets=(${FUZZ_TARGETS:-$(cargo fuzz list --fuzz-dir fuzz)})
triple=$(rustc -vV | sed -n 's/^host: //p')
echo "fuzz: $(rustc --version), $(cargo fuzz --version)"

echo "fuzz: building ${#targets[@]} targets (sanitizer: $sanitizer)"
phase_start=$(date +%s)
# Release with debug assertions, so that an arithmetic overflow is a crash too.
RUSTC_BOOTSTRAP=1 CARGO_BUILD_JOBS="$jobs" \
  cargo fuzz build --fuzz-dir fuzz --release --debug-assertions --sanitizer "$sanitizer"
build_s=$(($(date +%s) - phase_start))

work=$(mktemp -d "${TMPDIR:-/tmp}/livescope-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

phase_start=$(date +%s)
failed=()
for target in "${targets[@]}"; do
  bin="fuzz/target/$triple/release/$target"
  artifacts="fuzz/artifacts/$target"
  mkdir -p "$work/$target" "$artifacts"
  corpora=("$work/$target")
  [ -d "fuzz/corpus/$target" ] && corpora+=("fuzz/corpus/$target")
  # New inputs go to the first corpus directory: the temporary one.
  if "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${corpora[@]}" >"$work/$target.log" 2>&1; then
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/$target.log")
    cov=$(grep -o 'cov: [0-9]*' "$work/$target.log" | tail -1 || true)
    echo "fuzz: $target: ok, ${runs:-?} runs in ${seconds}s, ${cov:-cov: ?}"
  else
    failed+=("$target")
    echo "fuzz: $target: FAILED; the end of its log:"
    # Without libFuzzer's progress lines and the stack frames: the panic and the input.
    grep -Ev '^#[0-9]|NEW_FUNC|^ *#[0-9]+ 0x|^ +at |^ +[0-9]+: ' "$work/$target.log" | tail -30 | sed 's/^/    /'
    reproducers=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$work/$target.log")
    for reproducer in ${reproducers:-}; do
      echo "fuzz: $target: reproducer $reproducer"
      echo "fuzz:   replay with: RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz $target $reproducer"
    done
    [ -n "${reproducers:-}" ] || echo "fuzz: $target: no reproducer was written (see the log above)"
  fi
  # Only a crash leaves something in the work tree.
  rmdir "$artifacts" 2>/dev/null || true
done
rmdir fuzz/artifacts 2>/dev/null || true
run_s=$(($(date +%s) - phase_start))

echo "fuzz: install ${install_s}s, build ${build_s}s, run ${run_s}s, total $(($(date +%s) - started))s"
echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: failed: ${failed[*]}"
  exit 1
fi
