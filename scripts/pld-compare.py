#!/usr/bin/python3
"""RDP (what `mutual privacy` reports) against the privacy loss distribution (PLD) epsilon.

usage: /usr/bin/python3 scripts/pld-compare.py MUTUAL [--no-subsampled]

For the Gaussian mechanism without subsampling composed T times (noise multiplier z), the PLD
is itself Gaussian and composes exactly: the T-fold composition is mu-Gaussian DP with
mu = sqrt(T)/z, and delta(eps) = Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2) (Balle, Wang
2018, Thm 8; Dong, Roth, Su 2019, Cor. 2.13): the tight epsilon any accountant can give. These are
the settings the federation reports (org level: the discrete Gaussian, whose RDP is the
Gaussian's, at large sigma in integer units; record level without amplification).

For the Poisson-subsampled Gaussian (DP-SGD with amplification) the PLD has no closed form; it
is discretised on a grid of width h, once rounding every loss up (an upper bound on delta, so
on epsilon) and once down (a lower bound), and composed by FFT with binary exponentiation;
the true PLD epsilon lies between the two. Both adjacency directions (add and remove) are
evaluated and the larger epsilon taken. Prints one table (markdown) to stdout.
"""
import json
import math
import subprocess
import sys

import numpy as np
from scipy.signal import fftconvolve
from scipy.special import log_ndtr
from scipy.stats import norm

DELTA = 1e-5


def rdp_eps(mutual, noise, rate, steps, delta=DELTA):
    out = subprocess.run([mutual, "privacy", "--noise", repr(noise), "--rate", repr(rate),
                          "--steps", str(steps), "--delta", repr(delta), "--json"],
                         capture_output=True, check=True).stdout
    return json.loads(out)["epsilon"]


def gdp_delta(eps, mu):
    # Phi(-eps/mu + mu/2) - e^eps Phi(-eps/mu - mu/2), the second term in log space
    a = norm.cdf(-eps / mu + mu / 2)
    b = math.exp(eps + log_ndtr(-eps / mu - mu / 2))
    return a - b


