#!/usr/bin/env bash
# API throughput under concurrent load, with wrk (64 connections, 2 threads, 10 s each):
# the global list (live, and 50 replays), and follow/unfollow by 1,000 logged-in users of
# a broadcaster with 10,000 followers. For scale, in the same run: nginx serving the same
# global list answer as a static file, the most an HTTP server can do here.
# Writes bench/results/api.md.
#
#   bash bench/api.sh
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
OUT=${OUT:-bench/results/api.md}
STORE=${STORE:-sqlite}  # or postgres
source bench/lib.sh
database=()
if [ "$STORE" = postgres ]; then
  start_postgres
  database=(--database "$(new_database api)")
fi
if ! command -v wrk >/dev/null || ! command -v nginx >/dev/null || ! command -v ffmpeg >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk nginx ffmpeg >/dev/null
fi
rps() { grep -o 'Requests/sec: *[0-9.]*' | awk '{print $2}'; }
p99() { grep -A4 'Latency Distribution' | grep ' 99%' | awk '{print $2}'; }

$BIN seed --data "$WORK/data" "${database[@]}" --followers 10000 --sessions 1000 --broadcasts 50 --tokens "$WORK/tokens" 2>/dev/null
http=$(free_port); rtmp=$(free_port)
start_livescope "$WORK/serve.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data" "${database[@]}"
pid=$SERVER_PID
# One live broadcast, so that the live list is not empty.
token=$(curl -s -X POST -d '{"username":"star","password":"star-password"}' http://127.0.0.1:$http/api/sessions | python3 -c 'import json,sys; print(json.load(sys.stdin)["token"])')
key=$(curl -s -X POST -H "Authorization: Bearer $token" -d '{"title":"live now"}' http://127.0.0.1:$http/api/broadcasts | python3 -c 'import json,sys; print(json.load(sys.stdin)["stream_key"])')
ffmpeg -hide_banner -loglevel error -nostdin -re -f lavfi -i testsrc=size=320x240:rate=30 -t $((DURATION * 4 + 20)) \
  -c:v libx264 -preset ultrafast -g 60 -f flv rtmp://127.0.0.1:$rtmp/live/$key &
sleep 3

declare -A RESULT
run() { # name, wrk arguments...
  local name=$1; shift
  wrk -t2 -c64 -d${DURATION}s --latency "$@" >"$WORK/$name.txt"
  if grep -q 'Non-2xx' "$WORK/$name.txt"; then
    echo "$name: some answers were errors:" >&2; cat "$WORK/$name.txt" >&2; exit 1
  fi
  RESULT[$name]="$(rps <"$WORK/$name.txt") | $(p99 <"$WORK/$name.txt")"
}
run live http://127.0.0.1:$http/api/broadcasts?state=live
run replays "http://127.0.0.1:$http/api/broadcasts?state=ended&limit=50"
TOKENS="$WORK/tokens" run follow -s bench/api.lua http://127.0.0.1:$http
curl -s "http://127.0.0.1:$http/api/broadcasts?state=ended&limit=50" >"$WORK/replays.json"
kill $pid; wait $pid 2>/dev/null || true

port=$(free_port)
mkdir -p "$WORK/nginx/www"; cp "$WORK/replays.json" "$WORK/nginx/www/list.json"
cat >"$WORK/nginx/nginx.conf" <<CONF
worker_processes 1;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $WORK/nginx/body; proxy_temp_path $WORK/nginx/proxy; fastcgi_temp_path $WORK/nginx/fcgi;
  uwsgi_temp_path $WORK/nginx/uwsgi; scgi_temp_path $WORK/nginx/scgi;
  server { listen 127.0.0.1:$port; root $WORK/nginx/www; }
}
CONF
nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
sleep 1
run nginx http://127.0.0.1:$port/list.json
kill %nginx 2>/dev/null || true

cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)
size=$(stat -c %s "$WORK/replays.json")
{
  echo "# API throughput"
  echo
  echo "Measured $(date +%F) on $(nproc) cores ($cpu), Linux $(uname -r); wrk and the server share the machine."
  if [ "$STORE" = postgres ]; then
    store="PostgreSQL $(ls /usr/lib/postgresql | sort -V | tail -1) on loopback, synchronous_commit=off"
  else
    store="SQLite in WAL mode"
  fi
  echo "Command: \`STORE=$STORE bash bench/api.sh\` (wrk -t2 -c64 -d${DURATION}s; $store; a broadcaster with 10,000"
  echo "followers and 50 replays; one live broadcast)."
  echo
  echo "| request | requests/s | p99 latency |"
  echo "|---|---|---|"
  echo "| livescope: \`GET /api/broadcasts?state=live\` (1 live) | ${RESULT[live]} |"
  echo "| livescope: \`GET /api/broadcasts?state=ended&limit=50\` ($size bytes) | ${RESULT[replays]} |"
  echo "| livescope: \`PUT\`/\`DELETE /api/users/star/follow\`, 1,000 users in turn | ${RESULT[follow]} |"
  echo "| nginx 1 worker: the same 50-replay answer as a static file (the HTTP ceiling here) | ${RESULT[nginx]} |"
} >"$OUT"
cat "$OUT"
