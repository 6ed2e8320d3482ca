#!/usr/bin/python3
"""infer.py - inference end-to-end checks against a running daemon.

usage:
  infer.py fixtures URL FIXTURE_DIR EXPECTED_DIR SLORAD
      For every fixture adapter: upload it, compare /v1/logits (every prompt
      position) with the numpy reference under the project's rule
      max|a-b| <= 1e-4 * max|b|, /v1/completions at temperature 0 with the
      reference greedy tokens, and a text prompt's temperature-0 completion
      with `slorad generate --adapter` on the same prompt.
  infer.py storm URL FILE_A FILE_B SWAPS CLIENTS [MIX_FILE BASE_ID]
      Record the temperature-0 output of versions A and B alone, then replace
      the adapter SWAPS times (A, B, A, ...) while CLIENTS threads request
      completions; every response must carry a version that is A or B and the
      text recorded for it; no errors. With MIX_FILE (uploaded as
      storm/other, never replaced) the requests are mixes of the swapped
      adapter (1.5) and it (0.5) on BASE_ID, and each response's `adapters`
      must list the swapped adapter's version (A or B) with its text.
Prints one "ok - ..." line per check; exits 1 on the first failure."""
import hashlib
import json
import subprocess
import sys
import threading
import urllib.error
import urllib.request

TOL = 1e-4


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def request(method, url, body=None, raw=None):
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=120) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def post(url, body):
    status, out = request("POST", url, body)
    try:
        return status, json.loads(out)
    except ValueError:
        fail("%s: not JSON (%d): %r" % (url, status, out[:200]))


def put_adapter(url, ident, path):
    with open(path, "rb") as f:
        status, out = request("PUT", "%s/v1/adapters/%s" % (url, ident), raw=f.read())
    if status not in (200, 201):
        fail("PUT %s: %d %s" % (ident, status, out[:300]))
    return json.loads(out)["version"]


def cmd_fixtures(url, fixture_dir, expected_dir, slorad):
    with open(fixture_dir + "/manifest.json") as f:
        manifest = json.load(f)
    for name, ent in sorted(manifest.items()):
        ident = "acme/" + name.replace("_", "-")
        version = put_adapter(url, ident, fixture_dir + "/" + ent["file"])
        with open("%s/%s.logits.json" % (expected_dir, name)) as f:
            ref = json.load(f)
        status, got = post(url + "/v1/logits",
                           {"model": ident, "tokens": ref["tokens"], "positions": "all"})
        if status != 200:
            fail("%s logits: %d %s" % (name, status, got))
        if got["adapter_version"] != version or got["tokens"] != ref["tokens"]:
            fail("%s logits: version/tokens %s %s" % (name, got["adapter_version"], got["tokens"]))
        if len(got["logits"]) != len(ref["logits"]):
            fail("%s logits: %d rows, want %d" % (name, len(got["logits"]), len(ref["logits"])))
        worst = 0.0
        for a_row, b_row in zip(got["logits"], ref["logits"]):
            scale = max(abs(b) for b in b_row)
            diff = max(abs(a - b) for a, b in zip(a_row, b_row))
            worst = max(worst, diff / scale)
            if diff > TOL * scale:
                fail("%s logits: max diff %g > %g * %g" % (name, diff, TOL, scale))
        print("ok - %s: /v1/logits equals the numpy reference (max rel diff %.2e)" % (name, worst))

        greedy = []
        for t in ref["greedy"]:
            if t in (1, 2):
                break
            greedy.append(t)
        status, want = post(url + "/v1/detokenize", {"tokens": greedy})
        status, out = post(url + "/v1/completions", {"model": ident, "prompt": ref["tokens"],
                                                     "temperature": 0, "max_tokens": 12})
        if status != 200:
            fail("%s completion: %d %s" % (name, status, out))
        text = out["choices"][0]["text"]
        if text != want["text"] or out["adapter_version"] != version:
            fail("%s completion: %r (version %s), reference greedy %r" %
                 (name, text, out.get("adapter_version"), want["text"]))
        print("ok - %s: temperature-0 completion equals the reference greedy tokens" % name)

        prompt = "Once upon a time"
        cli = subprocess.run([slorad, "generate", "--model", "models/stories260K.bin",
                              "--tokenizer", "models/tok512.bin", "--adapter",
                              fixture_dir + "/" + ent["file"], "--temperature", "0", "-n", "16",
                              "--prompt", prompt], capture_output=True, text=True)
        if cli.returncode:
            fail("%s: slorad generate failed: %s" % (name, cli.stderr))
        status, out = post(url + "/v1/completions", {"model": ident, "prompt": prompt,
                                                     "temperature": 0, "max_tokens": 16})
        if status != 200 or out["choices"][0]["text"] != cli.stdout[:-1]:
            fail("%s: completion %r, slorad generate --adapter %r" %
                 (name, out["choices"][0]["text"] if status == 200 else out, cli.stdout))
        print("ok - %s: completion equals `slorad generate --adapter` (%r)" % (name, cli.stdout[:-1]))


