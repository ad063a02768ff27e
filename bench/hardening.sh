#!/usr/bin/env bash
# What strangers cost before they are trusted, side by side with nginx (nginx-rtmp for
# RTMP): RTMP connections each holding the largest partial message the server accepts
# before a key is checked, and idle HTTP connections held while the API is timed. Writes
# bench/results/hardening.md.
#
#   bash bench/hardening.sh
#   HOLDERS=2000 TLS_HOLDERS=500 IDLE="1000 10000" bash bench/hardening.sh
#
# Runs on 127.0.0.1 on free ports; every run is bounded by its connection count.
set -euo pipefail
cd "$(dirname "$0")/.."

HOLDERS=${HOLDERS:-2000}
# Fewer over TLS: Python makes its handshakes one by one, and all must be open within the
# server's 10 s setup deadline.
TLS_HOLDERS=${TLS_HOLDERS:-500}
NGINX_HOLDERS=${NGINX_HOLDERS:-200}
IDLE=${IDLE:-"1000 10000"}
OUT=${OUT:-bench/results/hardening.md}
source bench/lib.sh
if ! command -v nginx >/dev/null || [ ! -e /usr/lib/nginx/modules/ngx_rtmp_module.so ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nginx libnginx-mod-rtmp >/dev/null
fi
results="$WORK/results.jsonl"

# livescope: a fresh server for each measurement, so that one does not pay for another.
rtmp=$(free_port); http=$(free_port)
start_livescope "$WORK/serve.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data" --max-rtmp-connections 100000
python3 bench/strangers.py rtmp-hold 127.0.0.1:$rtmp "$HOLDERS" 8192 $SERVER_PID | sed 's/^{/{"server": "livescope", /' >>"$results"
kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true
rtmp=$(free_port); http=$(free_port); rtmps=$(free_port)
start_livescope "$WORK/serve-tls.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data-tls" --max-rtmp-connections 100000 \
  --tls-self-signed --rtmps 127.0.0.1:$rtmps
python3 bench/strangers.py rtmps-hold 127.0.0.1:$rtmps "$TLS_HOLDERS" 8192 $SERVER_PID | sed 's/^{/{"server": "livescope (RTMPS)", /' >>"$results"
kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true
for n in $IDLE; do
  rtmp=$(free_port); http=$(free_port)
  start_livescope "$WORK/serve-$n.log" --rtmp 127.0.0.1:$rtmp --http 127.0.0.1:$http --data "$WORK/data-$n" --max-http-connections 100000
  python3 bench/strangers.py http-idle 127.0.0.1:$http "$n" /api/broadcasts $SERVER_PID | sed 's/^{/{"server": "livescope", /' >>"$results"
  kill $SERVER_PID; wait $SERVER_PID 2>/dev/null || true
done

# nginx: RTMP with its default 1 MiB message limit, HTTP answering a fixed 200.
mkdir -p "$WORK/nginx"
rtmp=$(free_port); http=$(free_port)
cat >"$WORK/nginx/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_rtmp_module.so;
worker_processes 1;
worker_rlimit_nofile 65536;
daemon off;
pid $WORK/nginx/nginx.pid;
error_log $WORK/nginx/error.log warn;
events { worker_connections 60000; }
rtmp { server { listen 127.0.0.1:$rtmp; application live { live on; } } }
http {
  access_log off;
  server { listen 127.0.0.1:$http; location / { return 200 '{"broadcasts":[]}'; } }
}
CONF
start_nginx
master=$NGINX_MASTER worker=$NGINX_WORKER
python3 bench/strangers.py rtmp-hold 127.0.0.1:$rtmp "$NGINX_HOLDERS" 1048576 $master $worker | sed 's/^{/{"server": "nginx-rtmp", /' >>"$results"
kill $master; wait $master 2>/dev/null || true
for n in $IDLE; do
  start_nginx
  master=$NGINX_MASTER worker=$NGINX_WORKER
  python3 bench/strangers.py http-idle 127.0.0.1:$http "$n" / $master $worker | sed 's/^{/{"server": "nginx", /' >>"$results"
  kill $master; wait $master 2>/dev/null || true
done

python3 - "$results" "$OUT" "$HOLDERS" "$TLS_HOLDERS" "$NGINX_HOLDERS" "$IDLE" <<'PY'
import json, os, platform, sys, datetime, subprocess
results, out, holders, tls_holders, nginx_holders, idle = sys.argv[1], sys.argv[2], *sys.argv[3:]
rows = [json.loads(l) for l in open(results)]
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
nginx = subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip().split("/")[-1]
lines = [
    "# What strangers cost before they are trusted: livescope vs nginx", "",
    f"Measured {datetime.date.today()} on {os.cpu_count()} cores ({cpu}), Linux {platform.release()};",
    f"nginx {nginx} with libnginx-mod-rtmp, one worker. The clients share the machine with the server.",
    f"Command: `HOLDERS={holders} TLS_HOLDERS={tls_holders} NGINX_HOLDERS={nginx_holders} IDLE=\"{idle}\" bash bench/hardening.sh`", "",
    "## RTMP: connections holding the largest partial message accepted before a key is checked", "",
    "Each connection completes the handshake, sends all but the last byte of a command message as",
    "large as the server accepts at that point (livescope: 8 KiB, its setup limit; nginx-rtmp: 1 MiB,",
    "its default `max_message`) and waits; over RTMPS, after the TLS handshake. RSS growth is of the",
    "whole server (nginx: master and worker).", "",
    "| server | connections | message | still open after 1 s | RSS before | RSS after | KiB per connection |",
    "|---|---:|---:|---:|---:|---:|---:|",
]
for r in rows:
    if r["mode"] in ("rtmp-hold", "rtmps-hold"):
        lines.append(f"| {r['server']} | {r['connections']} | {r['message_bytes']} B | {r['alive']} | "
                     f"{r['rss_before_kib']/1024:.1f} MiB | {r['rss_after_kib']/1024:.1f} MiB | {r['kib_per_connection']} |")
lines += ["", "## HTTP: idle connections held while the API answers", "",
          "N connections are opened and send nothing; then 200 requests, each on a new connection, are",
          "timed (livescope: `GET /api/broadcasts` from its database; nginx: a fixed 200). livescope closes an",
          "idle connection after 15 s (its header deadline); the timing happens inside that window.", "",
          "| server | idle connections | still open | p50 | p99 | max | RSS growth |",
          "|---|---:|---:|---:|---:|---:|---:|"]
for r in rows:
    if r["mode"] == "http-idle":
        lines.append(f"| {r['server']} | {r['connections']} | {r['still_open']} | {r['p50_ms']} ms | {r['p99_ms']} ms | "
                     f"{r['max_ms']} ms | {(r['rss_after_kib']-r['rss_before_kib'])/1024:.1f} MiB |")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
