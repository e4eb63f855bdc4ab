#!/usr/bin/env bash
# `mutual privacy`: the published TF Privacy tutorial pair through the command line, JSON that
# parses, the inverse (noise for a target ε) agreeing with the forward computation, and exit
# status 2 for usage errors, 1 for an unreachable target.
set -u
MUTUAL=$1
. "$(dirname "${BASH_SOURCE[0]}")/../check.sh"
PY=/usr/bin/python3

# TF Privacy tutorials/README.md: noise 1.12, q = 256/60000, 60 epochs x 234 steps -> 2.92
check tf_tutorial 0 "^epsilon 2\.92 at delta 1e-05: gaussian noise multiplier 1\.12, rate 0\.00426667, 14040 steps" -- \
  "$MUTUAL" privacy --noise 1.12 --rate 0.00426666666666667 --steps 14040 --delta 1e-5 --conversion classic
check tight_lower 0 "^epsilon 2\.5[0-9]* at delta" -- \
  "$MUTUAL" privacy --noise 1.12 --rate 0.00426666666666667 --steps 14040 --delta 1e-5
json=$("$MUTUAL" privacy --noise 1.12 --rate 0.00426666666666667 --steps 14040 --delta 1e-5 --json)
check json_parses 0 "^gaussian tight 14040 2\.516[0-9]* 8\.3$" -- $PY -c \
  'import json,sys; j=json.loads(sys.argv[1]); print(j["mechanism"], j["conversion"], j["steps"], j["epsilon"], j["order"])' "$json"

# the inverse: the noise printed for ε 1.5 gives ε <= 1.5 when fed back, and 1% less does not
z=$("$MUTUAL" privacy --epsilon 1.5 --rate 0.01 --steps 5000 --delta 1e-6 --json |
  $PY -c 'import json,sys; print(json.load(sys.stdin)["noise"])')
check inverse_found 0 "^[0-9.]+$" -- echo "$z"
check inverse_holds 0 "^ok$" -- $PY -c 'import json,subprocess,sys
m, z = sys.argv[1], float(sys.argv[2])
def eps(n):
    out = subprocess.run([m, "privacy", "--noise", repr(n), "--rate", "0.01", "--steps", "5000",
                          "--delta", "1e-6", "--json"], capture_output=True, check=True).stdout
    return json.loads(out)["epsilon"]
print("ok" if eps(z) <= 1.5 < eps(z * 0.99) else "bad %g %g" % (eps(z), eps(z * 0.99)))' "$MUTUAL" "$z"

check discrete_full 0 "^epsilon [0-9.]+ at delta 1e-05: discrete-gaussian noise multiplier 1, rate 1, 10 steps" -- \
  "$MUTUAL" privacy --noise 1 --steps 10 --delta 1e-5 --mechanism discrete-gaussian
check discrete_subsampled 2 "discrete-gaussian takes no --rate below 1" -- \
  "$MUTUAL" privacy --noise 1 --rate 0.1 --steps 10 --delta 1e-5 --mechanism discrete-gaussian
# Skellam at a large L2 sensitivity is within 0.1% of the Gaussian of the same deviation
check skellam_vs_gauss 0 "^ok$" -- $PY -c 'import json,subprocess,sys
def eps(*a):
    out = subprocess.run([sys.argv[1], "privacy", "--noise", "3", "--steps", "50", "--delta",
                          "1e-5", "--json", *a], capture_output=True, check=True).stdout
    return json.loads(out)["epsilon"]
s, g = eps("--mechanism", "skellam", "--l2", "1000"), eps()
print("ok" if g < s < g * 1.001 else "bad %g %g" % (s, g))' "$MUTUAL"
check skellam_subsampled 2 "skellam takes no --rate below 1" -- \
  "$MUTUAL" privacy --noise 1 --rate 0.5 --steps 10 --delta 1e-5 --mechanism skellam
check l2_for_gaussian 2 "--l1 and --l2 are for --mechanism skellam" -- \
  "$MUTUAL" privacy --noise 1 --steps 10 --delta 1e-5 --l2 4
check unreachable 1 "no noise multiplier up to 1e4 gives epsilon <= 1e-05" -- \
  "$MUTUAL" privacy --epsilon 1e-5 --steps 100000 --delta 1e-9
check no_delta 2 "--steps and --delta are required" -- "$MUTUAL" privacy --noise 1 --steps 10
check both 2 "exactly one of --noise and --epsilon" -- \
  "$MUTUAL" privacy --noise 1 --epsilon 1 --steps 10 --delta 1e-5
check bad_rate 2 "--rate wants a number from 0 to 1, got '1.5'" -- \
  "$MUTUAL" privacy --noise 1 --rate 1.5 --steps 10 --delta 1e-5
check bad_mech 2 "--mechanism is gaussian, discrete-gaussian or skellam, not 'laplace'" -- \
  "$MUTUAL" privacy --noise 1 --steps 10 --delta 1e-5 --mechanism laplace
check bad_conv 2 "--conversion is tight or classic" -- \
  "$MUTUAL" privacy --noise 1 --steps 10 --delta 1e-5 --conversion pld
check help 0 "usage: mutual privacy" -- "$MUTUAL" privacy --help

