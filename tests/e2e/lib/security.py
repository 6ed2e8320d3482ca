#!/usr/bin/python3
"""security.py - security checks against a running daemon (tests/e2e/security_*.sh).

usage:
  security.py matrix PORT ADAPTER_A ADAPTER_B
      Tenants acme (key acme-key) and beta (beta-key), the admin (admin-key)
      and anonymous, over every endpoint and method: exactly the documented
      status; no response (status line, headers, body) to one tenant or to
      anonymous names another tenant's adapters, versions or sizes; a
      request on another tenant's existing adapter is answered exactly like
      one on an absent adapter (existence does not leak).
  security.py inputs PORT ADAPTER
      Path and name tricks, header injection, oversized numbers, deep
      nesting and duplicate keys in JSON: each a clean 4xx with the JSON
      error shape; the daemon keeps serving.
Prints one "ok - ..." line per check; exits 1 on the first failure."""
import hashlib
import http.client
import json
import re
import socket
import sys

sys.path.insert(0, __import__("os").path.dirname(__file__))
from raw import read_all  # noqa: E402

KEYS = {"acme": "acme-key", "beta": "beta-key", "admin": "admin-key", "anon": None}
N_CHECKS = 0


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def ok(msg):
    global N_CHECKS
    N_CHECKS += 1
    print("ok - " + msg)


def request(port, role, method, path, body=None, headers=None):
    """(status, headers dict lowercased, body bytes)."""
    h = dict(headers or {})
    if KEYS.get(role):
        h["Authorization"] = "Bearer " + KEYS[role]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request(method, path, body=body, headers=h)
    r = c.getresponse()
    data = r.read()
    hdrs = {k.lower(): v for k, v in r.getheaders()}
    c.close()
    return r.status, hdrs, data


# ---- matrix ---------------------------------------------------------------

def normalized(hdrs, body):
    """A response with per-request values (ids, dates, names) blanked."""
    text = body.decode("utf-8", "replace")
    text = re.sub(r'"(cmpl|req)-?[0-9a-f]+"', '"ID"', text)
    text = text.replace("secret", "NAME").replace("absent", "NAME")
    keep = {k: v for k, v in hdrs.items() if k not in ("date", "x-request-id")}
    return json.dumps(keep, sort_keys=True) + text


def revealed(secret, method, path, body, hdrs, data):
    """What of secret = (tenant, versions, sizes) the response shows beyond
    what the request itself sent, or None."""
    if not secret:
        return None
    tenant, versions, sizes = secret
    sent = path + (body or b"").decode("utf-8", "replace") if method != "PUT" else path
    # the request id is random hex: it can contain any digits by chance
    shown = {k: v for k, v in hdrs.items() if k != "x-request-id"}
    text = json.dumps(shown) + data.decode("utf-8", "replace")
    if tenant and tenant + "/" in text and tenant + "/" not in sent:
        return "tenant %s's adapter names" % tenant
    if tenant is None and re.search(r"(acme|beta)/", text) and not re.search(r"(acme|beta)/", sent):
        return "adapter names"
    if method == "PUT" and body:  # the caller's own upload: its version and size are its own
        own = (hashlib.sha256(body).hexdigest()[:16], len(body))
        versions = [v for v in versions if v != own[0]]
        sizes = [n for n in sizes if n != own[1]]
    for v in versions:
        if v in text:
            return "version " + v
    for n in sizes:
        if re.search(r"(?<![0-9.])%d(?![0-9.])" % n, text):
            return "size %d" % n
    return None


