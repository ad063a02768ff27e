#!/usr/bin/env bash
# Where livescope's delay goes, per path, side by side with the measurement study's
# Periscope figures: a clock publisher goes live on a release build; the watch page plays
# it in headless Chromium over LL-HLS and over HTTP-FLV (the page's lowest-delay choice)
# and reads camera to glass from every frame (scripts/browser/delay.mjs); the server's
# stages come from GET /api/broadcasts/<id>/delay. Writes bench/results/delay.md.
#
#   bench/delay.sh            (SECONDS_PER_RUN=30 RUNS=3 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -j2 -p livescope
SECS=${SECONDS_PER_RUN:-30}
RUNS=${RUNS:-3}
WORK=$(mktemp -d)
trap 'kill $SERVER 2>/dev/null || true; rm -rf "$WORK"' EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
HTTP=127.0.0.1:$(free_port)
target/release/livescope serve --rtmp "127.0.0.1:$(free_port)" --http "$HTTP" --data "$WORK/data" >"$WORK/server.log" 2>&1 &
SERVER=$!
for _ in $(seq 50); do curl -sf "http://$HTTP/api/broadcasts" >/dev/null && break; sleep 0.2; done
(cd scripts/browser && npm ci --silent >/dev/null 2>&1 || true)
for mode in hls flv; do
  for run in $(seq "$RUNS"); do
    node scripts/browser/delay.mjs --base "http://$HTTP" --seconds "$SECS" --freeze 0 --mode "$mode" --out "$WORK" \
      >"$WORK/$mode-$run.json"
  done
done
python3 - "$WORK" "$RUNS" "$SECS" <<'PY' > bench/results/delay.md
import json, os, statistics, subprocess, sys
work, runs, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3]
def load(mode):
    return [json.load(open(os.path.join(work, f"{mode}-{r}.json"))) for r in range(1, runs + 1)]
def stage(reports, name):
    values = [r["delay"]["stages"].get(name, {}).get("mean_ms") for r in reports]
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None
cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
print("# Where the delay goes: livescope's paths against the study's Periscope\n")
print(f"Made by `bench/delay.sh` (SECONDS_PER_RUN={secs} RUNS={runs}) on {cpu} cores, {date}: a clock")
print("publisher (320x240, 30 fps, x264 zerolatency, 1 s GOP) on loopback; the watch page in headless")
print("Chromium reads camera to glass from every frame shown (median over the second half of each")
print("run); the stages are the server's means (`GET /api/broadcasts/<id>/delay`, the player's")
print("buffer as the page reports it every 2 s). Medians of the runs. The study's figures are")
print("Periscope's, measured in 2015 over the Internet: they are the reference, not a peer in this run.\n")
rows = [("upload (publisher to server)", "upload", None, "upload"),
        ("chunking (a frame waits for its part or chunk)", "chunking", 3.0, None),
        ("polling / blocking reload", None, 1.2, None),
        ("origin to edge", None, 0.3, None),
        ("push delivery (arrival to the viewer's socket)", None, None, "delivery_flv"),
        ("player buffer", "player_buffer", 6.9, "player_buffer")]
hls, flv = load("hls"), load("flv")
fmt = lambda v: "–" if v is None else f"{v/1000:.2f} s"
print("| stage | Periscope HLS (study) | livescope LL-HLS | livescope HTTP-FLV |")
print("|---|---|---|---|")
for label, name, paper, flv_name in rows:
    print(f"| {label} | {'–' if paper is None else f'{paper:.1f} s'} | "
          f"{fmt(stage(hls, name) if name else None)} | {fmt(stage(flv, flv_name) if flv_name else None)} |")
sum_of = lambda reports, names: sum(stage(reports, n) or 0 for n in names)
print(f"| **sum of the stages** | 11.7 s | {fmt(sum_of(hls, ['upload', 'chunking', 'player_buffer']))} | "
      f"{fmt(sum_of(flv, ['upload', 'delivery_flv', 'player_buffer']))} |")
glass = lambda reports: statistics.median(r["glass_ms"] for r in reports)
print(f"| **camera to glass, measured** | 11.7 s (RTMP: 1.4 s) | {fmt(glass(hls))} | {fmt(glass(flv))} |")
print()
print("The study gave no upload figure for its HLS breakdown. LL-HLS blocking")
print("reload runs alongside chunking (the player asks for the part being made, and it goes out the")
print("moment it is whole), so it adds nothing; its hold times are in the API as `blocking_wait`.")
print("What the stages leave out is encoding, decoding and drawing (a few frames at 30 fps).")
print("Not measured here: the RTMP path (no browser plays it; `delivery_rtmp` is in the API) and the")
print("nginx edge's share (an edge does not report to the origin; bench/results/webapp.md and")
print("bench/results/edge*.md measure the edge end to end).")
PY
cat bench/results/delay.md