def cmd_storm(url, file_a, file_b, swaps, clients, mix_file=None, base_id=None):
    ident = "storm/one"
    body = {"model": ident, "prompt": "Once upon a time", "temperature": 0, "max_tokens": 24}
    version_of = lambda out: out.get("adapter_version")  # noqa: E731
    if mix_file:
        other = put_adapter(url, "storm/other", mix_file)
        body["model"] = base_id
        body["adapters"] = [{"id": ident, "weight": 1.5}, {"id": "storm/other", "weight": 0.5}]

        def version_of(out):
            ads = out.get("adapters") or [{}, {}]
            if [a.get("id") for a in ads] != [ident, "storm/other"] or \
                    ads[1].get("version") != other:
                return None
            return ads[0].get("version")
    files = [file_a, file_b]
    want = {}
    for path in files:
        version = put_adapter(url, ident, path)
        status, out = post(url + "/v1/completions", body)
        if status != 200 or version_of(out) != version:
            fail("storm baseline: %d %s" % (status, out))
        want[version] = out["choices"][0]["text"]
    if len(set(want.values())) != 2:
        fail("storm: the two versions give the same text; the test would prove nothing")
    print("ok - storm baseline: two versions, two different temperature-0 texts")

    stop = threading.Event()
    errors = []
    counts = {v: 0 for v in want}

    def client():
        while not stop.is_set():
            status, out = post(url + "/v1/completions", body)
            if status != 200:
                errors.append("status %d: %s" % (status, out))
                return
            v = version_of(out)
            if v not in want or out["choices"][0]["text"] != want[v]:
                errors.append("version %s gave %r" % (v, out["choices"][0]["text"]))
                return
            counts[v] += 1

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for i in range(swaps):
        put_adapter(url, ident, files[i % 2])
    stop.set()
    for t in threads:
        t.join()
    if errors:
        fail("storm: " + errors[0])
    total = sum(counts.values())
    if total < clients:
        fail("storm: only %d responses" % total)
    print("ok - storm%s: %d swaps under %d clients, %d responses, each matches its version "
          "(%s)" % (" of mixes" if mix_file else "", swaps, clients, total,
                    ", ".join("%s: %d" % kv for kv in counts.items())))
    last = files[(swaps - 1) % 2] if swaps else file_b
    status, out = post(url + "/v1/completions", body)
    with open(last, "rb") as f:
        final = hashlib.sha256(f.read()).hexdigest()[:16]
    if status != 200 or version_of(out) != final or out["choices"][0]["text"] != want[final]:
        fail("storm: the request after the swaps is not on the final version %s: %s"
             % (final, out))
    print("ok - storm: the next request runs on the final version")


def main():
    if len(sys.argv) == 6 and sys.argv[1] == "fixtures":
        cmd_fixtures(*sys.argv[2:6])
    elif len(sys.argv) in (7, 9) and sys.argv[1] == "storm":
        cmd_storm(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]),
                  *sys.argv[7:9])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
