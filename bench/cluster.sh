#!/usr/bin/env bash
# Several nodes on one machine, against one node in the same run: PostgreSQL and
# nats-server from Debian's packages, three livescope nodes on loopback.
#
#   1. Room fan-out: VIEWERS room members of one live broadcast, 1,000 hearts/s and 20
#      comments/s, on one node, then spread evenly over three nodes (the broadcast is
#      published on the first; the others mirror its room). Comment and heart-batch
#      delivery p99 at 100 probes, CPU per node.
#   2. The relay between nodes: STREAMS broadcasts published on node A, each watched by one
#      HTTP-FLV viewer on A, then by one on B (which pulls each from A once). CPU of A and B.
#
# Writes bench/results/cluster.md. API throughput and notification fan-out on PostgreSQL
# against SQLite are bench/api.sh and bench/followers.sh with STORE=postgres.
#
#   bash bench/cluster.sh
#   VIEWERS=1000 DURATION=10 STREAMS=4 bash bench/cluster.sh
set -euo pipefail
cd "$(dirname "$0")/.."

VIEWERS=${VIEWERS:-10000}
DURATION=${DURATION:-20}
STREAMS=${STREAMS:-10}
OUT=${OUT:-bench/results/cluster.md}
source bench/lib.sh
start_postgres
start_nats

room() { # json-name, loadgen room arguments...
  local name=$1
  shift
  $BIN loadgen room --live --work "$WORK" --viewers "$VIEWERS" --hearts 1000 --comments 20 \
    --duration "$DURATION" --json "$WORK/$name.json" "$@"
}

# 1a. One node, SQLite, no NATS: the single-machine default.
http=$(free_port)
start_livescope "$WORK/single.log" --rtmp 127.0.0.1:0 --http 127.0.0.1:$http --data "$WORK/single"
room room-1 --api http://127.0.0.1:$http --server-pid $SERVER_PID
kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true

# 1b. Three nodes sharing PostgreSQL and NATS.
database=$(new_database room)
declare -A HTTP PID
for node in a b c; do
  HTTP[$node]=$(free_port)
  start_livescope "$WORK/$node.log" --rtmp 127.0.0.1:0 --http 127.0.0.1:${HTTP[$node]} --data "$WORK/$node" \
    --database "$database" --nats "$NATS_URL" --node $node
  PID[$node]=$SERVER_PID
done
room room-3 --api http://127.0.0.1:${HTTP[a]} --node http://127.0.0.1:${HTTP[b]} --node http://127.0.0.1:${HTTP[c]} \
  --server-pid ${PID[a]} --server-pid ${PID[b]} --server-pid ${PID[c]}

