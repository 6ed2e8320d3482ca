#!/usr/bin/env python3
"""Chat-template golden test: python3-jinja2 (the reference, with Hugging
Face's settings) against slorad's engine (tests/template/tmpl_render.c).

Every real template in tests/template/templates/ is rendered with every
conversation of tests/template/conversations.json, and so are mutated
copies of each template (changed literals, renamed variables, whitespace
control toggled, filters swapped, blocks reordered, operators flipped...)
made with a fixed seed, so that recognising a template's format cannot
pass. For each render:
  - jinja2 renders: ours must give the same bytes, or (mutations only)
    refuse with SLORA_EUNSUPPORTED, which is counted;
  - jinja2 fails to compile: ours must fail to parse;
  - raise_exception(msg): ours must fail with "raise_exception: msg";
  - any other jinja2 error: ours must fail too.
The real templates must all render (no unsupported). Exit 1 on any
mismatch; the summary line is "template: N passed, M failed".
"""
import argparse
import json
import os
import random
import re
import subprocess
import sys
import time
from datetime import datetime

os.environ["TZ"] = "UTC"
time.tzset()

import jinja2  # noqa: E402
from jinja2 import nodes  # noqa: E402
from jinja2.exceptions import TemplateError, TemplateSyntaxError  # noqa: E402
from jinja2.ext import Extension, loopcontrols  # noqa: E402
from jinja2.sandbox import ImmutableSandboxedEnvironment  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NOW = 1721952000  # 2024-07-26 00:00:00 UTC


class Generation(Extension):
    """HF's AssistantTracker tag ({% generation %}), rendering its body."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(["name:endgeneration"], drop_needle=True)
        return nodes.CallBlock(self.call_method("_render", []), [], [], body).set_lineno(lineno)

    def _render(self, caller):
        return caller()


class Raised(Exception):
    pass


def hf_environment():
    """transformers' _compile_jinja_template environment."""

    def raise_exception(message):
        raise TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    def strftime_now(fmt):
        return datetime.fromtimestamp(NOW).strftime(fmt)

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[Generation, loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    return env


def reference(env, src, contexts):
    """[(kind, text)] per context: ok/out, parse/msg, raise/msg, error/msg."""
    try:
        tmpl = env.from_string(src)
    except TemplateSyntaxError as e:
        return [("parse", str(e))] * len(contexts)
    except Exception as e:  # compile-time errors of other kinds
        return [("parse", f"{type(e).__name__}: {e}")] * len(contexts)
    out = []
    for ctx in contexts:
        try:
            out.append(("ok", tmpl.render(**ctx)))
        except TemplateError as e:
            # raise_exception raises the base class itself.
            if type(e) is TemplateError:
                out.append(("raise", e.message))
            else:
                out.append(("error", f"{type(e).__name__}: {e}"))
        except RecursionError:
            out.append(("error", "RecursionError"))
        except Exception as e:
            out.append(("error", f"{type(e).__name__}: {e}"))
    return out


# ---- mutations -------------------------------------------------------------

TAG_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}", re.S)
STR_RE = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", re.S)
FILTERS = ["trim", "upper", "lower", "title", "capitalize", "string", "length", "list",
           "first", "last", "tojson", "safe", "default('x')", "replace('a', 'b')",
           "join(', ')", "int", "items", "reverse", "unique", "sort"]
OPS = [("==", "!="), ("!=", "=="), (" and ", " or "), (" or ", " and "), ("loop.first", "loop.last"),
       ("loop.last", "loop.first"), ("loop.index0", "loop.index"), ("is defined", "is not defined"),
       ("is not none", "is none"), ("true", "false"), ("false", "true"), (" + ", " ~ "),
       ("[1:]", "[:-1]"), ("[-1]", "[0]"), ("is string", "is mapping"), ("% 2", "% 3"),
       ("'system'", "'user'"), ("'user'", "'assistant'")]


def spans(regex, s):
    return [(m.start(), m.end()) for m in regex.finditer(s)]


