#!/usr/bin/env python3
"""Write the tokenizer benchmark's text: OUT gets at least 1 MiB of mixed
text (English prose and code, Cyrillic, CJK, Korean, Greek, Arabic and
Hindi, emoji with ZWJ sequences, numbers, URLs, JSON, whitespace runs and
contractions), the same bytes on every run.

    /usr/bin/python3 bench/tok_text.py OUT
"""
import sys

PARTS = [
    "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. ",
    "The quick brown fox jumps over the lazy dog; it's 3.14159 times faster than you'd think. ",
    "def tokenize(text: str) -> list[int]:\n    return [ord(c) for c in text if c.isalnum()]\n\n",
    "\u0421\u044a\u0435\u0448\u044c \u0436\u0435 \u0435\u0449\u0451 \u044d\u0442\u0438\u0445 "
    "\u043c\u044f\u0433\u043a\u0438\u0445 \u0431\u0443\u043b\u043e\u043a, \u0434\u0430 "
    "\u0432\u044b\u043f\u0435\u0439 \u0447\u0430\u044e. ",
    "\u6211\u60f3\u5728apple\u5de5\u4f5c1314151\u5929\uff5e \u65e5\u672c\u8a9e\u306e"
    "\u30c6\u30ad\u30b9\u30c8\u3082\u5c11\u3057\u3002 ",
    "\ud55c\uad6d\uc5b4 \ubb38\uc7a5\ub3c4 \ud3ec\ud568\ub429\ub2c8\ub2e4. ",
    "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac \u03b3\u03c1\u03ac\u03bc\u03bc\u03b1\u03c4"
    "\u03b1 12345. ",
    "\u0627\u0644\u0639\u0631\u0628\u064a\u0629 \u0646\u0635 \u0642\u0635\u064a\u0631. "
    "\u0939\u093f\u0928\u094d\u0926\u0940 \u092a\u093e\u0920\u0964 ",
    "Emoji \U0001f680\U0001f999\U0001f600\U0001f44d\U0001f3fd and ZWJ "
    "\U0001f468\u200d\U0001f469\u200d\U0001f467 sequences. ",
    "    indented    with   multiple   spaces\t\tand tabs\n",
    "URL https://example.com/path?q=1&r=2 e-mail someone@example.org ",
    "{\"key\": [1, 2, 3], \"value\": null, \"nested\": {\"a\": true}}\n",
    "I'm sure we'll see they've done it, he's right, you're wrong, I'd go. ",
]


def main():
    out, size, s = [], 0, 12345
    while size < (1 << 20):
        s = (s * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        part = PARTS[(s >> 33) % len(PARTS)]
        out.append(part)
        size += len(part.encode())
    with open(sys.argv[1], "w", encoding="utf-8") as f:
        f.write("".join(out))


if __name__ == "__main__":
    main()
