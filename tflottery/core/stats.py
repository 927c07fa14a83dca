"""Intervals over replicates: the numbers every table, verdict and figure band of tflottery reports.

A replicate is an independent run of the whole experiment (its own initialisation, data order
and masks), so the mean over n replicates has a Student t interval with n - 1 degrees of
freedom. Paired differences (ticket - reinit of the same replicate) remove what replicates
share and are the comparison to report (Frankle & Carbin compare branches at each level).
With one replicate there is no interval: the functions say so instead of inventing one.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

CONFIDENCE = 0.95
STABLE_PP = 2.0  # stable: test error along the linear path rises less than this (percentage points) over the
# ends' mean (Frankle et al. 2020's threshold; rewind=auto's probe and the instability analysis)


@dataclass(frozen=True)
class Interval:
    """The mean of `n` values and its two-sided t interval at `confidence` (None with n < 2)."""

    mean: float
    low: Optional[float]
    high: Optional[float]
    n: int
    confidence: float = CONFIDENCE

    @property
    def half_width(self) -> Optional[float]:
        return None if self.low is None else (self.high - self.low) / 2

    def contains(self, value: float) -> bool:
        return self.low is not None and self.low <= value <= self.high

    def above(self, value: float) -> bool:
        """The whole interval lies above `value` (False without an interval)."""
        return self.low is not None and self.low > value

    def below(self, value: float) -> bool:
        return self.high is not None and self.high < value

    def text(self, scale: float = 1.0, digits: int = 2) -> str:
        """'88.27 ± 0.35' (the half-width of the interval), or '88.27 (n=1)'."""
        if self.low is None:
            return f"{scale * self.mean:.{digits}f} (n={self.n})"
        return f"{scale * self.mean:.{digits}f} ± {scale * self.half_width:.{digits}f}"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "n": self.n, "confidence": self.confidence}


def t_quantile(confidence: float, degrees: int) -> float:
    """The two-sided Student t quantile: P(|T| <= q) = confidence with `degrees` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, degrees))


def interval(values: Sequence[float], confidence: float = CONFIDENCE) -> Interval:
    """Mean and t interval of independent values (replicates); no interval for fewer than two."""
    values = [float(v) for v in values if v is not None]
    if not values:
        raise ValueError("interval of no values")
    n = len(values)
    mean = math.fsum(values) / n
    if n < 2:
        return Interval(mean, None, None, n, confidence)
    spread = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (n - 1))
    half = t_quantile(confidence, n - 1) * spread / math.sqrt(n)
    return Interval(mean, mean - half, mean + half, n, confidence)


def paired(a: dict, b: dict, confidence: float = CONFIDENCE) -> Optional[Interval]:
    """The interval of a - b over the keys (replicates) both hold; None when they share none."""
    shared = sorted(set(a) & set(b))
    if not shared:
        return None
    return interval([a[k] - b[k] for k in shared], confidence)


def jackknife_pairs(pairs: dict, confidence: float = CONFIDENCE) -> Interval:
    """The mean of a statistic over every pair of n copies ({(i, j): value}) and its jackknife t interval over
    the copies (n - 1 degrees of freedom). Pairs that share a copy are not independent, so a t interval
    over the pairs would claim n(n-1)/2 observations where there are n; leaving out one copy at a time
    (and every pair it is in) measures the spread the copies give. No interval for fewer than 3 copies."""
    copies = sorted({c for pair in pairs for c in pair})
    mean = math.fsum(pairs.values()) / len(pairs)
    n = len(copies)
    if n < 3:
        return Interval(mean, None, None, n, confidence)
    left_out = []
    for k in copies:
        rest = [v for pair, v in pairs.items() if k not in pair]
        left_out.append(math.fsum(rest) / len(rest))
    centre = math.fsum(left_out) / n
    half = t_quantile(confidence, n - 1) * math.sqrt((n - 1) / n * math.fsum((v - centre) ** 2 for v in left_out))
    return Interval(mean, mean - half, mean + half, n, confidence)
