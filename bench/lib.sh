# What every bench script needs, sourced after it has moved to the repository's root:
# a scratch folder removed on exit together with every background job, an open-file limit
# as high as allowed, a release build, free loopback ports, and starting livescope.

WORK=$(mktemp -d /tmp/livescope-bench.XXXXXX)
chmod 755 "$WORK"  # nginx workers run as nobody and read files below it
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$WORK"' EXIT
ulimit -n "$(ulimit -Hn)"
cargo build --release -j2 -p livescope
BIN=target/release/livescope

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# start_livescope LOG SERVE-ARGS...: runs `livescope serve SERVE-ARGS` in the background
# (logging at $RUST_LOG, warn by default, to LOG) and returns once it is ready; its process
# id is then in SERVER_PID. Every load generator connects from 127.0.0.1, so the cap on
# connections per address is lifted (as for a server behind one proxy).
start_livescope() {
  local log=$1
  shift
  RUST_LOG=${RUST_LOG:-warn} $BIN serve --max-connections-per-address 1000000 "$@" >"$log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 50); do
    grep -q ready "$log" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "livescope did not start:" >&2
  cat "$log" >&2
  return 1
}

# start_nginx: runs nginx with $WORK/nginx/nginx.conf in the background (the config says
# `daemon off`) and returns once its worker is up; the processes are then NGINX_MASTER and
# NGINX_WORKER.
start_nginx() {
  nginx -p "$WORK/nginx" -e "$WORK/nginx/error.log" -c "$WORK/nginx/nginx.conf" &
  NGINX_MASTER=$!
  NGINX_WORKER=
  for _ in $(seq 50); do
    NGINX_WORKER=$(pgrep -P $NGINX_MASTER | head -1 || true)
    [ -n "$NGINX_WORKER" ] && return 0
    sleep 0.1
  done
  echo "nginx did not start:" >&2
  cat "$WORK/nginx/error.log" >&2
  return 1
}

# start_postgres: runs Debian's PostgreSQL from a new cluster in the scratch folder on a
# free loopback port (as the package's user when run as root), with the durability of
# SQLite in WAL mode with synchronous=NORMAL, livescope's default: every commit reaches
# the OS, not the disk (synchronous_commit=off). new_database NAME then prints a URL.
start_postgres() {
  local bin run=()
  bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
  PG_PORT=$(free_port)
  mkdir -p "$WORK/pg"
  if [ "$(id -u)" -eq 0 ]; then
    chown postgres "$WORK/pg"
    run=(runuser -u postgres --)
  fi
  "${run[@]}" "$bin/initdb" -D "$WORK/pg/data" -U postgres --auth=trust -E UTF8 --locale=C >/dev/null
  "${run[@]}" "$bin/postgres" -D "$WORK/pg/data" -h 127.0.0.1 -p "$PG_PORT" -k "$WORK/pg" \
    -c synchronous_commit=off -c max_connections=300 -c shared_buffers=256MB >"$WORK/pg.log" 2>&1 &
  for _ in $(seq 100); do
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$PG_PORT" && return 0
    sleep 0.1
  done
  echo "postgres did not start:" >&2
  cat "$WORK/pg.log" >&2
  return 1
}
new_database() {
  psql -q -h 127.0.0.1 -p "$PG_PORT" -U postgres -c "CREATE DATABASE $1" postgres
  echo "postgres://postgres@127.0.0.1:$PG_PORT/$1"
}

# start_nats: runs Debian's nats-server on a free loopback port; NATS_URL is its URL.
start_nats() {
  local port
  port=$(free_port)
  /usr/sbin/nats-server -a 127.0.0.1 -p "$port" >"$WORK/nats.log" 2>&1 &
  NATS_URL=nats://127.0.0.1:$port
  for _ in $(seq 50); do
    python3 -c "import socket; socket.create_connection(('127.0.0.1', $port))" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nats-server did not start" >&2
  return 1
}