def m_literal(s, r):
    """Change a string literal inside a tag."""
    cands = []
    for a, b in spans(TAG_RE, s):
        cands += [(a + x, a + y) for x, y in spans(STR_RE, s[a:b]) if y - x > 2]
    if not cands:
        return None
    a, b = r.choice(cands)
    body = s[a + 1:b - 1]
    k = r.randrange(len(body) + 1)
    while 0 < k < len(body) and body[k - 1] == "\\":
        k -= 1
    choice = r.randrange(4)
    if choice == 0:
        body = body[:k] + r.choice(["~X~", " ", "\\n", "é", "<|tok|>", "{x}"]) + body[k:]
    elif choice == 1:
        body = body.upper().replace("\\N", "\\n").replace("\\T", "\\t").replace("\\U", "\\u")
    elif choice == 2 and len(body) > 1 and not body.endswith("\\"):
        body = body[:-1] if not body[-2:-1] == "\\" else body
    else:
        body = body[::-1] if "\\" not in body else body + "!"
    return s[:a + 1] + body + s[b - 1:]


def m_rename(s, r):
    """Rename a variable the template assigns, everywhere it appears."""
    names = set(re.findall(r"\{%-?\s*(?:set|for)\s+([A-Za-z_]\w*)", s))
    names -= {"loop", "ns"}
    if not names:
        return None
    old = r.choice(sorted(names))
    new = old + "_" + r.choice(["v", "x2", "Ren"])
    return re.sub(r"\b%s\b" % re.escape(old), new, s)


def m_ws(s, r):
    """Toggle one whitespace-control marker."""
    cands = [m.start() for m in re.finditer(r"\{%|\{\{|\{#|%\}|\}\}|#\}", s)]
    if not cands:
        return None
    i = r.choice(cands)
    tok = s[i:i + 2]
    if tok[0] == "{":
        nxt = s[i + 2:i + 3]
        if nxt in "-+":
            return s[:i + 2] + s[i + 3:]
        return s[:i + 2] + r.choice(["-", "+" if tok == "{%" else "-"]) + s[i + 2:]
    prev = s[i - 1:i]
    if prev in "-+":
        return s[:i - 1] + s[i:]
    return s[:i] + r.choice(["-", "+" if tok == "%}" else "-"]) + s[i:]


def m_filter(s, r):
    """Swap a filter for another, or add one to a printed expression."""
    cands = [(m.start(1), m.end(1)) for m in re.finditer(r"\|\s*(\w+(?:\([^()]*\))?)", s)]
    if cands and r.random() < 0.7:
        a, b = r.choice(cands)
        return s[:a] + r.choice(FILTERS) + s[b:]
    prints = [m.end(1) for m in re.finditer(r"\{\{-?\s*([^{}]*?)\s*-?\}\}", s) if m.group(1)]
    if not prints:
        return None
    i = r.choice(prints)
    return s[:i] + " | " + r.choice(FILTERS) + s[i:]


def m_reorder(s, r):
    """Swap two adjacent lines, or two adjacent tags on one line."""
    lines = s.split("\n")
    if len(lines) > 3 and r.random() < 0.6:
        k = r.randrange(len(lines) - 1)
        lines[k], lines[k + 1] = lines[k + 1], lines[k]
        return "\n".join(lines)
    tags = spans(re.compile(r"\{\{.*?\}\}"), s)
    pairs = [(x, y) for x, y in zip(tags, tags[1:])]
    if not pairs:
        return None
    (a1, b1), (a2, b2) = r.choice(pairs)
    return s[:a1] + s[a2:b2] + s[b1:a2] + s[a1:b1] + s[b2:]


def m_layout(s, r):
    """New lines and indentation around a tag (lstrip/trim_blocks paths)."""
    cands = [m.start() for m in re.finditer(r"\{[%{#]", s)]
    if not cands:
        return None
    i = r.choice(cands)
    ins = r.choice(["\n", "\n    ", "  ", "\t\n", "\n\n  ", "{# note #}\n  ", "{#- note -#}"])
    return s[:i] + ins + s[i:]


def m_operator(s, r):
    """Flip an operator, a loop attribute, a constant or a role name."""
    cands = [(a, b) for a, b in OPS if a in s]
    if not cands:
        return None
    a, b = r.choice(cands)
    idx = [m.start() for m in re.finditer(re.escape(a), s)]
    i = r.choice(idx)
    return s[:i] + b + s[i + len(a):]


MUTATORS = [m_literal, m_rename, m_ws, m_filter, m_reorder, m_layout, m_operator]


