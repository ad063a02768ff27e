#!/usr/bin/env bash
# LL-HLS latency against what it costs. Several livescope servers, each with one part
# target and PART-HOLD-BACK (the previous defaults among them), and nginx-rtmp's HLS (1 s
# fragments) receive the same clock stream (scripts/browser/clock.mjs: the wall clock in
# every frame) in one run; hls.js in headless Chromium plays each in turn for
# SECONDS_PER_RUN and the delay is read off every frame shown (camera to glass), beside
# hls.js's own latency figure. Then each livescope configuration serves VIEWERS load
# generator viewers (blocking reload, every part) for LOAD_SECONDS: origin CPU and
# requests per viewer. Writes bench/results/ll-hls-latency.md.
#
#   bash bench/hls-latency.sh
#   SECONDS_PER_RUN=20 VIEWERS=50 bash bench/hls-latency.sh
#
# Runs on 127.0.0.1 on free ports; every run is bounded by its seconds.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
VIEWERS=${VIEWERS:-100}
LOAD_SECONDS=${LOAD_SECONDS:-20}
# part target ms / PART-HOLD-BACK ms; the first is the previous default.
CONFIGS=${CONFIGS:-"334/1002 334/668 250/500 200/600 200/400"}
OUT=${OUT:-bench/results/ll-hls-latency.md}
source bench/lib.sh

if ! command -v ffmpeg >/dev/null || ! command -v nginx >/dev/null || ! command -v chromium >/dev/null \
  || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg nginx libnginx-mod-rtmp chromium >/dev/null
fi
[ -d scripts/browser/node_modules ] || (cd scripts/browser && npm ci --silent --no-audit --no-fund)

# create_broadcast HTTP-PORT: prints "<rtmp publish url> <hls url>" of a new broadcast.
create_broadcast() {
  python3 - "$1" <<'PY'
import json, sys, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def call(method, path, body, token=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method=method,
                                 headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    return json.load(urllib.request.urlopen(req))
call("POST", "/api/users", {"username": "bench", "password": "bench password"})
token = call("POST", "/api/sessions", {"username": "bench", "password": "bench password"})["token"]
b = call("POST", "/api/broadcasts", {"title": "clock"}, token)
print(b["publish"]["rtmp"], b["watch"]["hls"])
PY
}

declare -a PIDS HTTP_PORTS RTMP_ARGS HLS_ARGS
i=0
for config in $CONFIGS; do
  part=${config%/*}; hold=${config#*/}
  rtmp=$(free_port); http=$(free_port)
  start_livescope "$WORK/serve-$i.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data-$i" \
    --hls-part-ms "$part" --hls-part-hold-back-ms "$hold" --record false
  PIDS[$i]=$SERVER_PID; HTTP_PORTS[$i]=$http
  read -r publish hls < <(create_broadcast "$http")
  RTMP_ARGS+=(--rtmp "$publish"); HLS_ARGS+=(--hls "$config=$hls")
  i=$((i + 1))
done

peer_rtmp=$(free_port); peer_http=$(free_port)
mkdir -p "$WORK/nginx/hls"
cat >"$WORK/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:$peer_rtmp;
    chunk_size 4096;
    application live { live on; hls on; hls_path $WORK/nginx/hls; hls_fragment 1s; hls_playlist_length 6s; }
  }
}
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy; fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  server {
    listen 127.0.0.1:$peer_http;
    location /hls {
      alias $WORK/nginx/hls;
      types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
      add_header Cache-Control no-cache;
      add_header Access-Control-Allow-Origin *;
    }
  }
}
CONF
start_nginx

node scripts/browser/latency.mjs --seconds "$SECONDS_PER_RUN" "${RTMP_ARGS[@]}" --rtmp "rtmp://127.0.0.1:$peer_rtmp/live/bench" \
  "${HLS_ARGS[@]}" --hls "nginx-rtmp=http://127.0.0.1:$peer_http/hls/bench.m3u8" --defaults nginx-rtmp >"$WORK/latency.json"
kill "$NGINX_MASTER"; wait "$NGINX_MASTER" 2>/dev/null || true

i=0
for config in $CONFIGS; do
  $BIN loadgen --api "http://127.0.0.1:${HTTP_PORTS[$i]}" --protocol hls --viewers "$VIEWERS" --duration "$LOAD_SECONDS" \
    --server-pid "${PIDS[$i]}" --label "$config" --work "$WORK" --json "$WORK/load-$i.json" >/dev/null
  kill "${PIDS[$i]}"; wait "${PIDS[$i]}" 2>/dev/null || true
  i=$((i + 1))
done

python3 - "$WORK" "$OUT" "$SECONDS_PER_RUN" "$VIEWERS" "$LOAD_SECONDS" "$CONFIGS" "$(chromium --version 2>/dev/null || echo chromium)" <<'PY'
import json, os, platform, sys, datetime
work, out, seconds, viewers, load_seconds, configs, browser = sys.argv[1:8]
configs = configs.split()
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
runs = {r["label"]: r for r in json.load(open(os.path.join(work, "latency.json")))["runs"]}
f = lambda v, d=0: "-" if v is None else f"{v:.{d}f}"
lines = [
    "# LL-HLS: how far behind live, and what it costs", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, {browser} headless;",
    "publisher, servers and browser on the same machine (loopback).", "",
    f"Command: `SECONDS_PER_RUN={seconds} VIEWERS={viewers} LOAD_SECONDS={load_seconds} CONFIGS=\"{' '.join(configs)}\" bash bench/hls-latency.sh`", "",
    "One clock publisher (320x240, 30 fps, H.264 zerolatency, a keyframe a second; the wall clock in every frame) sends",
    "the same frames to every server at once. hls.js (lowLatencyMode, otherwise its defaults) plays each livescope",
    f"configuration in turn, and nginx-rtmp's HLS (1 s fragments) with hls.js defaults, each for {seconds} s from five",
    "seconds after its first frame. *Behind live* is camera to glass, read off every frame shown: encoder, server,",
    "network and player together. *hls.js latency* is hls.js's own figure, the distance from the playlist's live edge.",
    f"Cost: {viewers} load generator viewers per configuration, each following the playlist with blocking reload and",
    f"fetching every part (two requests per part), for {load_seconds} s; origin CPU is the server process's share of one core.", "",
    "| configuration (part / PART-HOLD-BACK ms) | behind live mean | p50 | p95 | max | hls.js latency mean | max | stalls | errors | origin CPU % | requests per viewer per s | part p99 ms |",
    "|---|---|---|---|---|---|---|---|---|---|---|---|",
]
for i, c in enumerate(configs + ["nginx-rtmp"]):
    r = runs.get(c)
    if r is None:
        continue
    g, h = r["camera_to_glass_ms"], r["hls_js_latency_ms"]
    load = {}
    p = os.path.join(work, f"load-{i}.json")
    if c != "nginx-rtmp" and os.path.exists(p):
        load = json.load(open(p))
    rps = load and 2 * load["frames_received"] / max(1, load["viewers"]) / max(0.001, load["seconds"])
    name = {"334/1002": "334 / 1002 (previous default)"}.get(c, c)
    if c == "nginx-rtmp":
        name = "nginx-rtmp HLS, 1 s fragments (hls.js defaults)"
    lines.append(f"| {name} | {f(g['mean'])} | {f(g['p50'])} | {f(g['p95'])} | {f(g['max'])} | {f(h['mean'])} | {f(h['max'])} | {r['stalls']} | {len(r['errors'])} "
                 f"| {f(load.get('server_cpu_percent'), 1)} | {f(rps, 2) if load else '-'} | {f(load.get('latency_p99_ms'))} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
