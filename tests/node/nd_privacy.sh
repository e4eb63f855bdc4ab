#!/usr/bin/env bash
# The privacy budget with real processes: `mutual serve` with the distributed discrete
# Gaussian (privacy.ddg_noise 2 over 2 survivors) and epsilon_budget 3.6, between the org-level
# epsilon of 2 released rounds (3.19) and of 3 (4.01), runs 2 of its 10 rounds, logs the plan at
# start and why it stops, puts the spent epsilon in every round's metrics line, answers
# `status --json` with it, and its orgs leave cleanly.
# usage: nd_privacy.sh MUTUAL SCRIPT
set -uo pipefail
MUTUAL=$1 SCRIPT=$2
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
. "$(dirname "${BASH_SOURCE[0]}")/nd_lib.sh"
CHECK_TIMEOUT=30
nd_setup nd_privacy 10
# uniform weights and a small clip: the per-org noise std must stay below the sampler's 2^16
sed -i 's/weight: examples/weight: uniform/; s/clip: 10, weight_max: 10000/clip: 1, weight_max: 1/' \
  coordinator.yaml
grep -q "weight_max: 1}" coordinator.yaml || exit 1
echo "privacy: {ddg_noise: 2, min_survivors: 2, colluders: 0, epsilon_budget: 3.6}" >>coordinator.yaml
wait_srv() { wait "$srv"; }
nd_serve coordinator.yaml
for i in 1 2; do
  "$MUTUAL" join --config org-$i.yaml >/dev/null 2>org-$i.log &
  pids+=($!)
  org[$i]=$!
done
for _ in $(seq 1800); do grep -q "federation stopped" serve.log && break; sleep 0.1; done
check stopped 0 "federation stopped: privacy budget: 3 released rounds would give org-level epsilon 4\.01.* above privacy\.epsilon_budget 3\.6" -- cat serve.log
check plan_logged 0 "privacy plan \(adapter of [0-9]+ values\): after 10 released rounds epsilon" -- cat serve.log
check two_rounds 0 "^2$" -- grep -c '"kind":"train","outcome":"completed"' serve.jsonl
check no_third 1 "" -- grep -q '"round":3' serve.jsonl
check metrics_eps 0 "" -- /usr/bin/python3 -c '
import json, sys
e = [json.loads(l)["epsilon"] for l in open(sys.argv[1]) if l.startswith("{\"round\"")]
assert len(e) == 2 and 2.1 < e[0] < 2.2 and 3.15 < e[1] < 3.2, e' serve.jsonl
for i in 1 2; do
  for _ in $(seq 300); do kill -0 "${org[$i]}" 2>/dev/null || break; sleep 0.1; done
  wait "${org[$i]}"
  check org_${i}_left 0 "" -- test $? = 0
done
for _ in $(seq 300); do kill -0 "$srv" 2>/dev/null || break; sleep 0.1; done
check serve_exit 0 "" -- wait_srv
# started again, the coordinator counts the released rounds from its checkpoint: it stops at
# once (and lingers), and its status has the spent epsilon of the last round
nd_serve coordinator.yaml
for _ in $(seq 300); do grep -c "federation stopped" serve.log | grep -q 2 && break; sleep 0.1; done
check restart_stopped 0 "^2$" -- grep -c "federation stopped: privacy budget" serve.log
status() {
  "$MUTUAL" -q status --coordinator 127.0.0.1:$port --ca fed/ca.crt --cert fed/operator.crt \
    --key fed/operator.key --timeout 10 "$@"
}
check status_text 0 "privacy      spent at delta 1e-05: epsilon 3\.189 org level \(0 colluding orgs; 3\.189 if none\); budget 3\.6" -- status
json=$(status --json)
check status_eps 0 "" -- /usr/bin/python3 -c '
import json, sys
j = json.loads(sys.argv[1]); p = j["privacy"]
last = [json.loads(l) for l in open(sys.argv[2]) if l.startswith("{\"round\"")][-1]
assert abs(p["epsilon"] - last["epsilon"]) < 1e-8 and p["record_epsilon"] is None, (p, last)
assert p["epsilon_budget"] == 3.6 and p["delta"] == 1e-5, p
assert p["colluders"] == 0 and p["epsilon_no_colluders"] == p["epsilon"], p' "$json" serve.jsonl
kill -TERM "$srv"
wait "$srv"

# Governed (issue 11): the same federation under a charter of both orgs; each round's entry in
# the coordinator-signed audit log carries the spent epsilon in its public metrics.
sed "s#$PWD/ckpt#$PWD/ckpt-gov#" coordinator.yaml >gov.yaml
"$MUTUAL" -q certs identity --key keys/coord.key >keys/coord.pk || exit 1
{
  echo "federation: loopback-coop"
  printf 'coordinator:\n  key: %s\n  address: "127.0.0.1:%s"\nmembers:\n' "$(cat keys/coord.pk)" \
    "$(cat port.planned)"
  for m in org-1 org-2; do
    printf '  - name: %s\n    signing_key: %s\n    tls_fingerprint: "%s"\n' "$m" \
      "$("$MUTUAL" -q certs identity --key "keys/$m.ed25519")" \
      "$(openssl x509 -noout -fingerprint -sha256 -in "fed/$m.crt" | cut -d= -f2)"
  done
  printf 'rules:\n  admit: 2-of-2\n  change_config: majority\n  release: 2-of-2\n'
  printf '  change_coordinator: majority\nprivacy:\n  min_cohort: 2\ntraining:\n  config: gov.yaml\n'
} >charter.yaml
"$MUTUAL" -q charter init --in charter.yaml --out v1.charter || exit 1
for m in org-1 org-2; do "$MUTUAL" -q charter sign --key keys/$m.ed25519 v1.charter >/dev/null || exit 1; done
"$MUTUAL" -q charter verify --chain chain --add v1.charter >/dev/null || exit 1
rm -f port
"$MUTUAL" serve --config gov.yaml --port-file port --linger 3 --coordinator-key keys/coord.key \
  --charter chain >gov.jsonl 2>gov.log &
srv=$!
pids+=($srv)
for _ in $(seq 300); do [ -s port ] && break; sleep 0.1; done
for i in 1 2; do
  "$MUTUAL" join --config org-$i.yaml --charter chain >/dev/null 2>gov.org-$i.log &
  pids+=($!)
done
for _ in $(seq 1800); do grep -q "federation stopped" gov.log && break; sleep 0.1; done
check gov_stopped 0 "federation stopped: privacy budget" -- cat gov.log
check gov_audit 0 "" -- /usr/bin/python3 -c '
import json, subprocess, sys
out = subprocess.run([sys.argv[1], "audit", "show", "--log", "ckpt-gov/audit.log", "--json"],
                     capture_output=True, check=True, text=True).stdout
rounds = [json.loads(l) for l in out.splitlines() if "\"round\"" in l]
eps = [json.loads(e["metrics"])["epsilon"] for e in rounds if e.get("kind") == "round"]
assert len(eps) == 2 and 2.1 < eps[0] < 2.2 and 3.15 < eps[1] < 3.2, (eps, out)' "$MUTUAL"
check_done
