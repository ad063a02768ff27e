#!/usr/bin/env bash
# Where livescope's delay goes, per path, side by side with the measurement study's
# Periscope figures: a clock publisher goes live on a release build; the watch page plays
# it in headless Chromium over LL-HLS (direct, and through the shipped nginx edge,
# deploy/nginx-edge.conf) and over HTTP-FLV (the page's lowest-delay choice), and ffmpeg
# plays it over RTMP; the clock is read from every frame shown or decoded
# (scripts/browser/delay.mjs); the server's stages come from
# GET /api/broadcasts/<id>/delay. Writes bench/results/delay.md.
#
#   bench/delay.sh            (SECONDS_PER_RUN=30 RUNS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECONDS_PER_RUN:-30}
RUNS=${RUNS:-3}
source bench/lib.sh
(cd scripts/browser && npm ci --silent >/dev/null 2>&1 || true)
HTTP=127.0.0.1:$(free_port)
start_livescope "$WORK/server.log" --rtmp "127.0.0.1:$(free_port)" --http "$HTTP" --data "$WORK/data"
# The edge: the shipped configuration, pointed at this origin, in the scratch folder.
EDGE=127.0.0.1:$(free_port)
mkdir -p "$WORK/nginx"
{
  echo "daemon off; worker_processes 1; pid $WORK/nginx/nginx.pid; error_log $WORK/nginx/error.log warn;"
  echo "events { worker_connections 1024; }"
  echo "http { access_log off; client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy;"
  echo "fastcgi_temp_path $WORK/nginx/fcgi; uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;"
  sed -e "s|/var/cache/nginx/livescope|$WORK/nginx/cache|" -e "s|server 127.0.0.1:8080;|server $HTTP;|" \
    -e "s|listen 8081;|listen $EDGE;|" deploy/nginx-edge.conf
  echo "}"
} >"$WORK/nginx/nginx.conf"
start_nginx
for mode in hls edge flv rtmp; do
  for run in $(seq "$RUNS"); do
    case $mode in
      edge) extra=(--mode hls --hls-via "http://$EDGE") ;;
      *) extra=(--mode "$mode") ;;
    esac
    echo "delay.sh: $mode, run $run" >&2
    node scripts/browser/delay.mjs --base "http://$HTTP" --seconds "$SECS" --freeze 0 "${extra[@]}" --out "$WORK" \
      >"$WORK/$mode-$run.json"
  done
done
python3 - "$WORK" "$RUNS" "$SECS" <<'PY' > bench/results/delay.md
import json, os, statistics, subprocess, sys
work, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(mode):
    return [json.load(open(os.path.join(work, f"{mode}-{r}.json"))) for r in range(1, runs + 1)]
def stage(reports, name):
    values = [r["window"].get(name, {}).get("mean_ms") for r in reports]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
print("# Where the delay goes: livescope's paths against the study's Periscope\n")
print(f"Made by `bench/delay.sh` (SECONDS_PER_RUN={secs} RUNS={runs}) on {cpu} cores, {date}: a clock")
print("publisher (320x240, 30 fps, x264 zerolatency, 1 s GOP) on loopback; the watch page in headless")
print("Chromium reads camera to glass from every frame shown (median over the second half of each")
print("run); the stages are the server's means over the same window (`GET /api/broadcasts/<id>/delay`")
print("at its start and end; the player's buffer as the page reports it every 2 s). Medians of the runs. The study's figures are")
print("Periscope's, measured in 2015 over the Internet: they are the reference, not a peer in this run.\n")
hls, edge, flv, rtmp = load("hls"), load("edge"), load("flv"), load("rtmp")
def glass(reports):
    values = [r["glass_ms"] for r in reports if r.get("glass_ms") is not None]
    return statistics.median(values) if values else None
fmt = lambda v: "–" if v is None else f"{v/1000:.2f} s"
edge_share = glass(edge) - glass(hls) if glass(edge) is not None and glass(hls) is not None else None
rows = [
    ("upload (publisher to server)", None, [stage(hls, "upload"), stage(edge, "upload"), stage(flv, "upload"), stage(rtmp, "upload")]),
    ("chunking (a frame waits for its part or chunk)", 3.0, [stage(hls, "chunking"), stage(edge, "chunking"), None, None]),
    ("polling / blocking reload", 1.2, [None, None, None, None]),
    ("origin to edge", 0.3, [None, edge_share, None, None]),
    ("push delivery (arrival to the viewer's socket)", None, [None, None, stage(flv, "delivery_flv"), stage(rtmp, "delivery_rtmp")]),
    ("player buffer", 6.9, [stage(hls, "player_buffer"), stage(edge, "player_buffer"), stage(flv, "player_buffer"), None]),
]
print("| stage | Periscope HLS (study) | LL-HLS | LL-HLS through the nginx edge | HTTP-FLV | RTMP (ffmpeg) |")
print("|---|---|---|---|---|---|")
for label, paper, values in rows:
    print(f"| {label} | {'–' if paper is None else f'{paper:.1f} s'} | " + " | ".join(fmt(v) for v in values) + " |")
sums = [sum(v for v in col if v is not None) for col in zip(*[r[2] for r in rows])]
print("| **sum of the stages** | 11.7 s | " + " | ".join(fmt(v) for v in sums) + " |")
print(f"| **camera to glass, measured** | 11.7 s (RTMP: 1.4 s) | {fmt(glass(hls))} | {fmt(glass(edge))} | {fmt(glass(flv))} | {fmt(glass(rtmp))} |")
print()
print("The study gave no upload figure for its HLS breakdown. LL-HLS blocking reload runs")
print("alongside chunking (the player asks for the part being made, and it goes out the moment")
print("it is whole), so it adds nothing; its hold times are in the API as `blocking_wait`. The")
print("edge does not report to the origin: its share is the difference between camera to glass")
print("through it and direct, in the same run. ffmpeg (RTMP) reports no buffer: its column's")
print("camera to glass is to the decoded frame, not to a screen. What the stages leave out is")
print("encoding, decoding and drawing (a few frames at 30 fps).")
PY
cat bench/results/delay.md
