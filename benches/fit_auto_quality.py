#!/usr/bin/env python3
"""Fits q:auto's prior (src/transform/quality.rs, auto_quality_prior) on the bandwidth corpus.

    IMAGO_BENCH_POINTS=/tmp/points.txt cargo bench --bench bandwidth      # fixed-quality points
    IMAGO_BENCH_CALIBRATE=/tmp/sample.txt cargo bench --bench bandwidth   # the sample's scores
    python3 benches/fit_auto_quality.py /tmp/points.txt /tmp/sample.txt [target]

Simulates one trial (the sample encoded at the prior's q70, then one step of `gain` score points
per quality step towards target + lenience) with the full-size scores and bytes interpolated
between the fixed-quality points, and prints per format the gains whose lenience puts the mean
delivered score on the target, ranked by bytes against the fixed-quality curve at equal p10.
Standard library only.
"""
import math
import sys
from collections import defaultdict

QS = [25, 35, 45, 55, 65, 75, 85, 95]
RANGE = {"avif": (25, 80), "jpeg": (35, 92), "webp": (35, 92), "jxl": (35, 92)}


def interp(x, xs, ys):
    pts = sorted(zip(xs, ys))
    if x <= pts[0][0]:
        return pts[0][1]
    for (x0, y0), (x1, y1) in zip(pts, pts[1:]):
        if x <= x1:
            return y0 + (x - x0) / max(x1 - x0, 1e-9) * (y1 - y0)
    return pts[-1][1]


def quantile(v, p):
    s = sorted(v)
    x = p * (len(s) - 1)
    i = int(math.floor(x))
    return s[i] + (x - i) * (s[min(i + 1, len(s) - 1)] - s[i])


def main():
    target = float(sys.argv[3]) if len(sys.argv) > 3 else 70.0
    full = defaultdict(dict)  # (pair, format) -> q -> (bytes, score)
    for line in open(sys.argv[1]):
        i, f, q, b, s = line.split()
        full[(int(i), f)][int(q)] = (float(b), float(s))
    sample = defaultdict(dict)  # (pair, format) -> q -> score
    for line in open(sys.argv[2]):
        i, f, q, s = line.split()
        sample[(int(i), f)][int(q)] = float(s)
    for f in ["jpeg", "webp", "avif", "jxl"]:
        pairs = sorted(i for (i, g) in full if g == f)
        score = lambda i, q: interp(q, QS, [full[(i, f)][x][1] for x in QS])
        size = lambda i, q: math.exp(interp(q, QS, [math.log(full[(i, f)][x][0]) for x in QS]))
        curve = []
        for q in QS:
            s = [full[(i, f)][q][1] for i in pairs]
            curve.append((sum(s) / len(s), quantile(s, 0.1), sum(full[(i, f)][q][0] for i in pairs)))
        q70 = round(interp(target, [c[0] for c in curve], QS))
        lo, hi = RANGE[f]

        def run(gain, lenience):
            qs = {}
            for i in pairs:
                if sample[(i, f)]:
                    m = interp(q70, QS, [sample[(i, f)][x] for x in QS])
                    step = max(-25.0, min(25.0, (target + lenience - m) / gain))
                else:  # too small for a sample: the variant itself, no lenience
                    step = max(-25.0, min(25.0, (target - score(i, q70)) / gain))
                qs[i] = min(max(round(q70 + step), lo), hi)
            s = [score(i, qs[i]) for i in pairs]
            b = sum(size(i, qs[i]) for i in pairs)
            mean, p10 = sum(s) / len(s), quantile(s, 0.1)
            at_mean = interp(mean, [c[0] for c in curve], [c[2] for c in curve])
            at_p10 = interp(p10, [c[1] for c in curve], [c[2] for c in curve])
            return mean, p10, b / at_mean, b / at_p10

        rows = []
        for gain in [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.2, 1.4]:
            best = min((abs(run(gain, l / 4)[0] - target), l / 4) for l in range(-32, 33))
            mean, p10, rm, rp = run(gain, best[1])
            rows.append((rp, gain, best[1], mean, p10, rm))
        print(f"{f}: q70 {q70}")
        for rp, gain, len_, mean, p10, rm in sorted(rows)[:4]:
            print(f"  gain {gain:.1f} lenience {len_:+.2f}: mean {mean:.1f} p10 {p10:.1f}, "
                  f"bytes vs curve at equal mean {rm:.3f}, at equal p10 {rp:.3f}")


if __name__ == "__main__":
    main()
