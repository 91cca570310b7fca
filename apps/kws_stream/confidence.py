"""95 % confidence intervals for the keyword spotter's figures.

A held-out engine is judged on a few dozen keywords and a few minutes of speech, so
its figures are counts with wide error bars: 9 of 50 keywords is 18 % with a 95 %
interval of 10-31 %. Two models are only told apart where their intervals say so.

- recall, ``k`` hits of ``n``: the Wilson score interval (SciPy's
  ``binomtest(k, n).proportion_ci(method="wilson")``);
- a rate, ``c`` events in exposure ``t`` (minutes, hours): the exact (Garwood)
  Poisson interval ``[chi2(a/2; 2c) / 2t, chi2(1 - a/2; 2c + 2) / 2t]``, lower 0
  when ``c = 0``.
"""

from __future__ import annotations


def wilson_interval(hits: int, n: int, level: float = 0.95) -> tuple[float, float]:
    """The Wilson score interval of a proportion ``hits / n`` (``(0, 1)`` if n = 0)."""
    from scipy.stats import binomtest

    hits, n = int(hits), int(n)
    if n < 0 or not 0 <= hits <= max(n, 0):
        raise ValueError(f"wilson_interval: need 0 <= hits <= n, got {hits} of {n}")
    if n == 0:
        return 0.0, 1.0
    ci = binomtest(hits, n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def poisson_rate_interval(
    count: int, exposure: float, level: float = 0.95
) -> tuple[float, float]:
    """The exact interval of a rate: ``count`` events in ``exposure`` units."""
    from scipy.stats import chi2

    count = int(count)
    if count < 0 or not exposure > 0:
        raise ValueError(
            f"poisson_rate_interval: need count >= 0 and exposure > 0, got "
            f"{count} in {exposure}"
        )
    alpha = 1.0 - level
    low = 0.0 if count == 0 else float(chi2.ppf(alpha / 2, 2 * count)) / 2
    high = float(chi2.ppf(1 - alpha / 2, 2 * count + 2)) / 2
    return low / exposure, high / exposure
