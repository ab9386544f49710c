"""Drift scores of a current sample against a reference sample: pure functions, no state.

Population Stability Index (PSI), on bins cut at the reference's quantiles::

    edges  q_k = Quantile_ref(k / B),  k = 1 .. B-1     (duplicates removed)
    bins   (-inf, q_1], (q_1, q_2], ..., (q_{B-1}, +inf)
    e_i    fraction of the reference in bin i          (about 1/B each)
    a_i    fraction of the current sample in bin i
    PSI  = sum_i (a_i - e_i) * ln(a_i / e_i),  with e_i, a_i raised to at least epsilon

PSI is >= 0, symmetric in the two samples and 0 for identical bin fractions. Read it as
< 0.1 stable, 0.1-0.25 watch, > 0.25 significant shift. Even two samples of the same
distribution score about (B - 1) * (1/n_ref + 1/n_cur) from sampling noise alone
(PSI ~ chi-squared with B - 1 degrees of freedom, scaled), so both samples need hundreds of
values before 0.1 means anything.

Two-sample Kolmogorov-Smirnov statistic::

    D = sup_x | F_ref(x) - F_cur(x) |

the largest gap between the two empirical CDFs, in [0, 1]. It needs no bins, is blind to the
unit of the signal and reacts most to a shift of the bulk (location, median); it barely sees
changes confined to the tails. Its typical value for two same-distribution samples is about
1.36 * sqrt(1/n_ref + 1/n_cur) (the 5 % critical value).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import ks_2samp

PSI_BINS = 10
PSI_EPSILON = 1e-4


def quantile_edges(reference: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Inner bin edges at the reference's quantiles k / bins (k = 1 .. bins-1), duplicates removed.

    Ties (e.g. a signal that is exactly 0 in most frames) merge bins instead of leaving empty ones.
    """
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if reference.size == 0:
        raise ValueError("the reference sample is empty")
    return np.unique(np.quantile(reference, np.arange(1, bins) / bins))


def bin_fractions(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of ``values`` in each right-closed bin (-inf, q_1], (q_1, q_2], ..., (q_last, +inf)."""
    if values.size == 0:
        raise ValueError("cannot bin an empty sample")
    counts = np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)
    fractions: np.ndarray = counts / values.size
    return fractions


def psi_from_fractions(expected: np.ndarray, actual: np.ndarray, *, epsilon: float = PSI_EPSILON) -> float:
    """PSI = sum_i (a_i - e_i) * ln(a_i / e_i) over bins, with fractions raised to at least ``epsilon``.

    ``epsilon`` keeps an empty bin finite: a bin holding 10 % of the reference and nothing of the
    current sample adds (0.1 - 1e-4) * ln(0.1 / 1e-4) ~ 0.69.
    """
    if expected.shape != actual.shape:
        raise ValueError(f"bin counts differ: {expected.shape} vs {actual.shape}")
    e = np.maximum(expected, epsilon)
    a = np.maximum(actual, epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(reference: np.ndarray, current: np.ndarray, *, bins: int = PSI_BINS, epsilon: float = PSI_EPSILON) -> float:
    """Population Stability Index of ``current`` against ``reference`` on reference-quantile bins."""
    edges = quantile_edges(reference, bins)
    return psi_from_fractions(bin_fractions(reference, edges), bin_fractions(current, edges), epsilon=epsilon)


def ks_statistic(reference: np.ndarray, current: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic D = sup_x |F_ref(x) - F_cur(x)| (scipy.stats.ks_2samp).

    Only the statistic is used (an effect size), so the cheap asymptotic p-value method is asked
    for; the exact method would cost far more for windows of hundreds of frames.
    """
    if reference.size == 0 or current.size == 0:
        raise ValueError("both samples need at least one value")
    return float(ks_2samp(reference, current, method="asymp").statistic)
