#!/usr/bin/python3
"""demo-report.py OUT_DIR [--seconds S] - the embedded demo's summary, table and plot.

Run by scripts/demo with Debian's /usr/bin/python3 after every evaluation is done. Reads
what the demo left in OUT_DIR:

  logs/settings.json              the run's settings (orgs, rounds, steps, LoRA, ...)
  evals/base.ORG.json             `mutual eval --json` of the base model on ORG's held-out text
  evals/local.ORG.json            ORG's local-only adapter on ORG's held-out text
  evals/local-pooled.ORG.json     ORG's local-only adapter on the pooled held-out text
  evals/federated.ORG.json        the federated adapter on ORG's held-out text
  (ORG = pooled: the pooled held-out text, every org's held-out text together)
  sim-metrics.jsonl               `mutual sim --metrics`: one line per round
  local/ORG.train-log.jsonl       `mutual train --log-jsonl`: one line per step

and writes:

  summary.json        exactly {"orgs": {NAME: {"base_loss", "local_loss", "federated_loss"}},
                      "pooled": {...}}; pooled local_loss is the mean over orgs of each org's
                      local adapter on the pooled held-out text. A loss that was not computed
                      (a part of the demo that could not run) is null.
  summary.md          the table, with the federated-minus-local difference and who wins
  details.json        settings, every evaluation, the per-round metrics, timings, and under
                      "plot" the base_loss the plot drew (summary.json's pooled base_loss)
  loss-per-round.png  held-out loss of the federated adapter after each round, pooled over
                      the orgs' held-out text (with the base model on the pooled held-out text
                      and the local-only adapters for reference), and training loss per
                      round, federated vs local-only (needs python3-matplotlib)

Losses are mean cross-entropy in nats per byte (the model's tokens are bytes).
"""
import argparse
import json
import math
import os
import sys


