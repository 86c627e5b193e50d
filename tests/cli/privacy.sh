#!/bin/sh
# privacy.sh: [Privacy] end to end. check refuses a Delta that is not below
# 1/rows and a NoiseMultiplier that would overspend Epsilon, naming the
# numbers; a cluster with a budget trains with DP-SGD, shows epsilon in
# status and /metrics, never spends more than the budget, and keeps its
# ledger (0600) across a restart; a node whose budget is already spent
# only averages; a damaged ledger stops the start and is kept.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-privacy-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; tail -20 "$T/a.log" >&2 2>/dev/null || true; exit 1; }
A="$T/a/a.conf"
num() { "$SOTTO" status -c "$A" 2>/dev/null | awk -v k="$1" '$1 == k { print $2 }'; }
wait_for() { # AWK-TEST-ON-$v KEY WHAT
	i=0
	while [ $i -lt 300 ]; do
		v=$(num "$2")
		if [ -n "$v" ] && awk -v v="$v" "BEGIN { exit !($1) }"; then return 0; fi
		sleep 0.2
		i=$((i + 1))
	done
	fail "never: $3 (last $2: ${v:-none})"
}
start_a() {
	(cd "$T/a" && exec "$SOTTO" run -c a.conf) >>"$T/a.log" 2>&1 &
	apid=$!
	pids="$pids $apid"
}

"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/shard" --nodes 3 --seed 3 >/dev/null
cat >"$T/tpl.ini" <<TPL
[Model]
Type = logreg
[Training]
Dataset = ../shard-0.sdat.gz
Epochs = 2
LocalEpochs = 0.5
[Gossip]
GroupSize = 3
Interval = 0.3
RoundTimeout = 3
[Privacy]
Epsilon = 2
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" a=ipc://$T/a.sock b=ipc://$T/b.sock c=ipc://$T/c.sock \
	>/dev/null
"$SOTTO" check -c "$A" >/dev/null || fail "check refused the privacy config"

# check: a Delta of 1/rows or more, and an explicit noise that overspends.
sed 's/^Epsilon = 2$/Epsilon = 2\nDelta = 0.01/' "$A" >"$T/a/bad-delta.conf"
if "$SOTTO" check -c "$T/a/bad-delta.conf" 2>"$T/err"; then fail "check took Delta 0.01"; fi
grep -q "Delta 0.01 is not below 1/rows = 1/667" "$T/err" || fail "$(cat "$T/err")"
sed 's/^Epsilon = 2$/Epsilon = 2\nNoiseMultiplier = 0.3/' "$A" >"$T/a/bad-noise.conf"
if "$SOTTO" check -c "$T/a/bad-noise.conf" 2>"$T/err"; then fail "check took sigma 0.3"; fi
grep -q "Epochs 2 at NoiseMultiplier 0.3 would spend epsilon .*, over the Epsilon 2: raise NoiseMultiplier to" "$T/err" ||
	fail "$(cat "$T/err")"

start_a
for s in b c; do
	(cd "$T/$s" && exec "$SOTTO" run -c "$s.conf") >"$T/$s.log" 2>&1 &
	pids="$pids $!"
done
grep -q "privacy: DP-SGD, NoiseMultiplier" "$T/a.log" 2>/dev/null ||
	sleep 1
grep -q "privacy: DP-SGD, NoiseMultiplier" "$T/a.log" || fail "no privacy line at start"
wait_for 'v > 0 && v <= 2' epsilon_spent "epsilon charged, within the budget"
wait_for 'v == 1' training_done "training done"
wait_for 'v > 0' rounds_completed "a round"
spent=$(num epsilon_spent)
awk -v v="$spent" 'BEGIN { exit !(v > 1 && v <= 2) }' || fail "spent $spent after all Epochs"
[ "$(num epsilon_budget)" = 2 ] || fail "budget not shown"
[ "$(stat -c %a "$T/a/state/privacy.ledger")" = 600 ] || fail "ledger mode"
head -1 "$T/a/state/privacy.ledger" | grep -qx "sotto-privacy-ledger 1" || fail "ledger format"

# Restart: the spend survives, and nothing more is trained.
kill -TERM "$apid"
wait "$apid" 2>/dev/null || true
start_a
wait_for 'v == 1' training_done "training done after restart"
[ "$(num epsilon_spent)" = "$spent" ] || fail "spent $(num epsilon_spent) after restart, was $spent"
steps=$(num privacy_steps)

# More Epochs on the same budget: it is spent, so the node only averages.
kill -TERM "$apid"
wait "$apid" 2>/dev/null || true
sed 's/^Epochs = 2$/Epochs = 4\nLearningRate = 0.05/' "$A" >"$A.new" && mv "$A.new" "$A"
start_a
wait_for 'v == 1' training_done "training done with the budget spent"
# (A node that settled on its group's result ends training before it asks
# the budget; either way, not one more step is charged.)
grep -q "privacy budget spent\|settled on the last group result" "$T/a.log" ||
	fail "no budget line"
[ "$(num privacy_steps)" = "$steps" ] || fail "steps charged: $(num privacy_steps), was $steps"
awk -v v="$(num epsilon_spent)" 'BEGIN { exit !(v <= 2) }' || fail "overspent"

# A damaged ledger: the node does not start, and the file is kept.
kill -TERM "$apid"
wait "$apid" 2>/dev/null || true
sed -i 's/^steps /steps x/' "$T/a/state/privacy.ledger"
if (cd "$T/a" && "$SOTTO" run -c a.conf) >"$T/bad.log" 2>&1; then fail "started on a bad ledger"; fi
grep -q "privacy.ledger: .*the privacy ledger is kept" "$T/bad.log" || fail "$(cat "$T/bad.log")"
grep -q "^steps x" "$T/a/state/privacy.ledger" || fail "the ledger was replaced"
echo "privacy: checks, DP-SGD within the budget across restarts, damaged ledger refused: OK"
