"""check_aggregate.py DUMP_DIR ROUNDS - the global update the coordinator applied in each round
equals the plain weighted mean of the orgs' clipped updates, within the quantisation error.

The coordinator (mutual serve --dump-dir) wrote global-RRRRRR.f32 after each round (and the
starting global as global-000000.f32); each org (mutual join --dump-dir) wrote
delta-RRRRRR-NAME.f32 = [w, scale, clip, delta...] before clipping. With FedAvg (eta 1) the
new global is old + sum(w * clip(delta)) / sum(w), computed here in float64. Quantisation
(stochastic rounding of w*x*scale and of w*scale, summed over n orgs) moves a coordinate of
the mean by at most about n / (scale * sum(w)) * (1 + |mean|); float32 storage adds 1 ulp."""
import glob
import os
import sys

import numpy as np

dump, rounds = sys.argv[1], int(sys.argv[2])
read = lambda p: np.fromfile(p, dtype="<f4").astype(np.float64)
worst = 0.0
for r in range(1, rounds + 1):
    old = read(os.path.join(dump, "global-%06d.f32" % (r - 1)))
    new = read(os.path.join(dump, "global-%06d.f32" % r))
    files = sorted(glob.glob(os.path.join(dump, "delta-%06d-*.f32" % r)))
    assert len(files) >= 2, "round %d: %d org dumps" % (r, len(files))
    num, den, n = np.zeros_like(old), 0.0, len(files)
    scale = None
    for f in files:
        v = read(f)
        w, scale, clip, d = v[0], v[1], v[2], v[3:]
        assert d.shape == old.shape, (f, d.shape, old.shape)
        norm = np.linalg.norm(d)
        if norm > clip:
            d = d * (clip / norm)
        num += w * d
        den += w
    mean = num / den
    got = new - old
    tol = n / (scale * den) * (1 + np.abs(mean)) * 2 + 2 * np.spacing(np.abs(new).astype(np.float32)) + 1e-9
    err = np.abs(got - mean)
    bad = np.nonzero(err > tol)[0]
    print("round %d: %d orgs, sum w %.0f, scale %.0f, |mean| max %.3g, max error %.3g (bound %.3g)"
          % (r, n, den, scale, np.abs(mean).max(), err.max(), tol.max()))
    assert np.abs(mean).max() > 100 * tol.max(), "round %d: the update is too small to test" % r
    assert bad.size == 0, "round %d: coordinate %d applied %.9g, weighted mean %.9g" % (
        r, bad[0], got[bad[0]], mean[bad[0]])
    # the plain (unweighted) mean is a different answer: the check can tell them apart
    plain = sum(read(f)[3:] for f in files) / n
    assert np.any(np.abs(got - plain) > tol), "round %d: weights made no difference" % r
    worst = max(worst, err.max())
print("ok: every round's aggregate is the weighted mean of the orgs' updates (max error %.3g)" % worst)
