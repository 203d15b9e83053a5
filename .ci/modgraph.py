#!/usr/bin/env python3
# Run from the repository: python3 .ci/modgraph.py src [depth]; exits 1 on a cycle or an import of cli.
"""The crate's module import graph: which top-level module's files name which
other's items (`crate::x`, `super::` resolved), its cycles, and imports of cli."""
import os, re, sys, itertools
root = sys.argv[1] if len(sys.argv) > 1 else "src"
depth = int(sys.argv[2]) if len(sys.argv) > 2 else 1
edges = {}
def modpath(path):
    rel = os.path.relpath(path, root)[:-3].split(os.sep)
    if rel[-1] in ("mod", "lib", "main"):
        rel = rel[:-1]
    return rel
for dp, _, fs in os.walk(root):
    for f in fs:
        if not f.endswith(".rs"): continue
        p = os.path.join(dp, f)
        me = modpath(p)
        if not me: continue
        text = open(p).read()
        # drop line comments and #[cfg(test)] tails
        text = re.sub(r"//[^\n]*", "", text)
        cut = text.find("#[cfg(test)]")
        if cut >= 0: text = text[:cut]
        if me[-1] == "tests": continue
        src = tuple(me[:depth])
        for m in re.finditer(r"\bcrate::([a-z_]+(?:::[a-z_]+)*)", text):
            tgt = tuple(m.group(1).split("::")[:depth])
            edges.setdefault(src, set()).add(tgt)
        # super:: from a file: parent of its module (mod.rs files: their own parent)
        for m in re.finditer(r"\bsuper::((?:super::)*)([a-z_]+(?:::[a-z_]+)*)", text):
            ups = 1 + m.group(1).count("super::")
            base = me[:-ups] if len(me) >= ups else []
            tgt = tuple((base + m.group(2).split("::"))[:depth])
            edges.setdefault(src, set()).add(tgt)
nodes = set(edges) | {t for ts in edges.values() for t in ts}
# keep only edges to known modules (crate paths that are modules)
known = set()
for dp, _, fs in os.walk(root):
    for f in fs:
        if f.endswith(".rs"):
            mp = modpath(os.path.join(dp, f))
            if mp: known.add(tuple(mp[:depth]))
g = {n: {t for t in edges.get(n, ()) if t in known and t != n and not (t[:len(n)] == n)} for n in known}
# Tarjan SCC
index = {}; low = {}; stack = []; on = set(); sccs = []; i = [0]
def sc(v):
    index[v] = low[v] = i[0]; i[0] += 1; stack.append(v); on.add(v)
    for w in g[v]:
        if w not in index: sc(w); low[v] = min(low[v], low[w])
        elif w in on: low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        c = []
        while True:
            w = stack.pop(); on.discard(w); c.append(w)
            if w == v: break
        sccs.append(c)
sys.setrecursionlimit(10000)
for v in sorted(known):
    if v not in index: sc(v)
bad = 0
for c in sccs:
    if len(c) > 1:
        bad += 1
        print("cycle:", " ".join("::".join(x) for x in sorted(c)))
for n in sorted(g):
    if n and n[0] not in ("cli", "main") and ("cli",) in {t[:1] for t in g[n]}:
        bad += 1
        print("imports cli:", "::".join(n))
print(f"{len(known)} modules, {sum(len(v) for v in g.values())} edges, {bad} problems")
sys.exit(1 if bad else 0)
