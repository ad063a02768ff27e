#!/usr/bin/env bash
# Going live from a browser, measured: glass to glass from a browser publishing over WHIP
# to browsers watching over WebRTC (WHEP), HTTP-FLV and LL-HLS, against ffmpeg publishing
# the same clock over RTMP to an HTTP-FLV browser in the same run; and the server's CPU
# per WHIP publisher and per WHEP viewer, against an RTMP publisher and HTTP-FLV viewers
# (scripts/browser/glass.mjs, on a release build). Writes bench/results/webrtc.md.
#
#   bench/webrtc.sh            (SECONDS_PER_RUN=20 RUNS=3 VIEWERS=4 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${SECONDS_PER_RUN:-20}
RUNS=${RUNS:-3}
VIEWERS=${VIEWERS:-4}
source bench/lib.sh
(cd scripts/browser && npm ci --silent >/dev/null 2>&1 || true)
for run in $(seq "$RUNS"); do
  HTTP=127.0.0.1:$(free_port)
  start_livescope "$WORK/server-$run.log" --rtmp "127.0.0.1:$(free_port)" --http "$HTTP" --data "$WORK/data-$run"
  echo "webrtc.sh: run $run" >&2
  node scripts/browser/glass.mjs --base "http://$HTTP" --pid "$SERVER_PID" --seconds "$SECS" --viewers "$VIEWERS" \
    --out "$WORK" >"$WORK/run-$run.json"
  kill "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
done
python3 - "$WORK" "$RUNS" "$SECS" "$VIEWERS" <<'PY' > bench/results/webrtc.md
import json, os, statistics, subprocess, sys
work, runs, secs, viewers = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
reports = [json.load(open(os.path.join(work, f"run-{r}.json"))) for r in range(1, runs + 1)]
med = lambda values: statistics.median(values) if values else None
def field(get):
    values = []
    for r in reports:
        try:
            v = get(r)
        except (KeyError, TypeError):
            v = None
        if v is not None:
            values.append(v)
    return med(values)
cpu = subprocess.run(["nproc"], capture_output=True, text=True).stdout.strip()
model = subprocess.run(["sh", "-c", "grep -m1 'model name' /proc/cpuinfo | cut -d: -f2"], capture_output=True, text=True).stdout.strip()
date = subprocess.run(["date", "-u", "+%Y-%m-%d"], capture_output=True, text=True).stdout.strip()
chromium = subprocess.run(["chromium", "--version"], capture_output=True, text=True).stdout.strip()
ms = lambda v: "–" if v is None else f"{v:.0f} ms"
count = lambda v: "–" if v is None else f"{v:.0f}"
print("# Going live from a browser: glass to glass, and the server's cost\n")
print(f"Made by `bench/webrtc.sh` (SECONDS_PER_RUN={secs} RUNS={runs} VIEWERS={viewers}) on {cpu} cores ({model}), {date},")
print(f"release build, {chromium} headless, everything on loopback. The publisher page draws the clock of")
print("`scripts/browser/clock.mjs` (the wall-clock time in blocks, a moving picture below; 640x480, 30 fps)")
print("into a canvas and sends it with a tone over WHIP (H.264 from Chromium's OpenH264, Opus); each")
print("viewer page reads the time back from every frame it shows (`requestVideoFrameCallback`), one path")
print("at a time; median (and 90th percentile) over the second half of each run, then the median of the")
print("runs. The reference in the same run is ffmpeg publishing the same clock over RTMP (320x240, x264")
print("zerolatency, 1 s GOP), watched over HTTP-FLV, the lowest-delay path before WebRTC. No other")
print("WHIP/WHEP server is in this run: MediaMTX, SRS and OvenMediaEngine are not in Debian's packages,")
print("and no binary can be fetched here; the reference is livescope's own push path.\n")
print("## Glass to glass\n")
print("| publisher | watched over | glass to glass (median) | p90 | first frame after opening the page | stalls |")
print("|---|---|---|---|---|---|")
for mode, label in [("webrtc", "WebRTC (WHEP)"), ("flv", "HTTP-FLV (mpegts.js)"), ("hls", "LL-HLS (hls.js)")]:
    g = lambda k: field(lambda r: r["browser"][mode][k])
    print(f"| browser, WHIP | {label} | {ms(g('glass_ms'))} | {ms(g('glass_p90_ms'))} | {ms(g('first_frame_ms'))} | {count(g('stalls'))} |")
g = lambda k: field(lambda r: r["rtmp"]["flv"][k])
print(f"| ffmpeg, RTMP (reference) | HTTP-FLV (mpegts.js) | {ms(g('glass_ms'))} | {ms(g('glass_p90_ms'))} | {ms(g('first_frame_ms'))} | {count(g('stalls'))} |")
whep, ref = field(lambda r: r["browser"]["webrtc"]["glass_ms"]), field(lambda r: r["rtmp"]["flv"]["glass_ms"])
if whep and ref:
    print(f"\nBrowser to browser over WebRTC against ffmpeg to browser over HTTP-FLV: {whep/ref:.2f}x. The issue's target was under 300 ms on loopback.")
print("\n## The server's CPU (percent of one core, means over 10 s)\n")
print("| | livescope |")
print("|---|---|")
# /proc counts CPU in 10 ms ticks: over 10 s, one tick is 0.1% of a core.
pc = lambda v: "–" if v is None else ("< 0.1%" if v < 0.1 else f"{v:.2f}%")
print(f"| idle | {pc(field(lambda r: r['idle_cpu_pct']))} |")
print(f"| per WHIP publisher (640x480, 30 fps, Opus) | {pc(field(lambda r: r['whip_publisher_cpu_pct']))} |")
print(f"| per RTMP publisher (reference: 320x240, 30 fps, no audio) | {pc(field(lambda r: r['rtmp_publisher_cpu_pct']))} |")
print(f"| per WHEP viewer ({viewers} at once) | {pc(field(lambda r: r['whep_viewer_cpu_pct']))} |")
print(f"| per HTTP-FLV viewer (reference, {viewers} at once) | {pc(field(lambda r: r['flv_viewer_cpu_pct']))} |")
print("\n/proc counts CPU in 10 ms ticks: over 10 s one tick is 0.1% of a core (for the per-viewer rows, of all")
print("the viewers together).")
print("\nEach publisher's figure counts what it sets going: ingest, the LL-HLS segmenter and recorder, the")
print("signature and trace checks. A WHEP viewer costs more than an HTTP-FLV one: its frames are")
print("converted to Annex B, packetized into RTP and encrypted (SRTP) per viewer, where HTTP-FLV sends the")
print("same serialized bytes to everyone. The browsers decoding the video share the same 2 cores.")
PY
cat bench/results/webrtc.md
