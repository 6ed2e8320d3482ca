#!/usr/bin/env python3
"""Regenerate tests/template_cases.h, the construct table of
tests/check_template.c: each case's expected text is what python3-jinja2
renders with Hugging Face's settings (ref_render.hf_environment), never
what slorad's engine prints. Run: /usr/bin/python3 tests/template/gen_check_cases.py
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_render  # noqa: E402  (sets TZ=UTC, fixed NOW)

CTX = {"name": "wörld", "n": 3, "f": 2.5, "flag": True, "none_v": None,
       "items": [3, 1, 2], "words": ["b", "A", "a"], "d": {"b": 1, "a": [1, 2.5, "é\"\n"], "c": None},
       "messages": [{"role": "system", "content": " sys "}, {"role": "user", "content": "hi"},
                    {"role": "assistant", "content": "yo"}, {"role": "user", "content": [{"type": "text", "text": "part"}]}],
       "add_generation_prompt": True, "bos_token": "<s>", "eos_token": "</s>"}

CASES = [
    # output, comments, whitespace control, trim_blocks, lstrip_blocks
    ("text-print", "Hello {{ name }}! {{ n }} {{ f }} {{ flag }} {{ none_v }}"),
    ("comment-ws", "a {#- c -#} b\n  {# line #}\nc {{- ' d ' -}} e"),
    ("trim-lstrip", "x\n  {% if true %}\n  y\n  {% endif %}\nz\n{%+ if true %}k{% endif +%}\nw"),
    ("keep-trailing-newline", "{{ 1 }}\n{{ 2 }}\n\n"),
    # control flow
    ("if-elif-else", "{% for v in [0, 1, 2] %}{% if v == 0 %}zero{% elif v == 1 %}one{% else %}many{% endif %};{% endfor %}"),
    ("for-loop-vars", "{% for x in items %}{{ loop.index }}{{ loop.index0 }}{{ loop.revindex }}{{ loop.revindex0 }}{{ loop.first }}{{ loop.last }}{{ loop.length }}{{ loop.cycle('a', 'b') }}{{ loop.previtem }}|{% endfor %}"),
    ("for-else-filter", "{% for x in [] %}x{% else %}empty{% endfor %} {% for x in items if x > 1 %}{{ x }}{{ loop.length }}{% endfor %}"),
    ("for-unpack-items", "{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}{% for k, v in d|items %}{{ k }}{% endfor %}"),
    ("break-continue", "{% for i in range(10) %}{% if i == 1 %}{% continue %}{% endif %}{% if i == 4 %}{% break %}{% endif %}{{ i }}{% endfor %}"),
    ("loop-scope", "{% set x = 1 %}{% for i in [1, 2] %}{{ x }}{% set x = i * 10 %}{{ x }}{% endfor %}{{ x }}{% if true %}{% set y = 5 %}{% endif %}{{ y }}"),
    ("set-namespace", "{% set ns = namespace(a=1, s='') %}{% for m in messages %}{% set ns.a = ns.a + 1 %}{% set ns.s = ns.s ~ m.role[0] %}{% endfor %}{{ ns.a }} {{ ns.s }}"),
    ("set-tuple-block", "{% set a, b = [1, 'two'] %}{{ a }}{{ b }}{% set blk %}[{{ a }}]{% endset %}{{ blk }}"),
    ("macro", "{% macro tag(name, v='d') %}<{{ name }}:{{ v }}:{{ n }}>{% endmacro %}{{ tag('a') }}{{ tag('b', v=2) }}{{ tag(name='c') }}"),
    ("with-filter-block", "{% with a = 2, b = 'x' %}{{ a }}{{ b }}{% endwith %}{% filter upper %}up {{ name|length }}{% endfilter %}"),
    # literals and access
    ("literals", "{{ 'it\\'s' }} {{ \"q\\\"\" }} {{ 'tab\\tnl\\nu\\u00e9x\\x41' }} {{ 1_000 }} {{ 0x1f }} {{ 1e3 }} {{ 0.5 if false else 1.5 }} {{ [1, 'a', none, true] }} {{ {'k': [1, (2,)]} }} {{ (1, 2) }} {{ () }}"),
    ("floats", "{{ 1/3 }} {{ 10/2 }} {{ 1e16 }} {{ 1e15 }} {{ 0.0001 }} {{ 0.00001 }} {{ 0.1 + 0.2 }} {{ -0.0 }} {{ 2.0 ** 0.5 }} {{ 123456789012345678.0 }}"),
    ("access", "{{ messages[1].role }} {{ messages[-1]['content'][0].text }} {{ d.a.1 }} {{ d['b'] }} {{ d.missing }}|{{ messages[9] }}|{{ d.get('b') }}{{ d.get('z', 'dz') }}"),
    ("slices", "{{ items[1:] }} {{ items[::-1] }} {{ items[:-1] }} {{ 'abcdef'[1:5:2] }} {{ 'héllo'[::-1] }} {{ name[1] }} {{ items[5:] }}"),
    # operators
    ("arithmetic", "{{ 7 // 2 }} {{ -7 // 2 }} {{ -7 % 3 }} {{ 7.5 % 2 }} {{ 2 ** 10 }} {{ 2 ** -1 }} {{ -2 ** 2 }} {{ 'ab' * 2 }} {{ [1] * 2 }} {{ 1 + 2 * 3 }} {{ (1 + 2) * 3 }} {{ 'a' ~ 1 ~ none }}"),
    ("comparisons", "{{ 1 < 2 < 3 }} {{ 1 == 1.0 }} {{ true == 1 }} {{ [1, 2] == [1, 2] }} {{ 'a' < 'b' }} {{ 'x' in 'axb' }} {{ 2 not in items }} {{ 'a' in d }} {{ not none_v }} {{ none_v or 'dflt' }} {{ n and 'yes' }}"),
    ("tests", "{{ name is string }} {{ n is number }} {{ n is integer }} {{ f is float }} {{ flag is boolean }} {{ d is mapping }} {{ items is sequence }} {{ missing is defined }} {{ missing is undefined }} {{ none_v is none }} {{ n is odd }} {{ 4 is even }} {{ 9 is divisibleby 3 }} {{ 'u' is equalto 'u' }} {{ 2 is in items }} {{ name is not none }} {{ missing is iterable }}"),
    ("undefined", "[{{ missing }}]{{ missing ~ 'x' }}{% if not missing %}F{% endif %}{{ missing|default('dv') }}{{ missing|length }}{{ missing|join }}{% for x in missing %}never{% endfor %}{{ none_v.attr }}"),
    # filters
    ("string-filters", "{{ '  x  '|trim }}|{{ 'xxaxx'|trim('x') }}|{{ 'wOrld'|upper }}|{{ 'HeLLo'|lower }}|{{ 'hello wORLD'|capitalize }}|{{ 'hello-world foo_bar (x'|title }}|{{ 'a-b-a'|replace('a', 'c') }}|{{ 'ab'|replace('', '-') }}|{{ 12|string }}|{{ '<a&\\'>'|e }}"),
    ("seq-filters", "{{ items|length }} {{ items|first }} {{ items|last }} {{ items|join('-') }} {{ items|sort }} {{ words|sort }} {{ words|sort(case_sensitive=true) }} {{ items|sort(reverse=true) }} {{ [1, 2, 2, 1]|unique|list }} {{ items|sum }} {{ items|reverse|list }} {{ 'abc'|list }} {{ d|list }}"),
    ("number-filters", "{{ '42'|int }} {{ '42.9'|int }} {{ 'x'|int }} {{ 'x'|int(7) }} {{ '2.5'|float }} {{ -3|abs }} {{ true|int }} {{ '1_000'|int }}"),
    ("select-map", "{{ messages|selectattr('role', 'equalto', 'user')|list|length }} {{ messages|rejectattr('role', 'equalto', 'user')|map(attribute='role')|join(',') }} {{ items|select('odd')|list }} {{ items|reject('odd')|list }} {{ ['a', 'b']|map('upper')|join }} {{ messages|map(attribute='missing', default='-')|join }}"),
    ("tojson", "{{ d|tojson }}\n{{ d|tojson(indent=2) }}\n{{ d|tojson(sort_keys=true) }} {{ 'é\\u2028'|tojson }} {{ 'é'|tojson(ensure_ascii=true) }} {{ [1, 2]|tojson(separators=(',', ':')) }} {{ none_v|tojson }} {{ 1.0|tojson }}"),
    ("indent", "{{ 'a\\nb\\n\\nc'|indent }}|{{ 'a\\nb'|indent(2, true) }}|{{ 'a\\n\\nb'|indent('> ', blank=true) }}"),
    ("default-filter", "{{ none_v|default('x') }} {{ ''|default('x') }} {{ ''|default('x', true) }} {{ 0|d('z', true) }}"),
    # methods
    ("str-methods", "{{ ' a '.strip() }}|{{ 'xax'.strip('x') }}|{{ '  a'.lstrip() }}|{{ 'a  '.rstrip() }}|{{ 'a b  c'.split() }}|{{ 'a,b,,c'.split(',') }}|{{ 'a,b,c'.split(',', 1) }}|{{ 'abc'.startswith('a') }}{{ 'abc'.endswith(('x', 'c')) }}|{{ 'they\\'re'.title() }}|{{ 'a-b'.replace('-', '+') }}|{{ ', '.join(['x', 'y']) }}|{{ 'Ab'.upper() }}{{ 'Ab'.lower() }}"),
    ("dict-methods", "{{ d.keys()|list }} {{ d.values()|list|length }} {% for k, v in d.items() %}{{ k }}{% endfor %}"),
    # globals
    ("globals", "{{ range(3)|list }} {{ range(1, 7, 2)|list }} {{ range(5, 0, -2)|list }} {{ dict(a=1, b='x') }} {{ strftime_now('%Y-%m-%d %H:%M %b %d') }}"),
    # a real-shaped template: system extraction, generation prompt
    ("chat-shape", "{{- bos_token }}{%- if messages[0]['role'] == 'system' %}{%- set sys = messages[0]['content']|trim %}{%- set messages = messages[1:] %}{%- endif %}[{{ sys }}]{%- for m in messages %}\n<|{{ m.role }}|>{{ m.content if m.content is string else m.content[0].text }}{{ eos_token if m.role == 'assistant' }}{%- endfor %}{%- if add_generation_prompt %}\n<|assistant|>{% endif %}"),
]


def c_str(s):
    out = []
    for b in s.encode("utf-8"):
        c = chr(b)
        if c == "\\":
            out.append("\\\\")
        elif c == '"':
            out.append('\\"')
        elif c == "\n":
            out.append("\\n")
        elif c == "\t":
            out.append("\\t")
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append('\\%03o' % b)
    return '"' + "".join(out) + '"'


def main():
    env = ref_render.hf_environment()
    lines = ["/* template_cases.h - generated by tests/template/gen_check_cases.py: each",
             " * expected text is python3-jinja2's rendering with Hugging Face's settings",
             " * (fixed clock %d, TZ=UTC). Do not edit by hand. */" % ref_render.NOW,
             "static const char template_case_context[] = %s;" % c_str(json.dumps(CTX, ensure_ascii=False)),
             "static const struct {", "    const char *name;", "    const char *src;",
             "    const char *want;", "} template_cases[] = {"]
    for name, src in CASES:
        try:
            want = env.from_string(src).render(**CTX)
        except Exception as e:
            sys.exit("case %s: %s" % (name, e))
        lines.append("    {%s,\n     %s,\n     %s}," % (c_str(name), c_str(src), c_str(want)))
    lines.append("};")
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "template_cases.h")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
