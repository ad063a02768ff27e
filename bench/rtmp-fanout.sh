#!/usr/bin/env bash
# Push delivery side by side: livescope and nginx-rtmp, each fanning one ~1 Mbit/s
# H.264/AAC stream out to N RTMP viewers (and livescope also to N HTTP-FLV viewers), in
# one run on this machine. Writes bench/results/rtmp-fanout.md.
#
#   bash bench/rtmp-fanout.sh                 # 100, 1000 and 3000 viewers
#   VIEWERS="100 1000" DURATION=20 bash bench/rtmp-fanout.sh
#   BATCHES="10 0 20" bash bench/rtmp-fanout.sh  # livescope at each --push-batch-ms
#
# Everything runs on 127.0.0.1 on free ports; every run is bounded by DURATION.
set -euo pipefail
cd "$(dirname "$0")/.."

VIEWERS=${VIEWERS:-"100 1000 3000"}
DURATION=${DURATION:-20}
BATCHES=${BATCHES:-"10 0"}
OUT=${OUT:-bench/results/rtmp-fanout.md}
source bench/lib.sh

need() { command -v "$1" >/dev/null 2>&1; }
if ! need ffmpeg || ! need nginx || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg nginx libnginx-mod-rtmp >/dev/null
fi


run_livescope() { # viewers protocol batch-ms
  local n=$1 proto=$2 batch=$3 rtmp http pid label
  label="livescope, batch $batch ms"
  rtmp=$(free_port); http=$(free_port)
  start_livescope "$WORK/livescope.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data-$n-$proto-$batch" \
    --push-batch-ms "$batch"
  pid=$SERVER_PID
  $BIN loadgen --api http://127.0.0.1:$http --protocol "$proto" --viewers "$n" --duration "$DURATION" \
    --server-pid $pid --label "$label" --work "$WORK" --json "$WORK/livescope-$proto-$n-$batch.json"
  kill $pid; wait $pid 2>/dev/null || true
}

run_nginx() { # viewers
  local n=$1 port master worker
  port=$(free_port)
  mkdir -p "$WORK/nginx"
  cat >"$WORK/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile 16384;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 16000; }
rtmp {
  server {
    listen 127.0.0.1:$port;
    chunk_size 4096;
    application live { live on; }
  }
}
CONF
  start_nginx
  master=$NGINX_MASTER worker=$NGINX_WORKER
  $BIN loadgen --publish rtmp://127.0.0.1:$port/live/bench --play rtmp://127.0.0.1:$port/live/bench \
    --viewers "$n" --duration "$DURATION" --server-pid $master --server-pid $worker --label nginx-rtmp \
    --work "$WORK" --json "$WORK/nginx-rtmp-$n.json"
  kill $master; wait $master 2>/dev/null || true
}

for n in $VIEWERS; do
  for batch in $BATCHES; do run_livescope "$n" rtmp "$batch"; done
  run_nginx "$n"
  run_livescope "$n" flv "${BATCHES%% *}"
done

python3 - "$WORK" "$OUT" "$VIEWERS" "$DURATION" "$BATCHES" <<'PY'
import json, os, platform, subprocess, sys, datetime
work, out, viewers, duration, batches = sys.argv[1], sys.argv[2], sys.argv[3].split(), sys.argv[4], sys.argv[5].split()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
rows = []
for n in viewers:
    for name in [f"livescope-rtmp-{n}-{b}" for b in batches] + [f"nginx-rtmp-{n}", f"livescope-flv-{n}-{batches[0]}"]:
        path = os.path.join(work, name + ".json")
        if os.path.exists(path):
            rows.append(json.load(open(path)))
def f(v, d=1):
    return "-" if v is None else f"{v:.{d}f}"
lines = [
    "# Push delivery: livescope vs nginx-rtmp",
    "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, "
    f"nginx {subprocess.run(['nginx','-v'],capture_output=True,text=True).stderr.strip().split('/')[-1]} with libnginx-mod-rtmp.",
    f"One ~1 Mbit/s H.264/AAC stream (640x360, 30 fps, 2 s GOP, B-frames, 44.1 kHz AAC), {duration} s of measurement",
    "after all viewers joined. Server and load generator share the machine; the load generator",
    "runs viewers on one thread and the publisher on another.",
    "",
    f"Command: `VIEWERS=\"{' '.join(viewers)}\" DURATION={duration} BATCHES=\"{' '.join(batches)}\" bash bench/rtmp-fanout.sh`",
    "",
    "Latency is publisher send to viewer receive, for every audio and video frame, timed on",
    "100 probe viewers spread over the connection order that read each frame on arrival; the",
    "other viewers read every 100 ms and count frames and stalls (so the load generator stays",
    "much cheaper than the server). CPU is the",
    "server's user+system time over the measurement in percent of one core; memory is resident",
    "set size (nginx: master and worker summed); KiB/viewer is the growth of RSS from one",
    "published stream with no viewers to the end of the run, divided by viewers.",
    "",
    "| server | delivery | viewers | playing | failed | CPU % | CPU % per 100 | RSS MiB | KiB/viewer | p50 ms | p99 ms | max ms | stalls | loadgen CPU % |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for r in rows:
    cpu100 = None if r["server_cpu_percent"] is None else r["server_cpu_percent"] / r["viewers"] * 100
    lines.append(
        f"| {r['label']} | {r['protocol']} | {r['viewers']} | {r['playing']} | {r['failed']} | {f(r['server_cpu_percent'])} | {f(cpu100, 2)} "
        f"| {f(r['server_rss_mib'])} | {f(r['server_kib_per_viewer'])} | {f(r['latency_p50_ms'], 2)} | {f(r['latency_p99_ms'], 2)} "
        f"| {f(r['latency_max_ms'], 1)} | {r['stalls']} | {f(r['loadgen_cpu_percent'])} |"
    )
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
