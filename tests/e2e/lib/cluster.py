#!/usr/bin/python3
"""cluster.py - clients for the scale-out end-to-end tests (tests/e2e/scale_out*.sh).

usage:
  cluster.py condput ID IF_MATCH FILE URL...
      One PUT of FILE per URL (one per replica), all released at once with
      the same If-Match; prints the statuses; exactly one must be 2xx and
      every other 412.
  cluster.py hotswap OLD_URL NEW_URL ID FILE_NEW VERSION_OLD URL...
      Start a streamed completion of ID on OLD_URL (VERSION_OLD), upload
      FILE_NEW through NEW_URL once its first chunk arrived, wait until
      every URL serves the new version, then read the stream to its end:
      each chunk must still carry VERSION_OLD.
  cluster.py load URL STOP_FILE CLIENTS OUT MODEL...
      CLIENTS threads post short completions of the MODELs (round robin)
      until STOP_FILE exists; one JSON line per request to OUT as it
      completes: start, end, status (0: connection error).
  cluster.py failures OUT [AFTER BEFORE]
      Print the number of failed requests in OUT; with AFTER/BEFORE (Unix
      seconds) exit 1 when a failure started outside [AFTER, BEFORE].
Requests carry "Authorization: Bearer $SLORA_KEY" when SLORA_KEY is set.
Prints one "ok - ..." line per check; exits 1 on the first failure."""
import http.client
import json
import os
import sys
import threading
import time
import urllib.parse


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def conn(url, timeout=60):
    u = urllib.parse.urlparse(url)
    return http.client.HTTPConnection(u.hostname, u.port, timeout=timeout)


def auth(headers=None):
    h = dict(headers or {})
    if os.environ.get("SLORA_KEY"):
        h["Authorization"] = "Bearer " + os.environ["SLORA_KEY"]
    return h


def request(url, method, path, body=None, headers=None):
    c = conn(url)
    try:
        c.request(method, path, body=body, headers=auth(headers))
        r = c.getresponse()
        return r.status, r.read(), dict(r.getheaders())
    finally:
        c.close()


def cmd_condput(ident, if_match, path, urls):
    blob = open(path, "rb").read()
    barrier = threading.Barrier(len(urls))
    statuses = [None] * len(urls)

    def put(i):
        barrier.wait()
        statuses[i] = request(urls[i], "PUT", "/v1/adapters/" + ident, blob,
                              {"If-Match": '"%s"' % if_match})[0]

    threads = [threading.Thread(target=put, args=(i,)) for i in range(len(urls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    print("statuses:", statuses)
    wins = [s for s in statuses if s in (200, 201)]
    if len(wins) != 1 or statuses.count(412) != len(urls) - 1:
        fail("conditional PUTs from %d replicas: %r (want one 2xx, the rest 412)" %
             (len(urls), statuses))
    print("ok - %d concurrent If-Match PUTs on different replicas: one wins, %d get 412" %
          (len(urls), len(urls) - 1))


def version_of(url, ident):
    st, body, _ = request(url, "GET", "/v1/adapters/" + ident)
    return json.loads(body)["version"] if st == 200 else None


def cmd_hotswap(old_url, new_url, ident, new_file, old_version, urls):
    body = json.dumps({"model": ident, "prompt": "Once upon a time", "max_tokens": 200,
                       "temperature": 0, "stream": True}).encode()
    c = conn(old_url)
    c.request("POST", "/v1/completions", body=body,
              headers=auth({"Content-Type": "application/json"}))
    r = c.getresponse()
    if r.status != 200:
        fail("stream on the old version: %d" % r.status)
    first = r.fp.readline()
    while first.strip() == b"":
        first = r.fp.readline()
    st, out, _ = request(new_url, "PUT", "/v1/adapters/" + ident, open(new_file, "rb").read())
    if st != 200:
        fail("hot swap PUT: %d %s" % (st, out[:200]))
    new_version = json.loads(out)["version"]
    deadline = time.time() + 30
    while any(version_of(u, ident) != new_version for u in urls):
        if time.time() > deadline:
            fail("the new version did not reach every replica within 30 s")
        time.sleep(0.02)
    print("ok - the new version %s is served by all %d replicas" % (new_version, len(urls)))
    for u in urls:
        st, out, _ = request(u, "POST", "/v1/completions", json.dumps(
            {"model": ident, "prompt": "Once", "max_tokens": 2, "temperature": 0}).encode())
        if st != 200 or json.loads(out)["adapter_version"] != new_version:
            fail("completion on %s after the swap: %d %s" % (u, st, out[:200]))
    print("ok - new completions on every replica run on the new version")
    # Read up to the stream's own end, not to EOF: the connection is kept
    # alive, and waiting for the server's 60 s idle close raced this
    # socket's 60 s timeout whenever the stream ended after reading began.
    chunks, versions, done = 0, set(), False
    line = first
    while line:
        line = line.strip()
        if line == b"data: [DONE]":
            done = True
            break
        if line.startswith(b"data: "):
            chunks += 1
            versions.add(json.loads(line[6:]).get("adapter_version"))
        line = r.fp.readline()
    c.close()
    if not done:
        fail("in-flight stream: ended without data: [DONE] after %d chunks" % chunks)
    if chunks < 2 or versions != {old_version}:
        fail("in-flight stream: %d chunks with versions %r (want only %s)" %
             (chunks, versions, old_version))
    print("ok - the in-flight stream finished on the version it started with (%d chunks)" % chunks)


def cmd_load(url, stop_file, clients, out, models):
    lock = threading.Lock()
    f = open(out, "w")

    def client(k):
        i = k
        while not os.path.exists(stop_file):
            model = models[i % len(models)]
            i += 1
            body = json.dumps({"model": model, "prompt": "Once", "max_tokens": 4,
                               "temperature": 0}).encode()
            t0 = time.time()
            status = 0
            try:
                status = request(url, "POST", "/v1/completions", body)[0]
            except (OSError, http.client.HTTPException):
                pass
            with lock:
                f.write(json.dumps({"start": t0, "end": time.time(), "status": status,
                                    "model": model}) + "\n")
                f.flush()

    threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    f.close()


def cmd_failures(out, after=None, before=None):
    rows = [json.loads(line) for line in open(out)]
    bad = [r for r in rows if r["status"] != 200]
    print(len(bad))
    if bad:
        by = {}
        for r in bad:
            by[(r["status"], r["model"])] = by.get((r["status"], r["model"]), 0) + 1
        print("failures by (status, model): %r" % by, file=sys.stderr)
    if after is not None:
        # acceptable: in flight at the kill, or sent before the router noticed
        outside = [r for r in bad if r["start"] > before or r["end"] < after]
        if outside:
            sys.exit(1)


def main():
    if len(sys.argv) < 2:
        fail(__doc__)
    cmd, a = sys.argv[1], sys.argv[2:]
    if cmd == "condput":
        cmd_condput(a[0], a[1], a[2], a[3:])
    elif cmd == "hotswap":
        cmd_hotswap(a[0], a[1], a[2], a[3], a[4], a[5:])
    elif cmd == "load":
        cmd_load(a[0], a[1], int(a[2]), a[3], a[4:])
    elif cmd == "failures":
        cmd_failures(a[0], *(float(x) for x in a[1:3]))
    else:
        fail(__doc__)


if __name__ == "__main__":
    main()
