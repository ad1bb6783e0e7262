"""Pareto tools on plain arrays: fronts, crowding, hypervolume and a plot of the front.

    python examples/aggregation_pareto.py

Ranks 1,024 GRPO groups in one call, checks the front of a random 3-objective set, measures
its hypervolume (exactly, and by Monte Carlo with a standard error), and saves a plot.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rewardhub._optional import require
from rewardhub.aggregate import (
    crowding_distance,
    hypervolume,
    hypervolume_contributions,
    hypervolume_mc,
    nondominated_sort,
    pareto_front,
)
from rewardhub.commands.pareto import plot_front

require("matplotlib", "plot", "this example's plot")  # before the work, not after it

rng = np.random.default_rng(0)

# every GRPO group of 16 candidates ranked separately, in one vectorised call
values = rng.random((1024 * 16, 3))
groups = np.repeat(np.arange(1024), 16)
ranks = nondominated_sort(values, groups)
print(f"1024 groups: {np.mean(ranks == 0):.0%} of candidates on their group's front")

points = rng.random((200, 3))
front = pareto_front(points)
crowd = crowding_distance(points[front])
print(f"{front.sum()} of 200 points on the front; {np.isinf(crowd).sum()} boundary points")

ref = np.zeros(3)
exact = hypervolume(points, ref)
est = hypervolume_mc(points, ref, samples=200_000, seed=1)
print(f"hypervolume {exact:.4f}; Monte Carlo {est.value:.4f} ± {est.stderr:.4f}")
contrib = hypervolume_contributions(points, ref)
print(f"largest exclusive contribution: point {int(contrib.argmax())} ({contrib.max():.5f})")

out = Path("front.png")
plot_front(points, ["helpful", "harmless", "honest"], nondominated_sort(points), out)
print(f"plot saved to {out.resolve()}")