def solve_eps(delta_of, delta, hi=1e4):
    lo = 0.0
    if delta_of(0.0) <= delta:
        return 0.0
    for _ in range(200):
        mid = (lo + hi) / 2
        if delta_of(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def gdp_eps(noise, steps, delta=DELTA):
    mu = math.sqrt(steps) / noise
    return solve_eps(lambda e: gdp_delta(e, mu), delta)


def step_pmf(q, sigma, h, up, remove):
    """One step's privacy-loss PMF on the grid h: (offset, pmf, inf_mass)."""
    # x grid fine enough that the loss varies by much less than h within a cell
    lim = 1 + 40 * sigma
    n = 4_000_001
    x = np.linspace(-lim, lim, n)
    edges = np.concatenate(([-np.inf], (x[1:] + x[:-1]) / 2, [np.inf]))

    def mix_cdf(e):
        return (1 - q) * norm.cdf(e / sigma) + q * norm.cdf((e - 1) / sigma)

    def loss(v):  # log((1-q) + q exp((2v-1)/(2 sigma^2))), mixture over N(0, sigma^2)
        with np.errstate(divide="ignore"):  # q = 1: log(0) = -inf, and logaddexp copes
            return np.logaddexp(np.log1p(-q), np.log(q) + (2 * v - 1) / (2 * sigma**2))

    if remove:  # X ~ mixture, loss = log(mixture/base), increasing in x
        mass = np.diff(mix_cdf(edges))
        lo_l, hi_l = loss(edges[:-1]), loss(edges[1:])
    else:  # X ~ base, loss = log(base/mixture) = -loss(x), decreasing in x
        mass = np.diff(norm.cdf(edges / sigma))
        lo_l, hi_l = -loss(edges[1:]), -loss(edges[:-1])
    val = hi_l if up else lo_l  # the cell's largest (up) or smallest loss
    inf_mass = float(mass[~np.isfinite(val) & (val > 0)].sum())
    ok = np.isfinite(val) & (mass > 0)
    k = np.ceil(val[ok] / h) if up else np.floor(val[ok] / h)
    k = k.astype(np.int64)
    off = int(k.min())
    pmf = np.bincount(k - off, weights=mass[ok]).astype(np.float64)
    return off, pmf, inf_mass


def trim(off, pmf, inf, up, tol=1e-13):
    """Drops negligible tails: the upper one into inf (up) or away, the lower one onto its cut
    (up: its losses only rise) or away."""
    c = np.cumsum(pmf)
    total = c[-1]
    lo = int(np.searchsorted(c, tol))
    hi = int(np.searchsorted(c, total - tol))
    hi = min(max(hi, lo), len(pmf) - 1)
    upper = float(pmf[hi + 1:].sum())
    lower = float(pmf[:lo].sum())
    new = pmf[lo:hi + 1].copy()
    if up:
        new[0] += lower
        inf += upper
    return off + lo, new, inf


def compose(off, pmf, inf, steps, up):
    r_off, r_pmf, r_inf = 0, np.array([1.0]), 0.0
    b_off, b_pmf, b_inf = off, pmf, inf
    while steps:
        if steps & 1:
            r_pmf = np.clip(fftconvolve(r_pmf, b_pmf), 0, None)
            r_off += b_off
            r_inf = 1 - (1 - r_inf) * (1 - b_inf)
            r_off, r_pmf, r_inf = trim(r_off, r_pmf, r_inf, up)
        steps >>= 1
        if steps:
            b_pmf = np.clip(fftconvolve(b_pmf, b_pmf), 0, None)
            b_off *= 2
            b_inf = 1 - (1 - b_inf) ** 2
            b_off, b_pmf, b_inf = trim(b_off, b_pmf, b_inf, up)
    return r_off, r_pmf, r_inf


def pld_eps(q, sigma, steps, h, up, delta=DELTA):
    best = 0.0
    for remove in (True, False):
        off, pmf, inf = compose(*step_pmf(q, sigma, h, up, remove), steps, up)
        losses = (off + np.arange(len(pmf))) * h

        def delta_of(e):
            m = losses > e
            return inf + float(np.sum(pmf[m] * -np.expm1(e - losses[m])))

        best = max(best, solve_eps(delta_of, delta, hi=float(losses[-1]) + 1))
    return best


def main():
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    mutual = sys.argv[1]
    rows = []
    # no subsampling: the federation's settings (docs/privacy.md, Utility and Accounting)
    for name, z, t in [("org level, demo: ddg_noise 1, 6 rounds", 1.0, 6),
                       ("org level, demo: ddg_noise 3, 6 rounds", 3.0, 6),
                       ("org level, 30 orgs: ddg_noise 1, 10 rounds", 1.0, 10),
                       ("org level: ddg_noise 2, 50 rounds (the --config example)", 2.0, 50),
                       ("record level, no amplification: dp_noise 4, 1000 steps", 4.0, 1000)]:
        r, p = rdp_eps(mutual, z, 1, t), gdp_eps(z, t)
        rows.append((name, "exact (Gaussian PLD)", r, "%.4g" % p, r / p))
    if "--no-subsampled" not in sys.argv:
        # the discretisation checked where the answer is known: q = 1 against the exact value
        z, t, h = 2.0, 50, 2e-5
        up, down = pld_eps(1.0, z, t, h, True), pld_eps(1.0, z, t, h, False)
        exact = gdp_eps(z, t)
        if not (down <= exact * (1 + 1e-6) and exact <= up * (1 + 1e-6)):
            print("pld-compare: the discretised bracket %g..%g misses the exact %g" %
                  (down, up, exact), file=sys.stderr)
            return 1
        rows.append(("check: noise 2, 50 steps, q = 1 (exact %.4g)" % exact,
                     "discretised, h %g" % h, rdp_eps(mutual, z, 1, t),
                     "%.4g .. %.4g" % (down, up), rdp_eps(mutual, z, 1, t) / up))
        # DP-SGD with amplification: TF Privacy's MNIST tutorial setting
        q, z, t, h = 256 / 60000, 1.12, 60 * 234, 5e-6
        up, down = pld_eps(q, z, t, h, True), pld_eps(q, z, t, h, False)
        r = rdp_eps(mutual, z, q, t)
        rows.append(("DP-SGD: z 1.12, q 256/60000, 14040 steps (TF Privacy MNIST, 60 epochs)",
                     "discretised, h %g" % h, r, "%.4g .. %.4g" % (down, up), r / up))
    print("| setting (delta 1e-5) | PLD | RDP epsilon (ours) | PLD epsilon | RDP / PLD |")
    print("|---|---|---|---|---|")
    for name, how, r, p, ratio in rows:
        print("| %s | %s | %.4g | %s | %.3f |" % (name, how, r, p, ratio))
    return 0


if __name__ == "__main__":
    sys.exit(main())
