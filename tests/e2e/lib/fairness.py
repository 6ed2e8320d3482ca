#!/usr/bin/python3
"""fairness.py uploads PORT SLOW SMALL - per-tenant upload slots against a
daemon started with worker_threads 2 and max_uploads_per_tenant 1, no auth
(tests/e2e/fairness.sh):

  1. acme sends N = 6 dry-run uploads of SLOW (a validation of about half
     a second) at once: one runs, the others wait for acme's slot
     (slorad_adapter_uploads_waiting + answered == N - 1 once all are in);
  2. one more acme upload whose client closes the socket right after the
     body leaves the queue without being validated;
  3. beta's upload of SMALL is answered while acme's queue is still long
     (at most 2 of acme's uploads answered; queued behind acme's in one
     shared FIFO it would come after at least 4);
  4. every acme upload succeeds (200, nothing refused); dry runs counted:
     acme's N, never the abandoned one.
Prints "ok - ..." lines; exits 1 on the first failure."""
import http.client
import re
import socket
import sys
import threading
import time


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def metric(port, name):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/metrics")
    text = c.getresponse().read().decode()
    c.close()
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    if not m:
        fail("metric %s missing" % name)
    return int(m.group(1))


def wait_for(what, cond, deadline_s=60):
    """Poll cond() until true (a condition, with a deadline)."""
    end = time.monotonic() + deadline_s
    while not cond():
        if time.monotonic() > end:
            fail("timed out waiting for " + what)
        time.sleep(0.01)


def put(port, path, body, results, key):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    c.request("PUT", path, body=body)
    r = c.getresponse()
    r.read()
    c.close()
    results[key] = (r.status, time.monotonic())


N = 6


def cmd_uploads(port, slow_path, small_path):
    slow = open(slow_path, "rb").read()
    small = open(small_path, "rb").read()
    base_dry = metric(port, "slorad_adapter_dry_runs_total")
    results = {}
    threads = [threading.Thread(target=put, args=(port, "/v1/adapters/acme/s%d?dry_run=1" % i,
                                                  slow, results, i)) for i in range(N)]
    for t in threads:
        t.start()

    def waiting():
        return metric(port, "slorad_adapter_uploads_waiting")
    # every upload received: one validating, the rest waiting or answered
    wait_for("acme's uploads to queue", lambda: waiting() + len(results) == N - 1)
    queued = waiting()
    if queued < N - 2:
        fail("acme's queue drained too fast to test (%d waiting)" % queued)
    print("ok - acme's %d uploads: 1 validating, %d waiting for acme's slot" % (N, queued))

    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"PUT /v1/adapters/acme/gone?dry_run=1 HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: %d\r\n\r\n" % len(small) + small)
    wait_for("the extra upload to queue", lambda: waiting() + len(results) == N)
    s.close()

    beta = {}
    put(port, "/v1/adapters/beta/small", small, beta, "b")
    t_beta = beta["b"][1]
    answered = sum(1 for st, t in list(results.values()) if t <= t_beta)
    if beta["b"][0] != 201:
        fail("beta's upload: %d" % beta["b"][0])
    if answered > 2:
        fail("beta's upload was answered after %d of acme's %d" % (answered, N))
    print("ok - beta's upload answered while acme's queue waits (%d of acme's %d done)"
          % (answered, N))

    for t in threads:
        t.join()
    bad = [st for st, _ in results.values() if st != 200]
    if len(results) != N or bad:
        fail("acme's uploads: %r" % sorted(results.items()))
    print("ok - all %d of acme's uploads succeeded (waited, never refused)" % N)
    wait_for("the queue to empty", lambda: waiting() == 0)
    dry = metric(port, "slorad_adapter_dry_runs_total") - base_dry
    if dry != N:
        fail("%d dry runs validated, want acme's %d (the abandoned upload must not run)" % (dry, N))
    print("ok - the upload abandoned while waiting was never validated")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "uploads":
        cmd_uploads(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
