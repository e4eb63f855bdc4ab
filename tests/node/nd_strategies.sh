#!/usr/bin/env bash
# FedAdam on the server, FedProx in the orgs' local loss, and an evaluation round after every
# training round, over the wire: 2 training + 2 evaluation rounds complete with all 3 orgs,
# evaluation rounds report a finite loss over the orgs' tokens, and the federated adapter
# evaluates better after round 3 than after round 1.
# usage: nd_strategies.sh MUTUAL SCRIPT
set -euo pipefail
MUTUAL=$1 SCRIPT=$2
work=$PWD/nd_strategies
rm -rf "$work"
"$SCRIPT" --mutual "$MUTUAL" --work "$work" --orgs 3 --rounds 2 --strategy fedadam \
  --fedprox 0.01 --eval-every 1 --timeout 250
grep -q "strategy: {name: fedadam}" "$work/coordinator.yaml"
grep -q "fedprox_mu: 0.01" "$work/coordinator.yaml"
/usr/bin/python3 - "$work/coordinator-1.jsonl" <<'PY'
import json, math, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
kinds = [(r["round"], r["kind"], r["outcome"], r["orgs_completed"]) for r in rs]
assert kinds == [(1, "train", "completed", 3), (2, "eval", "completed", 3),
                 (3, "train", "completed", 3), (4, "eval", "completed", 3)], kinds
e1, e2 = rs[1], rs[3]
assert e1["tokens"] > 0 and math.isfinite(e1["loss"]) and e1["loss"] > 0, e1
assert e2["loss"] < e1["loss"], ("no progress", e1["loss"], e2["loss"])
print("ok: fedadam + fedprox rounds, eval loss %.4f -> %.4f over %d tokens"
      % (e1["loss"], e2["loss"], e1["tokens"]))
PY
