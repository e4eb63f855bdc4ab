#!/usr/bin/python3
"""plot-metrics.py METRICS.jsonl --out FILE.png [--org-metrics FILE] [--title TEXT]

Draws a federation's round metrics as a PNG, without network: the JSON lines of
`mutual sim --metrics` or of `mutual serve` (stdout), one per round (docs/wire.md). Left:
the loss per training round (training rounds: the orgs' batches before each step;
evaluation rounds: held-out loss of the global adapter after the training round before it),
aborted rounds marked, and with --org-metrics (`mutual sim --org-metrics`) each org's own
training loss faintly. Right: the bytes in and out of each round (MB, as serve counts them).

`mutual plot` runs this program (embedded in the binary) with Debian's python3 and
python3-matplotlib (scripts/bootstrap installs it). Exit status: 0 written, 1 a file that
cannot be read or has no round, or matplotlib missing, 2 usage.
"""
import argparse
import json
import math
import os
import sys


def fail(msg):
    print(f"mutual plot: {msg}", file=sys.stderr)
    sys.exit(1)


def load(path, need):
    try:
        f = open(path)
    except OSError as e:
        fail(f"{path}: {e.strerror}")
    out = []
    with f:
        for no, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                j = json.loads(line)
            except ValueError:
                fail(f"{path}:{no}: not a JSON line")
            if not isinstance(j, dict) or any(k not in j for k in need):
                fail(f"{path}:{no}: not a round metrics line (needs {', '.join(need)})")
            out.append(j)
    if not out:
        fail(f"{path}: no rounds")
    return out


def num(v):
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None


def series(rounds):
    """(x, loss) of training and evaluation rounds; x counts training rounds."""
    train, evals, aborted = [], [], []
    t = 0
    for m in rounds:
        if m["kind"] == "train":
            t += 1
            if m["outcome"] != "completed":
                aborted.append(t)
            elif num(m["loss"]) is not None:
                train.append((t, num(m["loss"])))
        elif m["outcome"] == "completed" and num(m["loss"]) is not None:
            evals.append((t, num(m["loss"])))
    return train, evals, aborted


def org_series(rounds, org_lines):
    """Each org's training loss by training round (x as in series)."""
    x_of, t = {}, 0
    for m in rounds:
        if m["kind"] == "train":
            t += 1
            x_of[m["round"]] = t
    by = {}
    for o in org_lines:
        x = x_of.get(o.get("round"))
        v = num(o.get("loss"))
        if x is not None and v is not None and o.get("outcome") == "completed":
            by.setdefault(o["org"], []).append((x, v))
    return by


def main(argv):
    ap = argparse.ArgumentParser(prog="mutual plot", description=__doc__.split("\n")[0])
    ap.add_argument("metrics")
    ap.add_argument("--out", required=True)
    ap.add_argument("--org-metrics")
    ap.add_argument("--title")
    a = ap.parse_args(argv)
    if not a.out.endswith(".png"):
        ap.error("--out must name a .png file")
    rounds = load(a.metrics, ("round", "kind", "outcome", "loss", "bytes_in", "bytes_out"))
    orgs = load(a.org_metrics, ("org", "round", "loss", "outcome")) if a.org_metrics else []
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
    except ImportError:
        fail("python3-matplotlib is not installed (scripts/bootstrap installs it)")
    train, evals, aborted = series(rounds)
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5))
    for name, pts in sorted(org_series(rounds, orgs).items()):
        a1.plot(*zip(*pts), ".-", color="gray", alpha=0.35, lw=0.8)
    if orgs:
        a1.plot([], [], "-", color="gray", alpha=0.35, label="each org's training loss")
    if train:
        a1.plot(*zip(*train), "o-", color="C0", label="training loss (orgs' batches)")
    if evals:
        a1.plot(*zip(*evals), "s-", color="C1", label="held-out loss (evaluation rounds)")
    for i, x in enumerate(aborted):
        a1.axvline(x, color="C3", ls=":", label="aborted round" if i == 0 else None)
    a1.set_xlabel("training round")
    a1.set_ylabel("loss")
    a1.set_title("loss per round")
    a1.xaxis.set_major_locator(MaxNLocator(integer=True))
    a1.grid(alpha=0.3)
    if a1.get_legend_handles_labels()[0]:
        a1.legend(fontsize=8)
    else:  # synthetic updates, or no round completed: nothing to draw
        a1.text(0.5, 0.5, "no loss in these rounds", ha="center", transform=a1.transAxes)
    xs = [m["round"] for m in rounds]
    a2.plot(xs, [m["bytes_in"] / 1e6 for m in rounds], "o-", color="C2", label="in (to the coordinator)")
    a2.plot(xs, [m["bytes_out"] / 1e6 for m in rounds], "s-", color="C4",
            label="out (routed secure-agg messages, adapter downloads)")
    a2.set_xlabel("round (training and evaluation)")
    a2.set_ylabel("MB")
    a2.set_title("traffic per round")
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.grid(alpha=0.3)
    a2.legend(fontsize=8)
    fig.suptitle(a.title or f"{os.path.basename(a.metrics)}: {len(rounds)} rounds")
    fig.tight_layout()
    tmp = a.out + ".tmp"
    try:
        fig.savefig(tmp, format="png", dpi=100)
        os.replace(tmp, a.out)
    except OSError as e:
        fail(f"{a.out}: {e.strerror}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