# 2. The relay: STREAMS broadcasts published on A; one viewer each, on A, then on B.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
account='{"username":"relay_owner","password":"relay-password"}'
curl -s -o /dev/null -X POST -d "$account" http://127.0.0.1:${HTTP[a]}/api/users
token=$(curl -s -X POST -d "$account" http://127.0.0.1:${HTTP[a]}/api/sessions |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
clip=$(ls "$WORK"/*.flv | head -1)
publishers=()
ids=()
for i in $(seq "$STREAMS"); do
  created=$(curl -s -X POST -H "Authorization: Bearer $token" -d '{"title":"relay"}' http://127.0.0.1:${HTTP[a]}/api/broadcasts)
  ids+=("$(python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])' <<<"$created")")
  key=$(python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_key"])' <<<"$created")
  ffmpeg -hide_banner -loglevel error -nostdin -re -stream_loop -1 -i "$clip" -c copy -f flv \
    "rtmp://127.0.0.1:$(grep -o 'rtmp=[0-9.:]*' "$WORK/a.log" | head -1 | cut -d: -f2)/live/$key" &
  publishers+=($!)
done
sleep 3
measure() { # name, node whose HTTP-FLV the viewers use
  local name=$1 node=$2 viewers=()
  for id in "${ids[@]}"; do
    curl -s -o /dev/null "http://127.0.0.1:${HTTP[$node]}/live/$id.flv" &
    viewers+=($!)
  done
  sleep 3
  local a0 b0
  a0=$(ticks ${PID[a]}); b0=$(ticks ${PID[b]})
  sleep "$DURATION"
  echo "$name $(( $(ticks ${PID[a]}) - a0 )) $(( $(ticks ${PID[b]}) - b0 ))" >>"$WORK/relay.txt"
  kill "${viewers[@]}" 2>/dev/null || true
  wait "${viewers[@]}" 2>/dev/null || true
  sleep 2
}
measure direct a
measure relayed b
kill "${publishers[@]}" 2>/dev/null || true
wait "${publishers[@]}" 2>/dev/null || true
for node in a b c; do
  kill ${PID[$node]}
  wait ${PID[$node]} 2>/dev/null || true
done

python3 - "$WORK" "$OUT" "$VIEWERS" "$DURATION" "$STREAMS" <<'PY'
import json, os, platform, sys, datetime, subprocess
work, out, viewers, duration, streams = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4]), int(sys.argv[5])
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
pg = sorted(os.listdir("/usr/lib/postgresql"), key=int)[-1]
nats = subprocess.run(["/usr/sbin/nats-server", "--version"], capture_output=True, text=True).stdout.strip()
f = lambda v, d=1: "-" if v is None else f"{v:.{d}f}"
lines = [
    "# Several nodes", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}: every node,",
    f"PostgreSQL {pg}, {nats} and the load generators share the machine, so three nodes here",
    "have the CPU of one. Command: "
    f"`VIEWERS={viewers} DURATION={duration:g} STREAMS={streams} bash bench/cluster.sh`.", "",
    "## Room fan-out: one node against three", "",
    f"{viewers} members in the room of one live broadcast (published on the first node), sending 1,000 hearts/s",
    "and 20 comments/s (`livescope loadgen room --live`); with three nodes, members join the nodes in",
    "turn, so two thirds are on mirrors of the room, whose home is the first node. Delivery is timed",
    "at 100 probes spread the same way: a comment from its send to its arrival, a heart from its send",
    "to the batch that counts it (batches every 200 ms at the home; a mirror forwards its hearts on",
    "every 100 ms flush). The peer is livescope on one node with its",
    "defaults (SQLite, no NATS) in the same run.", "",
    "| nodes | connected / members | comments sent / arrivals at probes / expected | comment p50 / p99 ms | hearts sent / counted | heart p50 / p99 ms | CPU % per node | CPU % all nodes |",
    "|---|---|---|---|---|---|---|---|",
]
for n in (1, 3):
    p = os.path.join(work, f"room-{n}.json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    each = " / ".join(f(c) for c in r["server_cpu_percent_each"])
    lines.append(f"| {n} | {r['connected']} / {r['viewers']} | {r['comments_sent']} / {r['comments_received_by_probes']} / {r['comments_expected_at_probes']} "
                 f"| {f(r['comment_p50_ms'])} / {f(r['comment_p99_ms'])} | {r['hearts_sent']} / {r['hearts_counted_by_a_probe']} "
                 f"| {f(r['heart_p50_ms'])} / {f(r['heart_p99_ms'])} | {each} | {f(r['server_cpu_percent'])} |")
lines += [
    "",
    "## The relay between nodes", "",
    f"{streams} broadcasts (a 300 kbit/s clip published with `ffmpeg -re -c copy`) on node A. Each has one",
    "HTTP-FLV viewer (curl), first on A itself, then on B, which pulls each broadcast from A once over",
    "HTTP-FLV and serves its viewer (and would serve its LL-HLS: B runs a segmenter for each). CPU over",
    f"{duration:g} s; per stream is the difference from the direct run divided by {streams}.", "",
    "| viewers on | node A CPU % | node B CPU % |", "|---|---|---|",
]
runs = {}
for line in open(os.path.join(work, "relay.txt")):
    name, a, b = line.split()
    runs[name] = (int(a) / duration, int(b) / duration)  # ticks of 10 ms: percent
    lines.append(f"| {'A (direct)' if name == 'direct' else 'B (relayed from A)'} | {runs[name][0]:.1f} | {runs[name][1]:.1f} |")
if "direct" in runs and "relayed" in runs:
    (ad, bd), (ar, br) = runs["direct"], runs["relayed"]
    lines += ["",
        f"Per relayed stream: A {(ar - ad) / streams:+.2f} points (its pull replaces the viewer's connection),",
        f"B {(br - bd) / streams:+.2f} points (the pull, the segmenter and the viewer)."]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
