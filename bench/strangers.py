"""What strangers cost a server before they are trusted, for bench/hardening.sh.

  strangers.py rtmp-hold HOST:PORT N MESSAGE_BYTES PID...
      N connections do the RTMP handshake, then send all but the last byte of a command
      message of MESSAGE_BYTES and hold it; prints the growth of the PIDs' summed RSS.
  strangers.py rtmps-hold HOST:PORT N MESSAGE_BYTES PID...
      The same over TLS (any certificate accepted).
  strangers.py http-idle HOST:PORT N PATH PID...
      N connections open and send nothing; meanwhile 200 sequential GETs of PATH on a
      fresh connection each are timed; prints their latency and the RSS growth.

Every socket is to the given loopback address; the run is bounded by N.
"""
import json, socket, ssl, statistics, sys, time


def rss_kib(pids):
    total = 0
    for pid in pids:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


# One TLS context for every connection (making one loads the system's CA store).
TLS = ssl.create_default_context()
TLS.check_hostname = False
TLS.verify_mode = ssl.CERT_NONE


def connect(addr, tls=False):
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = TLS.wrap_socket(s, server_hostname="localhost")
    return s


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("closed")
        buf += chunk
    return buf


def rtmp_partial(size):
    """A command message of `size` bytes on chunk stream 3, 128-byte chunks, minus its last byte."""
    header = bytes([3, 0, 0, 0]) + size.to_bytes(3, "big") + bytes([20, 0, 0, 0, 0])
    payload = b"\x05" * size
    out = bytearray(header)
    for i in range(0, size, 128):
        if i:
            out.append(0xC3)
        out += payload[i:i + 128]
    return bytes(out[:-1])


def rtmp_hold(addr, n, size, pids, tls=False):
    before = rss_kib(pids)
    held, message = [], rtmp_partial(size)
    for _ in range(n):
        s = connect(addr, tls)
        s.sendall(b"\x03" + b"\x07" * 1536)
        s0s1s2 = read_exact(s, 3073)
        s.sendall(s0s1s2[1:1537] + message)
        held.append(s)
    time.sleep(1.0)
    alive = 0
    for s in held:
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""
        except (BlockingIOError, ssl.SSLWantReadError):
            alive += 1
        except OSError:
            pass
    after = rss_kib(pids)
    print(json.dumps({"mode": "rtmps-hold" if tls else "rtmp-hold", "connections": n, "message_bytes": size, "alive": alive,
                      "rss_before_kib": before, "rss_after_kib": after,
                      "kib_per_connection": round((after - before) / n, 2)}))


def get(addr, path):
    s = connect(addr)
    start = time.perf_counter()
    s.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
    while s.recv(65536):
        pass
    s.close()
    return (time.perf_counter() - start) * 1000


def http_idle(addr, n, path, pids):
    before = rss_kib(pids)
    opened = time.monotonic()
    held = [connect(addr) for _ in range(n)]
    open_s = time.monotonic() - opened
    times = [get(addr, path) for _ in range(200)]
    after = rss_kib(pids)
    alive = 0
    for s in held:
        s.setblocking(False)
        try:
            alive += s.recv(1) != b""
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    times.sort()
    print(json.dumps({"mode": "http-idle", "connections": n, "open_seconds": round(open_s, 1),
                      "still_open": alive, "p50_ms": round(statistics.median(times), 2),
                      "p99_ms": round(times[int(len(times) * 0.99) - 1], 2), "max_ms": round(times[-1], 2),
                      "rss_before_kib": before, "rss_after_kib": after}))


if __name__ == "__main__":
    mode, addr, n, arg = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    pids = sys.argv[5:]
    if mode in ("rtmp-hold", "rtmps-hold"):
        rtmp_hold(addr, n, int(arg), pids, tls=mode == "rtmps-hold")
    else:
        http_idle(addr, n, arg, pids)
