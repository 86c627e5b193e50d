#!/bin/sh
# cluster.sh: the integration test. 6 real `sotto run` processes on local
# sockets, MLP 784-128-10, non-IID shards (Dirichlet 0.5) of the bundled
# MNIST, every node evaluating on the 2,000 test images. Passes when:
#   - the mean test accuracy is >= 90% while local-only training on the
#     same shards is far below (>= 10 points lower on average);
#   - all nodes are within 1.5 points of each other (consensus);
#   - every node completed secure rounds, rejected zero messages, and shows
#     every peer link up in `sotto status`.
# Nodes train 6 epochs each (Epochs = 6) and then only average, so the
# cluster converges; the test waits for that with a generous deadline and
# never depends on the machine's speed beyond it.
set -eu
SOTTO=$1
SRC=$2
N=6
DEADLINE=${SOTTO_IT_DEADLINE:-600}
T=$(mktemp -d /tmp/sotto-it-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() {
	echo "FAIL: $*" >&2
	for i in $(seq 0 $((N - 1))); do
		echo "--- node $i (last lines)" >&2
		tail -n 5 "$T/node-$i.log" >&2 || true
	done
	exit 1
}

sites=""
for i in $(seq 0 $((N - 1))); do sites="$sites $i=ipc://$T/$i.sock"; done
# shellcheck disable=SC2086
sh "$SRC/scripts/cluster-init.sh" -b "$SOTTO" -o "$T" -d 11 -m 5 -e 6 -i 0.5 -T 10 $sites
for i in $(seq 0 $((N - 1))); do
	(cd "$T/sites/$i" && exec "$SOTTO" run -c "$i.conf") >"$T/node-$i.log" 2>&1 &
	pids="$pids $!"
done

# Local-only baseline meanwhile: each shard alone, the same 6 epochs.
local_sum=0
for i in $(seq 0 $((N - 1))); do
	cat >"$T/local-$i.conf" <<CONF
[Model]
Type = mlp
Hidden = 128
Seed = 5
[Training]
Dataset = shard-$i.sdat.gz
TestSet = $SRC/data/mnist-test.sdat.gz
LearningRate = 0.05
Epochs = 6
CONF
	acc=$("$SOTTO" train -c "$T/local-$i.conf" 2>&1 | awk '/^epoch/{a=$0} END{print a}' |
		sed -n 's/.*test loss [0-9.]* acc *\([0-9.]*\)%.*/\1/p')
	[ -n "$acc" ] || fail "local training of shard $i printed no accuracy"
	local_sum=$(awk -v s="$local_sum" -v a="$acc" 'BEGIN{print s + a}')
done
local_mean=$(awk -v s="$local_sum" -v n=$N 'BEGIN{printf "%.2f", s / n}')

start=$(date +%s)
while :; do
	sleep 3
	: >"$T/poll"
	for i in $(seq 0 $((N - 1))); do
		"$SOTTO" status -c "$T/sites/$i/$i.conf" >"$T/status-$i" 2>/dev/null || true
		awk -v n="$i" '$1=="accuracy"{a=$2} $1=="epochs_trained"{e=$2} $1=="training_done"{d=$2}
			$1=="rounds_completed"{r=$2} $1=="rejected"{x=$2}
			END{print n, (a==""?"-":a), (d==1?6:e+0), r+0, x+0}' "$T/status-$i" >>"$T/poll"
	done
	# pass: all evaluated after training ended (all Epochs, or training_done:
	# a node whose last local steps could not be averaged privately stops
	# early, docs/security.md), mean >= 0.90, spread <= 0.015
	verdict=$(awk '
		{ if ($2 == "-" || $3 < 5.999) wait = 1; else { s += $2; c++;
		  if (mn == "" || $2 < mn) mn = $2; if (mx == "" || $2 > mx) mx = $2 } }
		END { if (wait || c == 0) { print "wait"; exit }
		      printf "%s %.4f %.4f\n", (s / c >= 0.90 && mx - mn <= 0.015) ? "pass" : "wait", s / c, mx - mn }' "$T/poll")
	for p in $pids; do kill -0 "$p" 2>/dev/null || fail "a node exited early"; done
	case "$verdict" in pass*) break ;; esac
	[ $(($(date +%s) - start)) -lt "$DEADLINE" ] || {
		cat "$T/poll" >&2
		fail "no consensus >= 90% within ${DEADLINE}s (node accuracy epochs rounds rejected above)"
	}
done
mean=$(echo "$verdict" | awk '{printf "%.2f", 100 * $2}')
spread=$(echo "$verdict" | awk '{printf "%.2f", 100 * $3}')
awk -v g="$mean" -v l="$local_mean" 'BEGIN{exit !(g - l >= 10)}' ||
	fail "gossip $mean% is not far above local-only $local_mean%"
for i in $(seq 0 $((N - 1))); do
	rounds=$(awk '$1=="rounds_completed"{print $2}' "$T/status-$i")
	rej=$(awk '$1=="rejected"{print $2}' "$T/status-$i")
	[ "$rounds" -gt 0 ] || fail "node $i completed no round"
	[ "$rej" -eq 0 ] || fail "node $i rejected $rej messages"
	grep -q "round done" "$T/node-$i.log" || fail "node $i log shows no completed round"
	up=$(grep -c "^peer .* connected yes " "$T/status-$i" || true)
	[ "$up" -eq $((N - 1)) ] || fail "node $i shows $up of $((N - 1)) peer links up"
done
echo "integration: $N nodes, mean accuracy $mean% (local-only $local_mean%), spread $spread points, $(awk '{r+=$4} END{print r}' "$T/poll") rounds in total, 0 rejected"
