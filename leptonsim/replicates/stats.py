"""What N replicates say about an output: its median, p5/p95 band, a bootstrap
confidence interval of its mean, and how many replicates a stated precision needs.

The interval is Efron's percentile bootstrap (Efron and Tibshirani, "An Introduction
to the Bootstrap", 1993, ch. 13): the 2.5th and 97.5th percentiles of the means of
`resamples` resamples drawn with replacement, seeded. The replicates needed for a
half-width of eps x mean at confidence 1 - alpha come from the central limit theorem,
n = (z s / (eps mean))^2 with z the normal quantile 1 - alpha / 2 and s the sample
standard deviation (Law, "Simulation Modeling and Analysis", 5th ed., 2015, §9.4.1).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.stats import norm

__all__ = ["Summary", "needed", "summarise"]

RESAMPLES = 2000
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Summary:
    """One output over the replicates."""

    n: int
    mean: float
    std: float        # sample standard deviation (ddof 1; 0 for one replicate)
    median: float
    p5: float
    p95: float
    ci_low: float     # bootstrap interval of the mean at CONFIDENCE
    ci_high: float
    needed: int       # replicates for a half-width of `precision` x mean
    precision: float


def needed(std: float, mean: float, precision: float, confidence: float = CONFIDENCE) -> int:
    """n = ceil((z s / (eps mean))^2), at least 1; 1 when s = 0 (nothing varies)."""
    if std == 0:
        return 1
    z = float(norm.ppf(1 - (1 - confidence) / 2))
    return max(1, math.ceil((z * std / (precision * abs(mean))) ** 2))


def summarise(x: np.ndarray, precision: float, seed: int = 0,
              resamples: int = RESAMPLES, confidence: float = CONFIDENCE) -> Summary:
    """The Summary of replicates `x` (at least one); the bootstrap drawn from `seed`."""
    x = np.asarray(x, dtype=float)
    std = float(x.std(ddof=1)) if x.size > 1 else 0.0
    rng = np.random.default_rng(seed)
    block = max(1, 2**22 // x.size)  # resamples at a time: at most 32 MB of indices
    means = np.concatenate([x[rng.integers(0, x.size, (min(block, resamples - i), x.size))]
                            .mean(axis=1) for i in range(0, resamples, block)])
    tail = 100 * (1 - confidence) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    p5, median, p95 = np.percentile(x, [5, 50, 95])
    mean = float(x.mean())
    return Summary(x.size, mean, std, float(median), float(p5), float(p95), float(low),
                   float(high), needed(std, mean, precision, confidence), precision)
