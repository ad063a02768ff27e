#!/usr/bin/env bash
# What streaming each LL-HLS part frame by frame costs in bytes: livescope writes one CMAF
# chunk (moof + mdat) per video frame so that the part in progress can be sent as it
# grows. Publishes a ~1 Mbit/s H.264/AAC clip (640x360, 30 fps, 2 s GOP, B-frames), lets it
# end, reads every segment of the recording and compares its bytes with the same samples
# in one moof per part and one per segment. Writes bench/results/cmaf-overhead.md.
#
#   bash bench/cmaf-overhead.sh
#
# Runs on 127.0.0.1 on free ports; the clip is SECONDS long.
set -euo pipefail
cd "$(dirname "$0")/.."

SECONDS_OF_CLIP=${SECONDS_OF_CLIP:-20}
KBPS=${KBPS:-1000}
OUT=${OUT:-bench/results/cmaf-overhead.md}
source bench/lib.sh
if ! command -v ffmpeg >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null
fi

http=$(free_port); rtmp=$(free_port)
start_livescope "$WORK/serve.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data"

ffmpeg -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=640x360:rate=30 \
  -f lavfi -i sine=frequency=440:sample_rate=44100 -t "$SECONDS_OF_CLIP" \
  -c:v libx264 -preset veryfast -b:v ${KBPS}k -maxrate ${KBPS}k -bufsize ${KBPS}k -g 60 -bf 2 -pix_fmt yuv420p \
  -c:a aac -b:a 64k -f flv "$WORK/clip.flv"

python3 - "$http" "$rtmp" "$WORK" "$OUT" "$SECONDS_OF_CLIP" "$KBPS" <<'PY'
import datetime, json, os, platform, struct, subprocess, sys, time, urllib.request
http, rtmp, work, out, seconds, kbps = sys.argv[1:]
base = f"http://127.0.0.1:{http}"

def call(method, path, body=None, token=None):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode() if body is not None else None)
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req) as r:
        return json.loads(r.read() or b"null")

creds = {"username": "bench", "password": "bench-secret"}
call("POST", "/api/users", creds)
token = call("POST", "/api/sessions", creds)["token"]
b = call("POST", "/api/broadcasts", {}, token)
subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", f"{work}/clip.flv", "-c", "copy",
                "-f", "flv", f"rtmp://127.0.0.1:{rtmp}/live/{b['stream_key']}"], check=True)
for _ in range(100):
    if call("GET", f"/api/broadcasts/{b['id']}", token=token)["state"] == "ended":
        break
    time.sleep(0.1)
get = lambda p: urllib.request.urlopen(base + f"/hls/{b['id']}/" + p).read()
playlist = get("index.m3u8").decode()

def boxes(data, at=0, end=None):
    end = len(data) if end is None else end
    while at + 8 <= end:
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        if size < 8:
            return
        yield kind.decode("latin1"), at, size
        at += size

# Per-sample bytes of a trun, by its flags: duration, size, flags, composition offset.
def trun_samples(data, at):
    flags = int.from_bytes(data[at + 9:at + 12], "big")
    count = struct.unpack(">I", data[at + 12:at + 16])[0]
    per = 4 * sum(1 for f in (0x100, 0x200, 0x400, 0x800) if flags & f)
    return count, per

segments = [l for l in playlist.splitlines() if l and not l.startswith("#")]
parts_per_segment = []
for l in playlist.splitlines():
    if l.startswith("#EXTINF"):
        parts_per_segment.append(0)
total = moof_bytes = mdat_headers = samples = sample_entry_bytes = chunks = 0
for name in segments:
    data = get(name)
    total += len(data)
    for kind, at, size in boxes(data):
        if kind == "moof":
            chunks += 1
            moof_bytes += size
            for k2, a2, s2 in boxes(data, at + 8, at + size):
                if k2 == "traf":
                    for k3, a3, s3 in boxes(data, a2 + 8, a2 + s2):
                        if k3 == "trun":
                            n, per = trun_samples(data, a3)
                            samples += n
                            sample_entry_bytes += n * per
        elif kind == "mdat":
            mdat_headers += 8
duration = float(sum(float(l.split(":")[1].split(",")[0]) for l in playlist.splitlines() if l.startswith("#EXTINF")))
part_target = float(next(l.split("PART-TARGET=")[1].split(",")[0] for l in playlist.splitlines() if "PART-TARGET=" in l))
parts = round(duration / part_target)
fixed = (moof_bytes - sample_entry_bytes) / chunks   # a moof's bytes apart from its sample entries
payload = total - moof_bytes - mdat_headers
per_chunk = moof_bytes + mdat_headers
per_part = parts * (fixed + 8) + sample_entry_bytes
per_segment = len(segments) * (fixed + 8) + sample_entry_bytes
kbit = lambda b: b * 8 / duration / 1000
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
lines = [
    "# Bytes of per-frame CMAF chunks in LL-HLS", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()}.",
    f"Command: `SECONDS_OF_CLIP={seconds} KBPS={kbps} bash bench/cmaf-overhead.sh`", "",
    f"A {kbps} kbit/s H.264 + 64 kbit/s AAC clip (640x360, 30 fps, 2 s GOP, B-frames), {duration:.1f} s recorded in",
    f"{len(segments)} segments and about {parts} parts of {part_target*1000:.0f} ms. livescope writes one chunk (moof + mdat)",
    "per video frame so that a part in progress streams as it grows; the columns put the same samples",
    "in one moof per part or per segment (same sample entries, one fixed moof per fragment).", "",
    "| layout | fragments | moof + mdat headers | per second | share of the stream |",
    "|---|---|---|---|---|",
    f"| one chunk per frame (livescope) | {chunks} | {per_chunk} B | {kbit(per_chunk):.1f} kbit/s | {100*per_chunk/total:.2f}% |",
    f"| one fragment per part | {parts} | {per_part:.0f} B | {kbit(per_part):.1f} kbit/s | {100*per_part/(payload+per_part):.2f}% |",
    f"| one fragment per segment | {len(segments)} | {per_segment:.0f} B | {kbit(per_segment):.1f} kbit/s | {100*per_segment/(payload+per_segment):.2f}% |",
    "",
    f"Media payload {payload} B ({kbit(payload):.0f} kbit/s); {samples} samples; a moof holds {fixed:.0f} B besides its sample entries.",
]
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
