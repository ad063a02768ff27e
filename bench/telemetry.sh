#!/usr/bin/env bash
# What telemetry costs (issue 14: /metrics, the delay stages, the arrival traces): the
# push and LL-HLS load runs of bench/rtmp-fanout.sh and bench/ll-hls.sh, each on this
# build and on the build before telemetry existed (BEFORE_REV), alternating, REPEAT
# times (which goes first alternates), in one run on this machine. Reports the server's
# CPU (median of the repeats), and the cost as the median of the paired differences. Writes bench/results/telemetry.md.
#
#   bash bench/telemetry.sh
#   BEFORE_BIN=/path/to/old/livescope REPEAT=1 DURATION=10 bash bench/telemetry.sh
set -euo pipefail
cd "$(dirname "$0")/.."
BEFORE_REV=${BEFORE_REV:-9326ec2}
REPEAT=${REPEAT:-6}
DURATION=${DURATION:-15}
PUSH_VIEWERS=${PUSH_VIEWERS:-1000}
HLS_VIEWERS=${HLS_VIEWERS:-300}
OUT=${OUT:-bench/results/telemetry.md}
source bench/lib.sh
AFTER=$WORK/livescope-after
cp "$BIN" "$AFTER"
if [ -z "${BEFORE_BIN:-}" ]; then
  # The old build keeps its own target folder, so later runs are quick.
  git worktree prune
  git worktree add -f "$WORK/before" "$BEFORE_REV" >/dev/null 2>&1
  CARGO_TARGET_DIR="$(pwd)/target/telemetry-before" cargo build --release -j2 -p livescope \
    --manifest-path "$WORK/before/Cargo.toml"
  BEFORE_BIN=$(pwd)/target/telemetry-before/release/livescope
  git worktree remove -f "$WORK/before"
fi
if ! command -v ffmpeg >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi

run() { # which binary protocol viewers repeat
  local which=$1 proto=$2 n=$3 r=$4 rtmp http
  rtmp=$(free_port); http=$(free_port)
  BIN=$([ "$which" = after ] && echo "$AFTER" || echo "$BEFORE_BIN") \
    start_livescope "$WORK/serve.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data-$which-$proto-$r"
  "$AFTER" loadgen --api http://127.0.0.1:$http --protocol "$proto" --viewers "$n" --duration "$DURATION" \
    --server-pid $SERVER_PID --label "$which" --work "$WORK" --json "$WORK/$which-$proto-$r.json" >/dev/null
  kill $SERVER_PID 2>/dev/null || true
  wait $SERVER_PID 2>/dev/null || true
}

for r in $(seq "$REPEAT"); do
  for proto in rtmp flv hls; do
    n=$([ "$proto" = hls ] && echo "$HLS_VIEWERS" || echo "$PUSH_VIEWERS")
    # Which build goes first alternates, so that a machine growing busier over the run
    # does not favour one of them.
    order=$([ $((r % 2)) = 1 ] && echo "before after" || echo "after before")
    for which in $order; do
      run "$which" "$proto" "$n" "$r"
    done
  done
done

python3 - "$WORK" "$OUT" "$REPEAT" "$DURATION" "$PUSH_VIEWERS" "$HLS_VIEWERS" "$BEFORE_REV" <<'PY'
import json, os, platform, statistics, sys, datetime
work, out, repeat, duration, push, hls, rev = sys.argv[1:8]
repeat = int(repeat)
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
def runs(which, proto):
    out = []
    for r in range(1, repeat + 1):
        d = json.load(open(os.path.join(work, f"{which}-{proto}-{r}.json")))
        if d.get("server_cpu_percent") is None or d.get("latency_p50_ms") is None:
            sys.exit(f"run {which}-{proto}-{r} measured nothing: {d}")
        out.append(d)
    return out
lines = [
    "# What telemetry costs", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}.",
    f"`livescope loadgen` runs of {duration} s (one ~1 Mbit/s H.264/AAC stream) against this build",
    f"(with `/metrics`, the delay stages and the arrival traces) and against the build before any",
    f"of them existed (`{rev}`), alternating, {repeat} times; medians of the server's CPU",
    "(user+system, % of one core) and of the delivery latency. Both builds use the same load generator.", "",
    f"Command: `REPEAT={repeat} DURATION={duration} PUSH_VIEWERS={push} HLS_VIEWERS={hls} bash bench/telemetry.sh`", "",
    "| delivery | viewers | CPU % before | CPU % with telemetry | cost: median paired difference (% of the CPU before) | p50 ms before | p50 ms with | CPU % of each pair (before-with) |",
    "|---|---|---|---|---|---|---|---|",
]
for proto, n in (("rtmp", push), ("flv", push), ("hls", hls)):
    b, a = runs("before", proto), runs("after", proto)
    cb = statistics.median(r["server_cpu_percent"] for r in b)
    ca = statistics.median(r["server_cpu_percent"] for r in a)
    lb = statistics.median(r["latency_p50_ms"] for r in b)
    la = statistics.median(r["latency_p50_ms"] for r in a)
    each = " / ".join(f"{x['server_cpu_percent']:.1f}-{y['server_cpu_percent']:.1f}" for x, y in zip(b, a))
    diff = statistics.median(y["server_cpu_percent"] - x["server_cpu_percent"] for x, y in zip(b, a))
    lines.append(f"| {proto} | {n} | {cb:.1f} | {ca:.1f} | {diff:+.2f} points ({100 * diff / cb:+.1f}%) | {lb:.1f} | {la:.1f} | {each} |")
lines += ["", "The target is a cost under 3%. Runs on this shared 2-core machine vary by several percent",
          "from one to the next (the last column shows each pair); the paired median is the estimate."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
