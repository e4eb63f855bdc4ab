#!/usr/bin/python3
"""Loss against epsilon for the distributed discrete Gaussian (docs/privacy.md, "Utility").

usage: /usr/bin/python3 scripts/privacy-utility.py MUTUAL WORK_DIR OUT_SVG [--quick]

Two tasks, each run with `mutual sim` at several noise multipliers (privacy.ddg_noise) and
without noise:
  demo   the demo's three orgs (legal, clib, python text from scripts/demo-data.py) on its
         byte-level GPT-2 base model with the demo's adapter (rank 8 on every linear layer)
  many   the same three texts pooled and split iid among 30 simulated orgs, with a smaller
         adapter (rank 1 on c_attn), where the noise is spread over 30 survivors
The org-level epsilon at delta 1e-5 of each run is the one its last metrics line reports (the
coordinator's accountant); the loss is `mutual eval` of the final adapter on the three orgs'
held-out texts (nats per byte, mean over the orgs; none of it is in either task's training
text), beside the base model's. Prints a markdown table and writes a plot of loss against epsilon to
OUT_SVG. Needs Debian's python3 with matplotlib.
"""
import json
import math
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ORGS = ["legal", "clib", "python"]
NOISES = [0, 0.1, 0.3, 1.0, 3.0]

TASKS = {
    "demo": dict(orgs=3, rounds=6, steps=15, rank=8, targets="c_attn,c_proj,c_fc", clip=0.5),
    "many": dict(orgs=30, rounds=10, steps=5, rank=1, targets="c_attn", clip=0.5),
}


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw).stdout


def make_data(mutual, work):
    text = os.path.join(work, "text")
    if os.path.exists(os.path.join(work, "pooled.sim.h5")):
        return
    os.makedirs(text, exist_ok=True)
    run([sys.executable, os.path.join(ROOT, "scripts/demo-data.py"), "orgs", text,
         "--train-bytes", "200000", "--heldout-bytes", "12416"])
    for o in ORGS:
        with open(os.path.join(text, o + ".sim.txt"), "wb") as f:
            for part in ("train", "heldout"):
                f.write(open(os.path.join(text, "%s.%s.txt" % (o, part)), "rb").read())
        run([mutual, "-q", "data", "import", "--text", os.path.join(text, o + ".sim.txt"),
             "--out", os.path.join(work, o + ".sim.h5")])
        run([mutual, "-q", "data", "import", "--text", os.path.join(text, o + ".heldout.txt"),
             "--out", os.path.join(work, o + ".heldout.h5")])
    with open(os.path.join(text, "pooled.sim.txt"), "wb") as f:  # training text only
        for o in ORGS:
            f.write(open(os.path.join(text, o + ".train.txt"), "rb").read())
    run([mutual, "-q", "data", "import", "--text", os.path.join(text, "pooled.sim.txt"),
         "--out", os.path.join(work, "pooled.sim.h5")])


def coordinator_block(t, noise):
    # colluders 0: the table's epsilon counts every org's noise (docs/privacy.md, "Utility")
    priv = ("  privacy: {ddg_noise: %g, min_survivors: %d, colluders: 0}\n" % (noise, t["orgs"])
            if noise else "")
    return ("coordinator:\n"
            "  federation: {rounds: %d}\n"
            "  cohort: {min_orgs: %d, max_orgs: %d, wait_s: 0}\n"
            "  train: {steps: %d, lr: 2.0e-3, batch: 8, seq: 128, weight: uniform}\n"
            "  secure_agg: {bits: 32, clip: %g, weight_max: 1}\n%s"
            % (t["rounds"], t["orgs"], t["orgs"], t["steps"], t["clip"], priv))


def sim_config(name, t, noise, work):
    base = os.path.join(ROOT, "configs/demo/base-model")
    if name == "demo":
        data = "data: {files: [%s], eval_fraction: 0.05845275}\n" % ", ".join(
            os.path.join(work, o + ".sim.h5") for o in ORGS)
    else:
        data = "data: {file: %s, orgs: %d, eval_fraction: 0}\n" % (
            os.path.join(work, "pooled.sim.h5"), t["orgs"])
    return ("seed: 7\nthreads: 0\n"
            "model: {base: %s, rank: %d, alpha: %d, targets: \"%s\", freeze_a: true, seed: 1}\n"
            % (base, t["rank"], 2 * t["rank"], t["targets"]) + data + coordinator_block(t, noise))