def cmd_matrix(port, file_a, file_b):
    blob_a = open(file_a, "rb").read()
    blob_b = open(file_b, "rb").read()
    # setup: each tenant stores "secret" (different files: different versions, sizes)
    st, _, body = request(port, "acme", "PUT", "/v1/adapters/acme/secret", blob_a)
    if st != 201:
        fail("acme uploads acme/secret: %d %s" % (st, body))
    ver_a = json.loads(body)["version"]
    st, _, body = request(port, "beta", "PUT", "/v1/adapters/beta/secret", blob_b)
    if st != 201:
        fail("beta uploads beta/secret: %d %s" % (st, body))
    ver_b = json.loads(body)["version"]
    # what each caller must never see: (the other tenant's name, versions, sizes)
    secrets = {
        "acme": ("beta", [ver_b], [len(blob_b)]),
        "beta": ("acme", [ver_a], [len(blob_a)]),
        "anon": (None, [ver_a, ver_b], [len(blob_a), len(blob_b)]),
    }

    own = {"acme": "acme", "beta": "beta"}
    completion = json.dumps({"model": "%s/secret", "prompt": "Once", "max_tokens": 2,
                             "temperature": 0})
    logits = json.dumps({"model": "%s/secret", "tokens": [1, 403]})

    def expect_adapter(role, tenant, ok_status):
        if role == "anon":
            return 401
        if role == "admin" or own.get(role) == tenant:
            return ok_status
        return 404

    cases = []  # (role, method, path, body, expected, label)
    for role in KEYS:
        anon401 = 401 if role == "anon" else None
        for m, p, exp in [("GET", "/healthz", 200), ("HEAD", "/healthz", 200),
                          ("GET", "/readyz", 200), ("HEAD", "/readyz", 200)]:
            cases.append((role, m, p, None, exp))
        cases.append((role, "GET", "/metrics",
                      None, {"anon": 401, "admin": 200}.get(role, 403)))
        cases.append((role, "HEAD", "/metrics", None, {"anon": 401, "admin": 200}.get(role, 403)))
        for p in ("/v1/models", "/v1/adapters"):
            cases.append((role, "GET", p, None, anon401 or 200))
            cases.append((role, "HEAD", p, None, anon401 or 200))
        for tenant in ("acme", "beta"):
            base = "/v1/adapters/%s/secret" % tenant
            cases.append((role, "GET", base, None, expect_adapter(role, tenant, 200)))
            cases.append((role, "HEAD", base, None, expect_adapter(role, tenant, 200)))
            cases.append((role, "GET", base + "/file", None, expect_adapter(role, tenant, 200)))
            cases.append((role, "PUT", base + "?dry_run=1", blob_a,
                          expect_adapter(role, tenant, 200)))
            for ep, tmpl in (("/v1/completions", completion), ("/v1/logits", logits)):
                cases.append((role, "POST", ep, (tmpl % tenant).encode(),
                              expect_adapter(role, tenant, 200)))
        for ep, body in (("/v1/tokenize", b'{"prompt":"Once"}'),
                         ("/v1/detokenize", b'{"tokens":[1,403]}'),
                         ("/v1/completions", b'{"model":"stories260K","prompt":"a","max_tokens":1}')):
            cases.append((role, "POST", ep, body, anon401 or 200))
        # wrong methods: 405 whatever the role (routing precedes auth)
        for m, p in (("POST", "/v1/adapters"), ("DELETE", "/v1/models"), ("PUT", "/healthz"),
                     ("GET", "/v1/completions"), ("PATCH", "/v1/adapters/acme/secret"),
                     ("POST", "/v1/adapters/beta/secret"), ("PUT", "/v1/adapters/beta/secret/file"),
                     ("DELETE", "/v1/tokenize")):
            cases.append((role, m, p, None, 405))
        for p in ("/", "/v1", "/v1/adapters/acme", "/v1/adapters/acme/secret/file/x", "/admin"):
            cases.append((role, "GET", p, None, 404))

    for role, m, p, body, exp in cases:
        st, hdrs, data = request(port, role, m, p, body)
        if st != exp:
            fail("%s %s as %s: expected %d, got %d %s" % (m, p, role, exp, st, data[:200]))
        if st == 405 and "allow" not in hdrs:
            fail("%s %s: 405 without Allow" % (m, p))
        if st == 401 and hdrs.get("www-authenticate") != "Bearer":
            fail("%s %s: 401 without WWW-Authenticate: Bearer" % (m, p))
        leak = revealed(secrets.get(role), m, p, body, hdrs, data)
        if leak:
            fail("%s %s as %s reveals %s: %s" % (m, p, role, leak, data[:300]))
    ok("%d role x endpoint x method cases answer exactly as documented" % len(cases))
    ok("no response to a tenant or anonymous names another tenant's adapters, versions or sizes")

    # existence does not leak: another tenant's adapter == an absent one
    for role, other in (("acme", "beta"), ("beta", "acme")):
        for m, suffix, body in (("GET", "", None), ("HEAD", "", None), ("GET", "/file", None),
                                ("PUT", "", blob_a), ("DELETE", "", None),
                                ("PUT", "?dry_run=1", blob_a)):
            got = []
            for name in ("secret", "absent"):
                st, hdrs, data = request(port, role, m, "/v1/adapters/%s/%s%s" % (other, name, suffix),
                                         body, {"If-None-Match": "*"} if m == "PUT" else None)
                got.append((st, normalized(hdrs, data)))
            if got[0] != got[1]:
                fail("%s %s/secret%s as %s differs from an absent adapter: %r vs %r" %
                     (m, other, suffix, role, got[0], got[1]))
        for ep, tmpl in (("/v1/completions", completion), ("/v1/logits", logits)):
            got = []
            for name in ("secret", "absent"):
                body = (tmpl % other).replace("/secret", "/" + name).encode()
                st, hdrs, data = request(port, role, "POST", ep, body)
                got.append((st, normalized(hdrs, data)))
            if got[0] != got[1]:
                fail("POST %s on %s/secret as %s differs from an absent adapter" % (ep, other, role))
    ok("another tenant's adapter is indistinguishable from an absent one (every method, inference too)")
    st, _, _ = request(port, "acme", "GET", "/v1/adapters/beta/secret", None)
    st2, _, _ = request(port, "beta", "GET", "/v1/adapters/beta/secret", None)
    if (st, st2) != (404, 200):
        fail("beta/secret survived the other tenant's DELETE/PUT attempts: %d %d" % (st, st2))
    ok("beta/secret untouched by acme's PUT and DELETE attempts")
    for role, path, want in (("anon", "/v1/adapters/beta/secret", 401),
                             ("beta", "/v1/adapters/beta/secret", 204),
                             ("admin", "/v1/adapters/acme/secret", 204),
                             ("admin", "/v1/adapters/acme/secret", 404)):
        st, _, data = request(port, role, "DELETE", path)
        if st != want:
            fail("DELETE %s as %s: expected %d, got %d %s" % (path, role, want, st, data[:200]))
    ok("DELETE: anonymous 401, own tenant 204, admin 204 on any tenant, then 404")


