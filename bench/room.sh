#!/usr/bin/env bash
# Real-time interaction: N WebSocket viewers in one broadcast's room; the audience sends
# 1,000 hearts/s and 20 comments/s (from 100 logged-in commenters). Reports comment and
# heart-batch delivery latency at 100 probe viewers, and the server's CPU and memory per
# connected viewer. Writes bench/results/room.md.
#
#   bash bench/room.sh                  # 1,000 and 10,000 viewers
#   VIEWERS="1000" DURATION=10 bash bench/room.sh
#
# Runs on 127.0.0.1 on free ports; every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

VIEWERS=${VIEWERS:-"1000 10000"}
DURATION=${DURATION:-20}
HEARTS=${HEARTS:-1000}
COMMENTS=${COMMENTS:-20}
VOTES=${VOTES:-5}
OUT=${OUT:-bench/results/room.md}
source bench/lib.sh

for n in $VIEWERS; do
  http=$(free_port)
  start_livescope "$WORK/serve-$n.log" --rtmp 127.0.0.1:0 --http 127.0.0.1:$http --data "$WORK/data-$n"
  pid=$SERVER_PID
  $BIN loadgen room --api http://127.0.0.1:$http --viewers "$n" --hearts "$HEARTS" --comments "$COMMENTS" --votes "$VOTES" \
    --duration "$DURATION" --server-pid $pid --json "$WORK/room-$n.json"
  kill $pid; wait $pid 2>/dev/null || true
done

python3 - "$WORK" "$OUT" "$VIEWERS" "$DURATION" "$HEARTS" "$COMMENTS" "$VOTES" <<'PY'
import json, os, platform, sys, datetime
work, out, viewers, duration, hearts, comments, votes = sys.argv[1], sys.argv[2], sys.argv[3].split(), *sys.argv[4:]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
lines = [
    "# Real-time interaction: one room, many viewers", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()};",
    "the load generator shares the machine with the server.",
    f"Command: `VIEWERS=\"{' '.join(viewers)}\" DURATION={duration} HEARTS={hearts} COMMENTS={comments} VOTES={votes} bash bench/room.sh`", "",
    f"Every viewer holds a WebSocket to `/api/broadcasts/<id>/live` and reports its playback delay every 5 s;",
    "the room already holds 50 comments when they join, so each newcomer is sent them.",
    f"The audience sends {hearts} hearts/s (random viewers) and {comments} comments/s (100 logged-in commenters,",
    "at random moments); the broadcaster opens a poll for the whole run and the logged-in viewers vote",
    f"at {votes}/s, once each. 100 probe viewers time every message the moment it arrives: a comment from",
    "its send to its arrival at each probe; a heart from its send to the arrival of the batch that counts",
    "it (batches every 200 ms): three logged-in heart probes heart about once a second at random moments,",
    "and a batch names its logged-in senders, so each of their hearts is matched to the very batch that",
    "counted it. The other viewers drain their sockets once a second, outside the load generator's poller",
    "(a real viewer's wake-up is its own machine's cost, not the server's). Targets: comments",
    "p99 < 250 ms; hearts p99 < 250 ms (one batch interval + 50 ms); server memory < 10 KB per viewer.", "",
    "No peer is compared: none of the servers we measure against has viewer interaction.", "",
    "| viewers | connected | dropped | comments sent | arrivals at probes / expected | comment p50 / p99 / max ms | hearts sent | hearts counted | hearts timed | heart p50 / p99 / max ms | votes sent / counted | lagged | server CPU % | server bytes/viewer | loadgen CPU % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for n in viewers:
    p = os.path.join(work, f"room-{n}.json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    lines.append(f"| {r['viewers']} | {r['connected']} | {r['disconnected']} | {r['comments_sent']} | {r['comments_received_by_probes']} / {r['comments_expected_at_probes']} | {f(r['comment_p50_ms'])} / {f(r['comment_p99_ms'])} / {f(r['comment_max_ms'])} "
                 f"| {r['hearts_sent']} | {r['hearts_counted_by_a_probe']} | {r['timed_hearts']} | {f(r['heart_p50_ms'])} / {f(r['heart_p99_ms'])} / {f(r['heart_max_ms'])} | {r['votes_sent']} / {r['votes_counted']} | {r['lagged_notices']} "
                 f"| {f(r['server_cpu_percent'])} | {f(r['server_bytes_per_viewer'], 0)} | {f(r['loadgen_cpu_percent'])} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