def one(mutual, work, name, t, noise):
    tag = "%s-%g" % (name, noise)
    cfg = os.path.join(work, tag + ".yaml")
    with open(cfg, "w") as f:
        f.write(sim_config(name, t, noise, work))
    metrics = os.path.join(work, tag + ".jsonl")
    p = subprocess.run([mutual, "sim", "--config", cfg, "--out", os.path.join(work, tag),
                        "--metrics", metrics], env=dict(os.environ, OMP_NUM_THREADS="1"),
                       check=True, capture_output=True, text=True)
    out = p.stdout + p.stderr
    lines = [json.loads(l) for l in open(metrics) if l.startswith('{"round"')]
    dim = int(out.split("adapter of ")[1].split()[0])
    eps = math.inf
    if noise:
        eps = [l for l in lines if "epsilon" in l][-1]["epsilon"]
    done = sum(l["kind"] == "train" and l["outcome"] == "completed" for l in lines)
    return dict(task=name, noise=noise, epsilon=eps, dim=dim, rounds=done,
                loss=heldout_loss(mutual, work, os.path.join(work, tag)))


def heldout_loss(mutual, work, adapter=None):
    """Mean `mutual eval` loss over the three orgs' held-out texts (equal sizes), the same
    windows for every run; adapter None: the base model."""
    base = os.path.join(ROOT, "configs/demo/base-model")
    losses = []
    for o in ORGS:
        cmd = [mutual, "-q", "eval", "--base", base, "--data", os.path.join(work, o + ".heldout.h5"),
               "--batch", "8", "--seq", "128", "--batches", "12", "--json"]
        if adapter:
            cmd += ["--adapter", adapter]
        losses.append(json.loads(run(cmd))["loss"])
    return sum(losses) / len(losses)


def main():
    if len(sys.argv) < 4:
        print(__doc__)
        return 2
    mutual, work, svg = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    os.makedirs(work, exist_ok=True)
    make_data(mutual, work)
    rows = []
    base = heldout_loss(mutual, work)
    print("base model: held-out loss %.4f" % base, file=sys.stderr)
    for name, t in TASKS.items():
        for z in NOISES:
            r = one(mutual, work, name, t, z)
            rows.append(r)
            print("%s noise %g: epsilon %s, loss %s" % (name, z, r["epsilon"], r["loss"]),
                  file=sys.stderr)
    print("| task | orgs | adapter values | rounds | ddg_noise | org-level epsilon (delta 1e-5) | "
          "held-out loss |")
    print("|---|---|---|---|---|---|---|")
    print("| base model | | | 0 | | 0 | %.4f |" % base)
    for r in rows:
        t = TASKS[r["task"]]
        print("| %s | %d | %d | %d | %s | %s | %.4f |" % (
            r["task"], t["orgs"], r["dim"], r["rounds"], "%g" % r["noise"] if r["noise"] else "off",
            "%.3g" % r["epsilon"] if math.isfinite(r["epsilon"]) else "inf (no noise)",
            r["loss"]))
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name in TASKS:
        pts = [r for r in rows if r["task"] == name and r["noise"]]
        off = [r for r in rows if r["task"] == name and not r["noise"]][0]
        line, = ax.plot([r["epsilon"] for r in pts], [r["loss"] for r in pts], "o-",
                        label="%s (%d orgs)" % (name, TASKS[name]["orgs"]))
        ax.axhline(off["loss"], color=line.get_color(), ls="--", lw=1,
                   label="%s, no noise" % name)
    ax.axhline(base, color="grey", ls=":", lw=1, label="base model")
    ax.set_xscale("log")
    ax.set_xlabel("org-level epsilon at delta 1e-5 (log)")
    ax.set_ylabel("held-out loss (nats/byte)")
    ax.set_title("distributed discrete Gaussian: loss against epsilon")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(svg, format="svg", metadata={"Date": None})
    return 0


if __name__ == "__main__":
    sys.exit(main())