# ---- inputs -----------------------------------------------------------------

def raw_exchange(port, data, wait=2.0):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(data)
    out = read_all(s, wait)
    s.close()
    return out


def clean_4xx(label, st, hdrs, data, allowed=None):
    if not 400 <= st <= 499 or (allowed and st not in allowed):
        fail("%s: expected a 4xx%s, got %d %s" % (label, " in %s" % (allowed,) if allowed else "",
                                                  st, data[:200]))
    try:
        err = json.loads(data)["error"]
        assert err["type"] and err["code"] and err["message"]
    except Exception:
        fail("%s: %d without the JSON error shape: %r" % (label, st, data[:200]))
    if hdrs.get("content-type") != "application/json":
        fail("%s: error Content-Type %r" % (label, hdrs.get("content-type")))
    ok("%s -> %d %s" % (label, st, json.loads(data)["error"]["code"]))


def cmd_inputs(port, adapter):
    blob = open(adapter, "rb").read()
    long64 = "a" * 64
    names = [
        ("..", 400), ("%2e%2e", 400), ("a%2fb", 400), ("a%2Fb", 400), ("a%00b", 400),
        ("%00", 400), ("a%c0%afb", 400), ("%c0%ae%c0%ae", 400), ("%e0%80%ae", 400),
        ("a%5cb", 400), (".", 400), ("...", 400), (".hidden", 400), ("-lead", 400),
        ("UPPER", 400), ("a b", None), ("a%20b", 400), (long64 + "b", 400), ("x" * 5000, None),
        ("a%0d%0aSet-Cookie:%20x=1", 400), ("caf%c3%a9", 400), ("a;b", 400), ("a~b", 400),
    ]
    for name, want in names:
        for path in ("/v1/adapters/acme/%s" % name, "/v1/adapters/%s/x" % name):
            if name == "a b":  # a raw space ends the request target: malformed request line
                out = raw_exchange(port, ("PUT %s HTTP/1.1\r\nContent-Length: 0\r\n\r\n" % path).encode())
                st = int(out.split(b" ")[1]) if out.startswith(b"HTTP/1.1 ") else 0
                if st != 400:
                    fail("raw space in a name: %r" % out[:100])
                ok("raw space in %s -> 400" % path[:40])
                continue
            st, hdrs, data = request(port, "admin", "PUT", path, blob)
            label = "PUT %s" % (path if len(path) < 70 else path[:60] + "...(%d)" % len(path))
            clean_4xx(label, st, hdrs, data, [want] if want else [400, 404, 414, 431])
            st, hdrs, data = request(port, "admin", "GET", path)
            clean_4xx("GET " + label[4:], st, hdrs, data, [want] if want else [400, 404, 414, 431])
    st, _, data = request(port, "admin", "GET", "/v1/adapters")
    if st != 200 or json.loads(data)["data"]:
        fail("a trick name was stored: %s" % data[:300])
    ok("nothing was stored by any trick name")

    # header injection: CR/LF in names and header values never reach a response header
    for req in (b"GET /v1/adapters/acme/x\r\nSet-Cookie: a=1 HTTP/1.1\r\n\r\n",
                b"GET /v1/adapters/acme/x%0d%0aSet-Cookie:%20a=1 HTTP/1.1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nX-Request-Id: a\rSet-Cookie: b=1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nX-Request-Id: a\nSet-Cookie: b=1\r\n\r\n",
                b"GET /healthz HTTP/1.1\r\nX-Request-Id: a\x00b\r\n\r\n"):
        out = raw_exchange(port, req)
        head = out.split(b"\r\n\r\n", 1)[0]
        if b"set-cookie" in head.lower():
            fail("header injection reached the response: %r" % head)
        m = re.match(rb"HTTP/1\.1 (\d+)", out)
        if not m:
            fail("no response to %r" % req)
        st = int(m.group(1))
        if st != 200 and not 400 <= st <= 499:
            fail("injection attempt %r -> %d" % (req[:50], st))
        for line in head.split(b"\r\n")[1:]:
            if b"\r" in line or b"\n" in line or b"\x00" in line or b":" not in line:
                fail("malformed response header line %r" % line)
    ok("CR/LF/NUL in the path or X-Request-Id never produce a response header")
    st, hdrs, _ = request(port, "admin", "GET", "/healthz", headers={"X-Request-Id": "x" * 1000})
    if len(hdrs.get("x-request-id", "")) > 128:
        fail("an overlong X-Request-Id was echoed (%d bytes)" % len(hdrs["x-request-id"]))
    ok("an overlong X-Request-Id is not echoed (%d bytes back)" % len(hdrs.get("x-request-id", "")))

    # JSON: oversized numbers, deep nesting, duplicate keys, wrong types
    m = '"model":"stories260K"'
    bodies = [
        ("max_tokens 1e400", '{%s,"prompt":"a","max_tokens":1e400}' % m),
        ("max_tokens 2^64", '{%s,"prompt":"a","max_tokens":18446744073709551616}' % m),
        ("max_tokens -2^63", '{%s,"prompt":"a","max_tokens":-9223372036854775808}' % m),
        ("max_tokens 1.5", '{%s,"prompt":"a","max_tokens":1.5}' % m),
        ("temperature 1e308", '{%s,"prompt":"a","temperature":1e308}' % m),
        ("temperature -0.5", '{%s,"prompt":"a","temperature":-0.5}' % m),
        ("top_p NaN-ish", '{%s,"prompt":"a","top_p":NaN}' % m),
        ("seed 2^64", '{%s,"prompt":"a","seed":18446744073709551616}' % m),
        ("logprobs 99", '{%s,"prompt":"a","logprobs":99}' % m),
        ("token id 2^40", '{%s,"prompt":[1099511627776]}' % m),
        ("token id -1", '{%s,"prompt":[-1]}' % m),
        ("n 2", '{%s,"prompt":"a","n":2}' % m),
        ("duplicate key", '{%s,"prompt":"a","prompt":"b"}' % m),
        ("duplicate model", '{%s,%s,"prompt":"a"}' % (m, m)),
        ("nested 100000 arrays", '{%s,"prompt":%s%s}' % (m, "[" * 100000, "]" * 100000)),
        ("nested 100000 objects", '{%s,"x":%s%s}' % (m, '{"a":' * 100000, "}" * 100000)),
        ("prompt as object", '{%s,"prompt":{"a":1}}' % m),
        ("model as number", '{"model":7,"prompt":"a"}'),
        ("not JSON", 'model=stories260K&prompt=a'),
        ("truncated", '{%s,"prompt":"a"' % m),
        ("invalid UTF-8", b'{"model":"stories260K","prompt":"\xc0\xae"}'),
        ("NUL escape in model", '{"model":"stories260K\\u0000x","prompt":"a"}'),
        ("top-level array", '[1,2,3]'),
    ]
    for label, body in bodies:
        data = body if isinstance(body, bytes) else body.encode()
        # completion-only fields are ignored by /v1/logits; the rest apply to both
        both = not re.match(r"(max_tokens|temperature|top_p|seed|logprobs|n) ", label)
        for ep in ("/v1/completions", "/v1/logits") if both else ("/v1/completions",):
            st, hdrs, out = request(port, "admin", "POST", ep, data)
            clean_4xx("%s %s" % (ep, label), st, hdrs, out)
    for ep, body in (("/v1/tokenize", '{"prompt":"a","prompt":"b"}'),
                     ("/v1/tokenize", '{"prompt":"a","add_bos":1e999}'),
                     ("/v1/detokenize", '{"tokens":[18446744073709551616]}'),
                     ("/v1/detokenize", '{"tokens":%s1%s}' % ("[" * 50000, "]" * 50000))):
        st, hdrs, out = request(port, "admin", "POST", ep, body.encode())
        clean_4xx("%s %s" % (ep, body[:40]), st, hdrs, out)
    st, _, _ = request(port, "admin", "GET", "/healthz")
    if st != 200:
        fail("daemon not serving after the hostile inputs")
    ok("daemon still serving after every hostile input")


def main():
    if len(sys.argv) == 5 and sys.argv[1] == "matrix":
        cmd_matrix(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif len(sys.argv) == 4 and sys.argv[1] == "inputs":
        cmd_inputs(int(sys.argv[2]), sys.argv[3])
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print("security %s: %d checks passed" % (sys.argv[1], N_CHECKS))


if __name__ == "__main__":
    main()
