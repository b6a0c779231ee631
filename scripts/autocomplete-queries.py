#!/usr/bin/env python3
"""Writes a fixed, seeded mix of autocomplete query strings (URL query part) drawn from an extraction file:
keystroke prefixes of names (1-6 letters), whole names, first + last names, names with one typo, organisation
and city words, some with filters. Usage: autocomplete-queries.py EXTRACTION.txt > queries.txt"""
import random, sys, unicodedata, urllib.parse

rows = []
with open(sys.argv[1], encoding="utf-8") as f:
    next(f)
    for i, line in enumerate(f):
        cols = line.rstrip("\n").split("|")
        if len(cols) == 31 and i % 7 == 0:
            rows.append(cols)
rng = random.Random(535)

def fold(s):
    return "".join(c for c in unicodedata.normalize("NFD", s) if unicodedata.category(c) != "Mn").lower()

def typo(w):
    if len(w) < 5:
        return w
    i = rng.randrange(1, len(w) - 1)
    return w[:i] + w[i + 1] + w[i] + w[i + 2:]

out = []
for _ in range(50000):
    r = rng.choice(rows)
    last, first, org, city = r[9], r[10], r[18], r[27].split(" ", 1)[-1]
    kind = rng.randrange(8)
    if kind <= 2 and last:
        q = fold(last)[: rng.randint(1, 6)]
    elif kind == 3 and last:
        q = fold(last)
    elif kind == 4 and last and first:
        q = f"{fold(first)} {fold(last)[: rng.randint(2, 5)]}"
    elif kind == 5 and last:
        q = typo(fold(last))
    elif kind == 6 and org:
        q = " ".join(fold(org).split()[:2])
    else:
        q = fold(city)[: rng.randint(3, 8)] if city else "paris"
    params = {"q": q, "limit": "8"}
    if rng.random() < 0.2:
        params["type"] = rng.choice(["PER", "ORG"])
    if rng.random() < 0.1 and r[29]:
        params["dept"] = r[29]
    out.append(urllib.parse.urlencode(params))
print("\n".join(out))