def load_json(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    out.append(json.loads(line))
    except OSError:
        pass
    return out


def loss_of(out, name):
    j = load_json(os.path.join(out, "evals", name + ".json"))
    if not j or not isinstance(j.get("loss"), (int, float)) or not math.isfinite(j["loss"]):
        return None
    return float(j["loss"])


def fmt(x, width=9):
    return f"{x:{width}.4f}" if x is not None else f"{'n/a':>{width}}"


def verdict(fed, local):
    if fed is None or local is None:
        return "not run"
    d = fed - local
    if abs(d) < 0.002:
        return "tie"
    return "federated" if d < 0 else "local"


def build(out, seconds):
    st = load_json(os.path.join(out, "logs", "settings.json")) or {}
    orgs = st.get("orgs", [])
    summary = {"orgs": {}, "pooled": {}}
    evals = {}
    for o in orgs:
        summary["orgs"][o] = {"base_loss": loss_of(out, f"base.{o}"),
                              "local_loss": loss_of(out, f"local.{o}"),
                              "federated_loss": loss_of(out, f"federated.{o}")}
        evals[o] = dict(summary["orgs"][o], local_on_pooled=loss_of(out, f"local-pooled.{o}"))
    lp = [evals[o]["local_on_pooled"] for o in orgs]
    summary["pooled"] = {"base_loss": loss_of(out, "base.pooled"),
                         "local_loss": (sum(lp) / len(lp)) if lp and None not in lp else None,
                         "federated_loss": loss_of(out, "federated.pooled")}

    metrics = load_jsonl(os.path.join(out, "sim-metrics.jsonl"))
    train_rounds = [m for m in metrics if m.get("kind") == "train"]
    eval_rounds = [m for m in metrics if m.get("kind") == "eval"]
    # Local-only training loss per "round": the mean over each org of its batch losses in
    # steps [(r-1)*S, r*S), the same steps a federated round r runs.
    S = int(st.get("steps_per_round", 1) or 1)
    local_logs = {o: load_jsonl(os.path.join(out, "local", f"{o}.train-log.jsonl")) for o in orgs}
    local_train = []
    for r in range(int(st.get("rounds", 0))):
        vals = []
        for o in orgs:
            chunk = [x["loss"] for x in local_logs[o][r * S:(r + 1) * S] if "loss" in x]
            if chunk:
                vals.append(sum(chunk) / len(chunk))
        local_train.append(sum(vals) / len(vals) if len(vals) == len(orgs) else None)

    sim_seconds = None
    try:
        with open(os.path.join(out, "logs", "sim-seconds")) as f:
            sim_seconds = float(f.read())
    except (OSError, ValueError):
        pass
    tc = load_json(os.path.join(out, "logs", "torch-check.json"))
    torch_check = None
    if tc and orgs:
        torch_check = {"org": orgs[0], "torch_loss": tc.get("loss"),
                       "mutual_loss": summary["orgs"][orgs[0]]["federated_loss"]}
    details = {"settings": st, "torch_cross_check": torch_check, "losses_nats_per_byte": evals,
               "pooled": dict(summary["pooled"],
                              local_on_pooled_by_org={o: evals[o]["local_on_pooled"] for o in orgs}),
               "sim_rounds": metrics, "local_train_loss_per_round": local_train,
               "demo_seconds": seconds, "sim_seconds": sim_seconds}
    return summary, details, train_rounds, eval_rounds, local_train


def table(summary, details):
    rows = [("org", "base", "local only", "federated", "fed - local", "better")]
    for name, v in list(summary["orgs"].items()) + [("pooled", summary["pooled"])]:
        d = (v["federated_loss"] - v["local_loss"]
             if v["federated_loss"] is not None and v["local_loss"] is not None else None)
        rows.append((name, fmt(v["base_loss"]), fmt(v["local_loss"]), fmt(v["federated_loss"]),
                     (f"{d:+.4f}" if d is not None else "n/a"),
                     verdict(v["federated_loss"], v["local_loss"])))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for k, r in enumerate(rows):
        lines.append("| " + " | ".join(c.strip().rjust(widths[i]) if i else c.ljust(widths[i])
                                       for i, c in enumerate(r)) + " |")
        if k == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def story(summary, details):
    """A few plain sentences on what the table says, computed from it."""
    s = []
    orgs = summary["orgs"]
    fed_ok = all(v["federated_loss"] is not None for v in orgs.values())
    if not fed_ok:
        s.append("The federated part did not run, so there are no federated numbers.")
        return s
    wins = [n for n, v in orgs.items() if verdict(v["federated_loss"], v["local_loss"]) == "federated"]
    losses = [n for n, v in orgs.items() if verdict(v["federated_loss"], v["local_loss"]) == "local"]
    better_than_base = [n for n, v in orgs.items() if v["federated_loss"] < v["base_loss"]]
    s.append(f"The federated adapter beats the base model for {len(better_than_base)} of "
             f"{len(orgs)} orgs.")
    if wins:
        s.append("It beats the org's own local-only adapter for: " + ", ".join(wins) + ".")
    if losses:
        s.append("Local-only training is better on the org's own held-out text for: "
                 + ", ".join(losses) + " (one shared adapter serves every org's kind of text; a "
                 "local adapter specialises in one).")
    worse = [n for n, v in orgs.items() if v["local_loss"] is not None and v["base_loss"] is not None
             and v["local_loss"] > v["base_loss"]]
    if worse:
        s.append("Training alone made the held-out loss worse than the base model for: "
                 + ", ".join(worse) + " (its held-out files differ from its training files).")
    p = summary["pooled"]
    if p["federated_loss"] is not None and p["local_loss"] is not None:
        s.append(f"On everyone's held-out text together, the federated adapter scores "
                 f"{p['federated_loss']:.4f} against {p['local_loss']:.4f} for a local-only "
                 f"adapter (mean over orgs) and {p['base_loss']:.4f} for the base model.")
    return s


def plot(out, summary, details, train_rounds, eval_rounds, local_train):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return "python3-matplotlib is not installed (scripts/bootstrap installs it): no plot"
    from matplotlib.ticker import MaxNLocator
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5.6))
    orgs = summary["orgs"]
    # Held-out: the sim's evaluation rounds score the global adapter on every org's held-out
    # text after each training round, pooled (Σ loss over every org's windows / Σ tokens);
    # round 0 and the base line are the base model on the pooled held-out text (mutual eval),
    # summary.json's pooled base_loss: the same quantity as the curve.
    base = summary["pooled"]["base_loss"]
    details["plot"] = {"base_loss": base}
    if eval_rounds:
        xs = list(range(0, len(eval_rounds) + 1))
        ys = [base] + [m["loss"] for m in eval_rounds]
        a1.plot(xs, ys, "o-", color="C0", label="federated adapter (sim eval rounds)")
    if base is not None:
        a1.axhline(base, color="gray", ls=":", label=f"base model, pooled ({base:.3f})")
    own = [v["local_loss"] for v in orgs.values()]
    if own and None not in own:
        m = sum(own) / len(own)
        a1.axhline(m, color="C1", ls="--",
                   label=f"local-only, each org on its own text ({m:.3f})")
    pl = summary["pooled"]["local_loss"]
    if pl is not None:
        a1.axhline(pl, color="C3", ls="-.", label=f"local-only, on everyone's text ({pl:.3f})")
    a1.set_xlabel("training round")
    a1.set_ylabel("held-out loss (nats/byte)")
    a1.set_title("held-out loss, pooled: every org's held-out text together")
    a1.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=2)
    a1.xaxis.set_major_locator(MaxNLocator(integer=True))
    a1.grid(alpha=0.3)
    # Training loss per round.
    if train_rounds:
        xs = list(range(1, len(train_rounds) + 1))
        a2.plot(xs, [m["loss"] for m in train_rounds], "o-", color="C0",
                label="federated (orgs' batches, before each step)")
        for x, m in zip(xs, train_rounds):
            if m.get("orgs_dropped"):
                a2.annotate(f"{m['orgs_dropped']} org dropped out\n(loss of the others)",
                            (x, m["loss"]),
                            textcoords="offset points", xytext=(5, 10), fontsize=8)
    if local_train and None not in local_train:
        a2.plot(range(1, len(local_train) + 1), local_train, "s--", color="C1",
                label="local-only (same steps, mean over orgs)")
    a2.set_xlabel("training round")
    a2.set_ylabel("training loss (nats/byte)")
    a2.set_title("training loss per round")
    a2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=1)
    a2.xaxis.set_major_locator(MaxNLocator(integer=True))
    a2.grid(alpha=0.3)
    fig.suptitle(f"mutual demo: {len(orgs)} orgs, federated LoRA with secure aggregation")
    fig.tight_layout()
    path = os.path.join(out, "loss-per-round.png")
    fig.savefig(path + ".tmp.png", dpi=100)
    os.replace(path + ".tmp.png", path)
    return None


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out")
    ap.add_argument("--seconds", type=float, default=None)
    a = ap.parse_args(argv)
    summary, details, train_rounds, eval_rounds, local_train = build(a.out, a.seconds)
    with open(os.path.join(a.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
        f.write("\n")
    # the plot records what it drew (details["plot"]), so it comes before details.json
    why_no_plot = plot(a.out, summary, details, train_rounds, eval_rounds, local_train)
    with open(os.path.join(a.out, "details.json"), "w") as f:
        json.dump(details, f, indent=1)
        f.write("\n")
    t = table(summary, details)
    words = story(summary, details)
    st = details["settings"]
    head = (f"Held-out loss in nats per byte (lower is better). Local only: each org trains "
            f"alone for {st.get('rounds')} x {st.get('steps_per_round')} steps; federated: "
            f"{st.get('rounds')} rounds of {st.get('steps_per_round')} steps per org with "
            f"secure aggregation. pooled = every org's held-out text together (local only: "
            f"each org's adapter on it, averaged).")
    with open(os.path.join(a.out, "summary.md"), "w") as f:
        f.write("# mutual demo results\n\n" + head + "\n\n" + t + "\n\n" + "\n".join(words) + "\n")
    print(t)
    print()
    for w in words:
        print(w)
    if why_no_plot:
        print(f"plot: {why_no_plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
