#!/usr/bin/env bash
# The web player in a real browser (headless Chromium): a publisher whose frames carry the
# wall clock goes live on livescope and, in the same run with the same frames, on
# nginx-rtmp (HLS, 1 s fragments, the peer). The watch page is opened cold and measured:
# time to the first frame shown, camera-to-glass delay read from every frame shown over
# SECONDS with LL-HLS (the default) and with the "lowest delay" HTTP-FLV choice, stalls,
# and the bytes of a first visit. The peer's HLS is played by hls.js with its defaults,
# measured the same way. Writes bench/results/webapp.md.
#
#   bash bench/webapp.sh                 # 60 s per player
#   SECONDS_PER_RUN=20 bash bench/webapp.sh
#
# Runs on 127.0.0.1 on free ports; every run is bounded by SECONDS_PER_RUN.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_PER_RUN=${SECONDS_PER_RUN:-60}
OUT=${OUT:-bench/results/webapp.md}
source bench/lib.sh

if ! command -v ffmpeg >/dev/null || ! command -v nginx >/dev/null || ! command -v chromium >/dev/null \
  || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg nginx libnginx-mod-rtmp chromium >/dev/null
fi
[ -d scripts/browser/node_modules ] || (cd scripts/browser && npm ci --silent --no-audit --no-fund)

rtmp=$(free_port); http=$(free_port)
start_livescope "$WORK/serve.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data"

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
nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &

node scripts/browser/bench-webapp.mjs --base "http://127.0.0.1:$http" --seconds "$SECONDS_PER_RUN" \
  --peer-rtmp "rtmp://127.0.0.1:$peer_rtmp/live/bench" --peer-hls "http://127.0.0.1:$peer_http/hls/bench.m3u8" \
  >"$WORK/webapp.json"

python3 - "$WORK/webapp.json" "$OUT" "$SECONDS_PER_RUN" "$(chromium --version 2>/dev/null || echo chromium)" <<'PY'
import json, os, platform, sys, datetime
report, out, seconds, browser = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3], sys.argv[4]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
f = lambda v: "-" if v is None else f"{v}"
kib = lambda b: f"{b / 1024:.1f}"
lines = [
    "# The web player in a real browser", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}, {browser} headless;",
    "publisher, servers and browser on the same machine (loopback).", "",
    f"Command: `SECONDS_PER_RUN={seconds} bash bench/webapp.sh`", "",
    "The publisher (scripts/browser/clock.mjs) writes the wall clock into every frame it makes (320x240, 30 fps,",
    "H.264 zerolatency, a keyframe a second) and sends the same encoded frames to livescope and to nginx-rtmp.",
    "The page reads the clock back from every frame the browser shows (requestVideoFrameCallback), so the delay",
    "is camera to glass: encoder, server, network and player together, for every frame, the same way for both",
    "servers. Samples start at the first frame shown, so the player's first seconds at the live edge count.
livescope's LL-HLS uses 334 ms parts (PART-HOLD-BACK 0.67 s); the page runs hls.js 1.7.4 with
`lowLatencyMode` and `maxLiveSyncPlaybackRate: 1.5`, and mpegts.js 1.8.2 with live sync towards 0.3 s.", "",
    "| player | first frame after opening the page | delay p50 | p90 | p99 | max | frames read | stalls |",
    "|---|---|---|---|---|---|---|---|",
]
names = {"hls": "livescope watch page, LL-HLS (hls.js)", "flv": "livescope watch page, lowest delay (HTTP-FLV, mpegts.js)"}
for r in report["runs"]:
    name = names.get(r["mode"], "nginx-rtmp HLS, 1 s fragments (hls.js defaults), same run")
    first = f"{r['first_frame_ms']} ms" if "first_frame_ms" in r else "-"
    lines.append(f"| {name} | {first} | {f(r['delay_p50_ms'])} ms | {f(r['delay_p90_ms'])} ms | {f(r['delay_p99_ms'])} ms | {f(r['delay_max_ms'])} ms | {r['frames']} | {r['stalls']} |")
lines += ["", "Bytes transferred on a first visit to a watch page (empty cache, compressed as sent, headers included), KiB:", "",
          "| player | page | app code | player library | API | total without video | media until the first frame | media over the run |",
          "|---|---|---|---|---|---|---|---|"]
for r in report["runs"]:
    if "bytes_until_first_frame" not in r:
        continue
    b, a = r["bytes_until_first_frame"], r["bytes_after_run"]
    without = b["page"] + b["app_code"] + b["player_library"] + b["api"]
    lines.append(f"| {names[r['mode']]} | {kib(b['page'])} | {kib(b['app_code'])} | {kib(b['player_library'])} | {kib(b['api'])} | {kib(without)} | {kib(b['media'])} | {kib(a['media'])} |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