# --config: the federation's plan is the accountant's composition: org level the discrete
# Gaussian at ddg_noise over the rounds (tau vanishes, sigma^2 rounded up only lowers it),
# record level the Gaussian at dp_noise over rounds x steps (no amplification); the budget's
# round count is the last one whose epsilon stays below it
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat > "$tmp/fed.yaml" <<Y
federation: {rounds: 50}
cohort: {min_orgs: 3}
train: {steps: 20, dp_clip: 1, dp_noise: 4}
secure_agg: {clip: 1, weight_max: 1}
privacy: {ddg_noise: 2, min_survivors: 3, colluders: 0, epsilon_budget: 30, delta: 1e-5}
Y
plan=$("$MUTUAL" privacy --config "$tmp/fed.yaml" --dim 49152 --json)
org=$("$MUTUAL" privacy --noise 2 --mechanism discrete-gaussian --steps 50 --delta 1e-5 --json)
rec=$("$MUTUAL" privacy --noise 4 --steps 1000 --delta 1e-5 --json)
check plan_matches 0 "^ok$" -- $PY -c 'import json,subprocess,sys
p, o, r = (json.loads(a) for a in sys.argv[1:4])
m = sys.argv[4]
def rec(k):
    out = subprocess.run([m, "privacy", "--noise", "4", "--steps", str(20 * k), "--delta", "1e-5",
                          "--json"], capture_output=True, check=True).stdout
    return json.loads(out)["epsilon"]
k = p["rounds_allowed"]
ok = (abs(p["epsilon"] - o["epsilon"]) <= 1e-3 * o["epsilon"] and p["epsilon"] <= o["epsilon"]
      and abs(p["record_epsilon"] - r["epsilon"]) <= 1e-9 * r["epsilon"]
      and k >= 1 and rec(k) <= 30 < rec(k + 1))
print("ok" if ok else "bad %s %s %s" % (p, o, r))' "$plan" "$org" "$rec" "$MUTUAL"
check plan_text 0 "org-level epsilon 22\.0[0-9]* .*record-level epsilon 67\.4" -- \
  "$MUTUAL" privacy --config "$tmp/fed.yaml" --dim 49152

# colluders (privacy.colluders): c of the k survivors may subtract their own noise, so the
# org-level epsilon is that of the k - c honest orgs' noise, each with the sigma^2 scaled for
# k: a sum of variance (k - c) (z D)^2 / k, i.e. noise multiplier z sqrt((k - c)/k) by hand
# (2 sqrt(3/4) = 1.7320508 for z 2, k 4, c 1); epsilon_no_colluders is the plain z 2 one; the
# default for cohort.max_orgs 10 is secure aggregation's 3; c >= k leaves no noise (null/inf)
col() { # col EXTRA_PRIVACY_KEYS COHORT
  printf 'federation: {rounds: 50}\ncohort: {min_orgs: 3%s}\nsecure_agg: {clip: 1, weight_max: 1}\nprivacy: {ddg_noise: 2, min_survivors: 4%s}\n' "$2" "$1"
}
col ", colluders: 1" "" > "$tmp/c1.yaml"
col "" ", max_orgs: 10" > "$tmp/c10.yaml"
col ", colluders: 4" "" > "$tmp/c4.yaml"
p1=$("$MUTUAL" privacy --config "$tmp/c1.yaml" --dim 49152 --json)
p10=$("$MUTUAL" privacy --config "$tmp/c10.yaml" --dim 49152 --json)
p4=$("$MUTUAL" privacy --config "$tmp/c4.yaml" --dim 49152 --json)
h=$("$MUTUAL" privacy --noise 1.7320508075688772 --mechanism discrete-gaussian --steps 50 --delta 1e-5 --json)
h10=$("$MUTUAL" privacy --noise 1 --mechanism discrete-gaussian --steps 50 --delta 1e-5 --json)
check colluders_by_hand 0 "^ok$" -- $PY -c 'import json,sys
p1, p10, p4, h, h10, o = (json.loads(a) for a in sys.argv[1:7])
def near(a, b):
    return abs(a - b) <= 1e-3 * b and a <= b
ok = (p1["colluders"] == 1 and near(p1["epsilon"], h["epsilon"])
      and near(p1["epsilon_no_colluders"], o["epsilon"]) and p1["epsilon"] > p1["epsilon_no_colluders"]
      and p10["colluders"] == 3 and near(p10["epsilon"], h10["epsilon"])
      and p4["colluders"] == 4 and p4["epsilon"] is None and near(p4["epsilon_no_colluders"], o["epsilon"]))
print("ok" if ok else "bad %s %s %s %s %s" % (p1, p10, p4, h, h10))' "$p1" "$p10" "$p4" "$h" "$h10" "$org"
check colluders_text 0 "4 survivors, 1 of them possibly colluding with the coordinator: the noise of 3; 22\.0[0-9]* if none colludes" -- \
  "$MUTUAL" privacy --config "$tmp/c1.yaml" --dim 49152
check colluders_range 2 "privacy.colluders" -- sh -c "printf 'privacy: {colluders: -1}\n' > $tmp/bad.yaml; $MUTUAL privacy --config $tmp/bad.yaml --dim 4"
check plan_needs_dim 2 "give --dim" -- "$MUTUAL" privacy --config "$tmp/fed.yaml"
check plan_no_noise_args 2 "--config takes no --noise" -- \
  "$MUTUAL" privacy --config "$tmp/fed.yaml" --noise 1
check_done
