#!/usr/bin/python3
"""Upload invalid adapters to a running daemon: each must be answered 422
with the JSON error shape and the validator's message (tests/e2e/adapter_rejects.sh).

usage: upload_rejects.py PORT DIR...
Each DIR holds FILE.safetensors with its expected message fragment either in
FILE.txt (tests/check_adapter.c's dump) or in DIR/index.json as {file: fragment}
(tests/ref/make_fixtures.py bad). Prints one "ok" line per directory; exits 1
on the first failure."""
import http.client
import json
import os
import sys


def cases(d):
    index = os.path.join(d, "index.json")
    if os.path.exists(index):
        return sorted(json.load(open(index)).items())
    return [(f, open(os.path.join(d, f[:-len(".safetensors")] + ".txt")).read())
            for f in sorted(os.listdir(d)) if f.endswith(".safetensors")]


def main():
    port = int(sys.argv[1])
    total = 0
    for d in sys.argv[2:]:
        items = cases(d)
        if not items:
            sys.exit("FAIL: no adapters in %s" % d)
        for i, (name, frag) in enumerate(items):
            body = open(os.path.join(d, name), "rb").read()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            c.request("PUT", "/v1/adapters/e2e/bad-%d" % i, body=body)
            r = c.getresponse()
            data = r.read()
            c.close()
            try:
                err = json.loads(data)["error"]
            except (ValueError, KeyError):
                sys.exit("FAIL: %s: %d without the JSON error shape: %r" % (name, r.status, data[:200]))
            if r.status != 422 or frag not in err["message"]:
                sys.exit("FAIL: %s: %d %r, want 422 with %r" % (name, r.status, err["message"], frag))
        print("ok - %d invalid adapters from %s: 422 with the validator's message"
              % (len(items), os.path.basename(d)))
        total += len(items)
    print("upload_rejects: %d adapters" % total)


if __name__ == "__main__":
    main()
