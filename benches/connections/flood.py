#!/usr/bin/env python3
"""Holds many idle and half-sent connections open against a running gateway, times an
authenticated client meanwhile, and measures when the server closes the held ones.

Usage: flood.py HOST:PORT TOKEN [--idle N] [--half N] [--requests N]
Run by benches/connections/run.sh, which starts the gateway under a 1,024-descriptor
soft limit. Prints one line per figure; exits 1 when a goal is missed.
"""
import argparse
import resource
import select
import socket
import statistics
import time


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("addr")
    p.add_argument("token")
    p.add_argument("--idle", type=int, default=1000, help="connections that send nothing")
    p.add_argument("--half", type=int, default=1000, help="connections that send half a request")
    p.add_argument("--requests", type=int, default=50, help="authenticated requests timed")
    p.add_argument("--header-timeout", type=float, default=10.0)
    a = p.parse_args()
    host, port = a.addr.rsplit(":", 1)
    port = int(port)
    # This client holds every connection itself: give it room.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    held = []
    opened_at = {}
    opened = time.monotonic()
    for i in range(a.idle + a.half):
        s = socket.create_connection((host, port), timeout=5)
        opened_at[s.fileno()] = time.monotonic()
        if i >= a.idle:
            s.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")
        held.append(s)
    print(f"held: {a.idle} idle + {a.half} half-sent connections open "
          f"in {time.monotonic() - opened:.2f} s")

    request = (f"GET /v1/objects HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {a.token}\r\n"
               "Connection: close\r\n\r\n").encode()
    took = []
    for _ in range(a.requests):
        started = time.monotonic()
        s = socket.create_connection((host, port), timeout=5)
        s.sendall(request)
        answer = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        s.close()
        took.append((time.monotonic() - started) * 1000)
        if not answer.startswith(b"HTTP/1.1 200"):
            raise SystemExit(f"unexpected answer: {answer[:80]!r}")
    took.sort()
    worst = took[-1]
    print(f"authenticated GET /v1/objects meanwhile: median {statistics.median(took):.2f} ms, "
          f"p90 {took[int(len(took) * 0.9) - 1]:.2f} ms, max {worst:.2f} ms "
          f"(goal <= 100 ms): {'met' if worst <= 100 else 'NOT met'}")

    # How long after its own opening does the server close each held one? Read to EOF.
    open_ = {s.fileno(): s for s in held}
    last = 0.0
    poller = select.poll()
    for fd in open_:
        poller.register(fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    deadline = opened + a.header_timeout * 3
    while open_ and time.monotonic() < deadline:
        for fd, _ in poller.poll(200):
            s = open_.get(fd)
            if s is None:
                continue
            try:
                data = s.recv(4096)
            except OSError:
                data = b""
            if not data:
                last = max(last, time.monotonic() - opened_at[fd])
                poller.unregister(fd)
                s.close()
                del open_[fd]
    closed = a.idle + a.half - len(open_)
    met = not open_ and last <= a.header_timeout + 2
    print(f"held connections closed by the server: {closed} of {a.idle + a.half}, each at "
          f"most {last:.1f} s after it opened (header timeout {a.header_timeout:.0f} s): "
          f"{'met' if met else 'NOT met'}")
    for s in open_.values():
        s.close()
    if worst > 100 or not met:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
