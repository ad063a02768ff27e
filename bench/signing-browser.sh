#!/usr/bin/env bash
# What checking signatures costs the web player, per second of media: a phone-like stream
# (720p30 H.264 at 2.5 Mbit/s, AAC 128 kbit/s) signed by `livescope broadcast`, recorded as
# viewers get it (the HTTP-FLV stream, and the LL-HLS recording's CMAF segments), then
# checked by the page's own verify.js in headless Chromium (scripts/browser/bench-verify.mjs).
# Writes bench/results/signing-browser.md.
#
#   bench/signing-browser.sh            (SECONDS_OF_MEDIA=60 RUNS=5 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
source bench/lib.sh

MEDIA=${SECONDS_OF_MEDIA:-60}
RUNS=${RUNS:-5}
HTTP=$(free_port)
RTMP=$(free_port)
start_livescope "$WORK/server.log" --data "$WORK/data" --http "127.0.0.1:$HTTP" --rtmp "127.0.0.1:$RTMP"
API="http://127.0.0.1:$HTTP"
json() { python3 -c "import json,sys; print(json.load(sys.stdin)$1)"; }

curl -sf -X POST "$API/api/users" -d '{"username":"bench","password":"bench-password-1"}' >/dev/null
TOKEN=$(curl -sf -X POST "$API/api/sessions" -d '{"username":"bench","password":"bench-password-1"}' | json '["token"]')
$BIN keygen --out "$WORK/account.key" >"$WORK/keygen.txt"
PUBLIC=$(sed -n 's/^public key: *//p' "$WORK/keygen.txt")
curl -sf -X POST "$API/api/keys" -H "authorization: Bearer $TOKEN" -d "{\"public_key\":\"$PUBLIC\"}" >/dev/null
CREATED=$(curl -sf -X POST "$API/api/broadcasts" -H "authorization: Bearer $TOKEN" -d '{"title":"bench"}')
ID=$(echo "$CREATED" | json '["id"]')
KEY=$(echo "$CREATED" | json '["stream_key"]')

echo "encoding $MEDIA s of 720p30 ..."
ffmpeg -hide_banner -loglevel error -f lavfi -i "testsrc2=size=1280x720:rate=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000" -t "$MEDIA" \
  -c:v libx264 -preset veryfast -b:v 2500k -g 60 -pix_fmt yuv420p -c:a aac -b:a 128k "$WORK/clip.mp4"

echo "broadcasting it, signed, and recording it as an HTTP-FLV viewer ..."
$BIN broadcast --to "rtmp://127.0.0.1:$RTMP/live/$KEY" --id "$ID" --key "$WORK/account.key" \
  --input "$WORK/clip.mp4" 2>"$WORK/broadcast.log" &
BROADCASTER=$!
for _ in $(seq 100); do
  [ "$(curl -sf "$API/api/broadcasts/$ID" | json '["state"]')" = live ] && break
  sleep 0.1
done
curl -sf -N "$API/live/$ID.flv" -o "$WORK/signed.flv" &
wait $BROADCASTER
sleep 3
mkdir -p "$WORK/cmaf"
curl -sf "$API/hls/$ID/init.mp4" -o "$WORK/cmaf/init.mp4"
for seg in $(curl -sf "$API/hls/$ID/recording.m3u8" | grep -o '^seg[0-9]*\.m4s'); do
  curl -sf "$API/hls/$ID/$seg" -o "$WORK/cmaf/$seg"
done
SERVER=$(curl -sf "$API/api/broadcasts/$ID" | python3 -c 'import json,sys; print(json.dumps(json.load(sys.stdin)["signature"]))')
FLV_BYTES=$(stat -c %s "$WORK/signed.flv")

echo "checking it in Chromium ..."
REPORT=$(node scripts/browser/bench-verify.mjs --flv "$WORK/signed.flv" --cmaf "$WORK/cmaf" \
  --key "$PUBLIC" --id "$ID" --seconds "$MEDIA" --runs "$RUNS")
echo "$REPORT"

python3 - "$REPORT" "$SERVER" "$MEDIA" "$FLV_BYTES" "$(nproc)" "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)" <<'EOF' >bench/results/signing-browser.md
import json, sys
r, server, media, flv_bytes, cores, cpu = json.loads(sys.argv[1]), json.loads(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rate = flv_bytes * 8 / media / 1000
print(f"""# What checking signatures costs the web player

Measured with `bench/signing-browser.sh` (SECONDS_OF_MEDIA={media} RUNS={r['runs']}) on {cores} cores ({cpu}),
headless Chromium {r['chromium']}.

The stream: {media} s of 720p30 H.264 (2.5 Mbit/s, a keyframe every 2 s) with AAC at
128 kbit/s, {rate:,.0f} kbit/s as HTTP-FLV, signed by `livescope broadcast` (a record at every
keyframe and every 30 frames). The server's own check of it: {server.get('state')}, {server.get('records')} records.
The page's `verify.js` checks it as the players hand it over: the HTTP-FLV stream in 64 KiB
chunks (mpegts.js's path), the CMAF init segment and {media // 2}-odd segments (hls.js's path).
SHA-256 and Ed25519 are WebCrypto's.

| path | verdict | main thread, ms per second of media | share of one core | wall time, ms per second of media |
|---|---|---|---|---|""")
for kind, name in (("flv", "HTTP-FLV (mpegts.js)"), ("cmaf", "LL-HLS (hls.js)")):
    k = r[kind]
    print(f"| {name} | {k['verdict']}, {k['records']} records | {k['main_thread_ms_per_media_second']} | {k['main_thread_ms_per_media_second'] / 10:.2f}% | {k['wall_ms_per_media_second']} |")
print("""
Main-thread time is Chrome's TaskDuration over the run: what the check takes from the
page (parsing the containers and the SEI, copying the frames to hash, awaiting WebCrypto).
Wall time runs from the first chunk handed over to the last check answered. The peer here is the native check of the same records, `signed::Verifier`, which
costs 0.016% of a core at 1.1 Mbit/s (bench/results/signing.md); nothing else in the field
checks frames in the browser.""")
EOF
cat bench/results/signing-browser.md
