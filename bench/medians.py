"""Medians of benchmark results: lines of `KEY... VALUE`, one file per run of a script.
Imported by the scripts' own reports (sys.path gets bench/), which add their ratios."""
import statistics


def report(path, width=34):
    """Prints every key's median with its runs; returns {key: median} and {key: [runs]}."""
    vals = {}
    for line in open(path):
        *key, v = line.split()
        vals.setdefault(" ".join(key), []).append(float(v))
    med = {k: statistics.median(v) for k, v in vals.items()}
    print("\nmedians:")
    for k, v in sorted(med.items()):
        d = 3 if v < 10 else 1  # CPU seconds and wall times want more than one decimal
        runs = ", ".join("%.*f" % (d, x) for x in vals[k])
        print("  %-*s %10.*f   (runs: %s)" % (width, k, d, v, runs))
    return med, vals
