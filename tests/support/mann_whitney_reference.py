#!/usr/bin/env python3
"""Reference values for teal's Mann-Whitney U test, from scipy.

    python3 -m pip install scipy   # any recent scipy
    python3 tests/support/mann_whitney_reference.py > tests/data/mann_whitney.json

Each case is two samples (`green`, `blue`) and, for every alternative,
scipy.stats.mannwhitneyu(green, blue, alternative=..., method="asymptotic",
use_continuity=True): U of `green` and the p-value. The asymptotic method with
the tie correction and the continuity correction is the one teal implements
(Kayenta's judge uses the same normal approximation); scipy's "auto" would
switch to the exact distribution for small samples without ties. The cases are
fixed (a seeded generator and hand-written ones), ties included; the output is
committed beside this script, and the Rust test reads it.
"""
import json
import sys

import numpy as np
import scipy
from scipy.stats import mannwhitneyu

rng = np.random.default_rng(20261202)
cases = []


def case(name, green, blue):
    green = [float(v) for v in green]
    blue = [float(v) for v in blue]
    out = {"name": name, "green": green, "blue": blue}
    for alt in ("two-sided", "greater", "less"):
        r = mannwhitneyu(green, blue, alternative=alt, method="asymptotic", use_continuity=True)
        out[alt] = {"u": float(r.statistic), "p": float(r.pvalue)}
    cases.append(out)


# Hand-written: ties, identical samples, one side all above, tiny samples.
case("identical", [1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
case("all tied", [7, 7, 7, 7], [7, 7, 7])
case("green above", [10, 11, 12, 13, 14, 15], [1, 2, 3, 4, 5, 6])
case("green below", [1, 2, 3], [4, 5, 6, 7])
case("heavy ties", [0, 0, 0, 1, 1, 2], [0, 1, 1, 1, 2, 2, 2])
case("one each", [2], [1])
case("5xx shares with zeros", [0, 0, 0.01, 0.02, 0, 0.03, 0.05, 0.04], [0, 0, 0, 0.01, 0, 0, 0.01, 0])
case("integers, ties across", [3, 3, 4, 4, 5, 5, 6], [2, 3, 3, 4, 4, 4])
# Seeded: normal and lognormal samples of several sizes and shifts, some rounded (ties).
for i, (n1, n2, shift, scale, rounded) in enumerate([
    (5, 5, 0.0, 1.0, False),
    (8, 12, 0.5, 1.0, False),
    (10, 10, 1.0, 1.0, True),
    (12, 8, -0.7, 2.0, False),
    (15, 15, 0.0, 1.0, True),
    (20, 20, 0.3, 1.0, False),
    (20, 25, 2.0, 0.5, True),
    (30, 30, 0.0, 3.0, True),
    (40, 35, 0.25, 1.0, False),
    (50, 50, -0.1, 1.0, True),
    (60, 60, 0.5, 2.0, True),
    (3, 40, 1.5, 1.0, False),
    (100, 100, 0.1, 1.0, True),
    (25, 60, 0.0, 1.0, True),
]):
    g = rng.normal(shift, scale, n1)
    b = rng.normal(0.0, scale, n2)
    if rounded:
        g, b = np.round(g, 1), np.round(b, 1)
    case(f"seeded normal {i}: n={n1},{n2} shift={shift}", g, b)
for i, (n1, n2, factor) in enumerate([(20, 20, 1.0), (30, 30, 2.0), (60, 60, 1.2)]):
    b = rng.lognormal(np.log(0.05), 0.5, n2)
    g = rng.lognormal(np.log(0.05 * factor), 0.5, n1)
    case(f"seeded latency {i}: n={n1},{n2} x{factor}", np.round(g, 3), np.round(b, 3))

json.dump(
    {"generator": "tests/support/mann_whitney_reference.py", "scipy": scipy.__version__, "cases": cases},
    sys.stdout,
    indent=1,
)
print()
