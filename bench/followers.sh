#!/usr/bin/env bash
# Notification fan-out: a broadcaster with N followers goes live; 1,000 of the followers
# (evenly spread, including the one the fan-out reaches last) hold their notification
# stream (/api/me/events) open; the time from the publisher connecting until each of
# them has its broadcast_started event is measured. Writes bench/results/followers.md.
#
#   bash bench/followers.sh                    # 10,000 and 100,000 followers
#   FOLLOWERS="10000" bash bench/followers.sh
#
# Runs on 127.0.0.1 on free ports; every run is bounded by the load generator's timeout.
set -euo pipefail
cd "$(dirname "$0")/.."

FOLLOWERS=${FOLLOWERS:-"10000 100000"}
STREAMS=${STREAMS:-1000}
OUT=${OUT:-bench/results/followers.md}
STORE=${STORE:-sqlite}  # or postgres
source bench/lib.sh
[ "$STORE" = postgres ] && start_postgres

for n in $FOLLOWERS; do
  database=()
  [ "$STORE" = postgres ] && database=(--database "$(new_database followers_$n)")
  $BIN seed --data "$WORK/data-$n" "${database[@]}" --followers "$n" --sessions "$STREAMS" --tokens "$WORK/tokens-$n" 2>/dev/null
  http=$(free_port)
  RUST_LOG=info start_livescope "$WORK/serve-$n.log" --rtmp 127.0.0.1:0 --http 127.0.0.1:$http --data "$WORK/data-$n" "${database[@]}"
  pid=$SERVER_PID
  $BIN loadgen followers --api http://127.0.0.1:$http --tokens "$WORK/tokens-$n" --followers "$n" \
    --work "$WORK" --json "$WORK/followers-$n.json"
  sleep 1
  grep -o 'notified=[0-9]* took=[0-9.a-zµ]*' "$WORK/serve-$n.log" | tail -1 >"$WORK/fanout-$n.txt" || true
  kill $pid; wait $pid 2>/dev/null || true
done

python3 - "$WORK" "$OUT" "$FOLLOWERS" "$STREAMS" "$STORE" <<'PY'
import json, os, platform, sys, datetime
work, out, followers, streams, store = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
f = lambda v: "-" if v is None else f"{v:.0f}"
lines = [
    "# Notification fan-out: from going live to the last follower's event", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}.",
    f"Command: `STORE={store} FOLLOWERS=\"{' '.join(followers)}\" STREAMS={streams} bash bench/followers.sh`", "",
    "`livescope seed` gives a broadcaster N followers; "
    f"{streams} of them (evenly spread, including the one the fan-out reaches last) hold",
    "`/api/me/events` open. The load generator creates a broadcast and starts publishing; times",
    "are from the publisher connecting until each follower's `broadcast_started` event arrived.",
    "Every follower also gets a stored notification (`/api/me/notifications`); the server's own",
    "log line gives the time it took to store and send all of them.", "",
    "No peer is compared: none of the servers we measure against has accounts, follows or",
    "notifications.", "",
    "| followers | streams open | events received | first ms | p50 ms | last ms | last follower ms | server: stored and sent |",
    "|---|---|---|---|---|---|---|---|",
]
for n in followers:
    p = os.path.join(work, f"followers-{n}.json")
    if not os.path.exists(p):
        continue
    r = json.load(open(p))
    fan = open(os.path.join(work, f"fanout-{n}.txt")).read().strip() if os.path.exists(os.path.join(work, f"fanout-{n}.txt")) else "-"
    lines.append(f"| {n} | {r['streams']} | {r['received']} | {f(r['first_ms'])} | {f(r['p50_ms'])} | {f(r['last_ms'])} | {f(r['last_follower_ms'])} | {fan} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