def mutations(src, seed, count):
    r = random.Random(seed)
    out = []
    tries = 0
    while len(out) < count and tries < count * 20:
        tries += 1
        s = src
        for _ in range(r.randint(1, 3)):
            t = r.choice(MUTATORS)(s, r)
            if t is not None:
                s = t
        if s != src and s not in out:
            out.append(s)
    return out


# ---- comparison ------------------------------------------------------------

def run_ours(binary, jobs):
    p = subprocess.run([binary, "--now", str(NOW)], input=json.dumps(jobs).encode(),
                       capture_output=True, env=dict(os.environ, TZ="UTC"))
    if p.returncode != 0:
        sys.exit("tmpl_render failed (%d): %s" % (p.returncode, p.stderr.decode(errors="replace")))
    return json.loads(p.stdout)


def verdict(ref, ours, real):
    kind, text = ref
    if kind == "ok":
        if ours["ok"]:
            return "pass" if ours["out"] == text else "mismatch"
        if ours["code"] == "unsupported" and not real:
            return "unsupported"
        return "mismatch"
    if ours["ok"]:
        return "mismatch"
    if kind == "parse":
        return "pass" if ours["stage"] == "parse" else "mismatch"
    if kind == "raise":
        return "pass" if ours["diag"] == ("raise_exception: " + text)[:1023] else "mismatch"
    return "pass"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--mutations", type=int, default=12)
    ap.add_argument("--seed", type=int, default=20240726)
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()

    tdir = os.path.join(HERE, "templates")
    names = sorted(f for f in os.listdir(tdir) if f.endswith(".jinja"))
    with open(os.path.join(HERE, "conversations.json"), encoding="utf-8") as f:
        convs = json.load(f)
    contexts = [c["context"] for c in convs]
    env = hf_environment()

    cases = []  # (template name, mutation index or -1, source)
    for ti, name in enumerate(names):
        with open(os.path.join(tdir, name), encoding="utf-8", newline="") as f:
            src = f.read()
        cases.append((name, -1, src))
        for mi, m in enumerate(mutations(src, args.seed + ti, args.mutations)):
            cases.append((name, mi, m))

    jobs, refs, meta = [], [], []
    for name, mi, src in cases:
        rs = reference(env, src, contexts)
        for conv, ctx, rr in zip(convs, contexts, rs):
            jobs.append({"template": src, "context": ctx})
            refs.append(rr)
            meta.append((name, mi, conv["name"], src))
    results = run_ours(args.bin, jobs)
    if len(results) != len(jobs):
        sys.exit("tmpl_render returned %d results for %d jobs" % (len(results), len(jobs)))

    counts = {"pass": 0, "mismatch": 0, "unsupported": 0}
    ref_kinds = {}
    shown = 0
    unsupported = {}
    for (name, mi, conv, src), rr, ours in zip(meta, refs, results):
        v = verdict(rr, ours, mi < 0)
        counts[v] += 1
        ref_kinds[rr[0]] = ref_kinds.get(rr[0], 0) + 1
        if v == "unsupported":
            unsupported[ours["diag"]] = unsupported.get(ours["diag"], 0) + 1
        if v == "mismatch" and (shown < 8 or args.verbose):
            shown += 1
            print("MISMATCH %s%s [%s]" % (name, "" if mi < 0 else " mutation %d" % mi, conv))
            print("  template: %r" % src[:3000])
            print("  jinja2:   %r" % (rr,))
            print("  ours:     %r" % (ours,))
    real = [v for (n, mi, c, s), v in zip(meta, refs) if mi < 0]
    print("template: %d templates, %d mutations, %d conversations, %d renders; jinja2 outcomes %s"
          % (len(names), len(cases) - len(names), len(convs), len(jobs), ref_kinds))
    print("template: real templates rendered by jinja2: %d of %d"
          % (sum(1 for r in real if r[0] == "ok"), len(real)))
    for d, n in sorted(unsupported.items(), key=lambda x: -x[1]):
        print("template: unsupported x%d: %s" % (n, d))
    print("template: %d identical or refused alike, %d refused as unsupported (mutations), "
          "%d mismatched" % (counts["pass"], counts["unsupported"], counts["mismatch"]))
    print("template: %d passed, %d failed" % (counts["pass"] + counts["unsupported"],
                                               counts["mismatch"]))
    return 1 if counts["mismatch"] else 0


if __name__ == "__main__":
    sys.exit(main())
