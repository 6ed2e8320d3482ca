#!/usr/bin/python3
"""crashload.py - upload and inference load for the kill -9 test
(tests/e2e/faults_crash.sh).

usage:
  crashload.py load PORT DIR LOG
      Until the daemon goes away: 2 threads each replace their own names
      (u<thread>_<k>) with DIR/a<i>.safetensors in turn, appending
      "try NAME I" before and "ack NAME I" after each 200/201 to LOG;
      2 threads run completions on the base model and on acknowledged
      adapters (any status but 5xx is fine; a 5xx is recorded as "err").
  crashload.py verify PORT DIR LOG
      Against the restarted daemon: every name ever acknowledged holds its
      last acknowledged version or one that was in flight at a kill since
      (a try after the last ack), and its bytes hash to that version; a
      name never acknowledged is absent or holds an in-flight version; no
      "err" line.
Prints "ok - ..." lines; exits 1 on the first failure."""
import hashlib
import http.client
import json
import os
import random
import sys
import threading

N_FILES = 6


def files(d):
    return [open(os.path.join(d, "a%d.safetensors" % i), "rb").read() for i in range(1, N_FILES + 1)]


def version(blob):
    return hashlib.sha256(blob).hexdigest()[:16]


def cmd_load(port, d, log_path):
    blobs = files(d)
    log = open(log_path, "a", buffering=1)
    lock = threading.Lock()
    acked = []
    stop = threading.Event()

    def write(line):
        with lock:
            log.write(line + "\n")

    def uploader(t):
        rnd = random.Random()
        while not stop.is_set():
            name = "u%d_%d" % (t, rnd.randrange(3))
            i = rnd.randrange(N_FILES)
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                write("try %s %d" % (name, i))
                c.request("PUT", "/v1/adapters/crash/" + name, body=blobs[i])
                r = c.getresponse()
                r.read()
                if r.status in (200, 201):
                    write("ack %s %d" % (name, i))
                    with lock:
                        acked.append(name)
                elif r.status >= 500:
                    write("err PUT %s %d" % (name, r.status))
            except Exception:
                stop.set()

    def inferer():
        rnd = random.Random()
        while not stop.is_set():
            with lock:
                model = "crash/" + rnd.choice(acked) if acked and rnd.random() < 0.7 else "stories260K"
            body = json.dumps({"model": model, "prompt": "Once", "max_tokens": 4, "temperature": 0})
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                c.request("POST", "/v1/completions", body=body)
                r = c.getresponse()
                r.read()
                if r.status >= 500:
                    write("err POST %s %d" % (model, r.status))
            except Exception:
                stop.set()

    threads = [threading.Thread(target=uploader, args=(t,)) for t in range(2)]
    threads += [threading.Thread(target=inferer) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def cmd_verify(port, d, log_path):
    blobs = files(d)
    last_ack, last_try = {}, {}
    for line in open(log_path):
        f = line.split()
        if f[0] == "err":
            print("FAIL: server error under load: " + line.strip(), file=sys.stderr)
            sys.exit(1)
        if f[0] == "try":
            last_try.setdefault(f[1], set()).add(int(f[2]))
        elif f[0] == "ack":
            last_ack[f[1]] = int(f[2])
            last_try.pop(f[1], None)  # acknowledged: nothing earlier can surface
    n = 0
    for name in sorted(set(last_ack) | set(last_try)):
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        c.request("GET", "/v1/adapters/crash/" + name)
        r = c.getresponse()
        meta = r.read()
        allowed = set()
        if name in last_ack:
            allowed.add(version(blobs[last_ack[name]]))
        for i in last_try.get(name, ()):  # unacknowledged tries, each cut by a kill
            allowed.add(version(blobs[i]))
        if r.status == 404 and name not in last_ack:
            continue
        if r.status != 200:
            print("FAIL: crash/%s: %d after restart (acknowledged)" % (name, r.status), file=sys.stderr)
            sys.exit(1)
        got = json.loads(meta)["version"]
        if got not in allowed:
            print("FAIL: crash/%s: version %s, want one of %s" % (name, got, sorted(allowed)),
                  file=sys.stderr)
            sys.exit(1)
        c.request("GET", "/v1/adapters/crash/%s/file" % name)
        r = c.getresponse()
        data = r.read()
        if r.status != 200 or version(data) != got:
            print("FAIL: crash/%s: stored bytes hash to %s, not %s" % (name, version(data), got),
                  file=sys.stderr)
            sys.exit(1)
        n += 1
    print("ok - %d adapters hold their last acknowledged (or in-flight) version, bytes intact" % n)


def main():
    if len(sys.argv) != 5 or sys.argv[1] not in ("load", "verify"):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    (cmd_load if sys.argv[1] == "load" else cmd_verify)(int(sys.argv[2]), sys.argv[3], sys.argv[4])


if __name__ == "__main__":
    main()
