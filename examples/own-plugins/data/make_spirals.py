"""Writes train.csv (600 points) and test.csv (300 points): three interleaved spiral arms in
the plane, one class per arm, with a little angular noise. Run: python3 make_spirals.py"""
import math
import random

random.seed(7)


def make(n_per_arm):
    rows = []
    for arm in range(3):
        for k in range(n_per_arm):
            t = (k + random.random()) / n_per_arm  # 0..1 along the arm
            r = 0.1 + 0.9 * t
            a = 2 * math.pi * arm / 3 + 3.5 * t + random.gauss(0, 0.12)
            rows.append((arm, r * math.cos(a), r * math.sin(a)))
    random.shuffle(rows)
    return rows


for name, n in [("train", 200), ("test", 100)]:
    with open(f"{name}.csv", "w") as f:
        f.write("label,x,y\n")
        for c, x, y in make(n):
            f.write(f"{c},{x:.4f},{y:.4f}\n")
