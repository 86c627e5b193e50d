#!/bin/sh
# demo.sh: the README's first command. Installs what is missing, builds, and
# runs a gossip-learning cluster on this machine:
#
#   - N nodes (default 8), each a separate `sotto run` process on loopback,
#     with its own key, config and data dir (written by `sotto init`);
#   - the bundled 8,000 MNIST training images split non-IID across them
#     (Dirichlet alpha 0.5, `sotto data split`); every node evaluates on the
#     common 2,000 test images so its figures compare with centralized
#     training (a real site would use its own test data);
#   - live progress: elapsed time, rounds, mean and min accuracy across
#     nodes, bytes sent per node; stops at the target mean accuracy or at
#     the time budget;
#   - a table per node: gossip accuracy against the same node training
#     alone for as many epochs (`sotto train`), and demo-out/demo.png with
#     accuracy against time and against bytes sent.
#
# Environment: SOTTO_DEMO_NODES (8), SOTTO_DEMO_SECONDS (180),
# SOTTO_DEMO_TARGET (0.93), SOTTO_DEMO_OUT (demo-out), and
# SOTTO_DEMO_CODEC: [Gossip] lines for the codec, e.g. "Codec = float32"
# (default: none, i.e. sotto's default codec; see docs/sotto.conf.md).
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build >/dev/null
cmake --build build -j"$jobs" --target sotto >/dev/null
S="$ROOT/build/sotto"

N=${SOTTO_DEMO_NODES:-8}
BUDGET=${SOTTO_DEMO_SECONDS:-180}
TARGET=${SOTTO_DEMO_TARGET:-0.93}
CODEC=${SOTTO_DEMO_CODEC:-}
OUT=${SOTTO_DEMO_OUT:-demo-out}
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
PORT=$((20000 + $$ % 12000)) # below 32768, where outgoing connections take ports

rm -rf "$OUT"
mkdir -p "$OUT/logs"
pids=""
cleanup() {
	for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM

echo "== sotto demo: $N nodes on loopback, MLP 784-128-10, MNIST split Dirichlet(0.5)"
sites=""
i=0
while [ "$i" -lt "$N" ]; do
	sites="$sites $i=127.0.0.1:$((PORT + i))"
	i=$((i + 1))
done
# shellcheck disable=SC2086
scripts/cluster-init.sh -b "$S" -o "$OUT" -g "$CODEC" $sites
sed -n 's/^shard /  shard /p' "$OUT/split.txt"
echo "== keys and configs: $OUT/sites/NODE/ (one per site, checked by sotto check)"

i=0
while [ "$i" -lt "$N" ]; do
	(cd "$OUT/sites/$i" && exec "$S" run -c "$i.conf") >"$OUT/logs/node-$i.log" 2>&1 &
	pids="$pids $!"
	i=$((i + 1))
done
echo "== started $N nodes (logs: $OUT/logs/); target mean accuracy $TARGET, budget ${BUDGET}s"
printf '%8s %8s %9s %9s %12s\n' "elapsed" "rounds" "mean acc" "min acc" "sent/node"

# Polls every node's `sotto status`; prints one progress line and appends
# "t mean min bytes rounds" to progress.dat.
poll() {
	i=0
	: >"$OUT/poll.txt"
	while [ "$i" -lt "$N" ]; do
		"$S" status -c "$OUT/sites/$i/$i.conf" 2>/dev/null |
			awk -v n="$i" '$1=="accuracy"{a=$2} $1=="bytes_out"{b=$2}
				$1=="rounds_completed"{r=$2} $1=="epochs_trained"{e=$2}
				END{print n, (a==""?"-":a), b+0, r+0, e+0}' >>"$OUT/poll.txt" || true
		i=$((i + 1))
	done
	awk -v t="$1" -v N="$N" '
		$2 != "-" { s += $2; c++; if (min == "" || $2 < min) min = $2 }
		{ b += $3; r += $4 }
		END {
			mean = c ? s / c : 0; if (min == "") min = 0
			printf "%7.0fs %8.1f %8.2f%% %8.2f%% %10.2fMB\n", t, r / N, 100 * mean, 100 * min, b / N / 1e6 > "/dev/stderr"
			printf "%.1f %.4f %.4f %.0f %.1f %d\n", t, mean, min, b / N, r / N, c
		}' "$OUT/poll.txt" 2>&1 >>"$OUT/progress.dat"
}

start=$(date +%s)
reached=0
while :; do
	sleep 2
	now=$(date +%s)
	t=$((now - start))
	poll "$t"
	last=$(tail -n 1 "$OUT/progress.dat")
	mean=$(echo "$last" | awk '{print $2}')
	evaluated=$(echo "$last" | awk '{print $6}')
	if [ "$evaluated" -eq "$N" ] && awk -v m="$mean" -v g="$TARGET" 'BEGIN{exit !(m >= g)}'; then
		reached=1
		break
	fi
	[ "$t" -ge "$BUDGET" ] && break
	for p in $pids; do
		kill -0 "$p" 2>/dev/null || { echo "a node exited early; see $OUT/logs/" >&2; exit 1; }
	done
done
elapsed=$t
cp "$OUT/poll.txt" "$OUT/final.txt"
cleanup
pids=""
if [ "$reached" = 1 ]; then
	echo "== target $TARGET reached after ${elapsed}s"
else
	echo "== time budget of ${BUDGET}s used; target $TARGET not reached"
fi

# Local-only baseline: each node's shard alone, for as many epochs as the
# node trained during the demo (rounded up), same model and optimizer.
echo "== local-only baseline: each node trains on its own shard alone"
printf '%6s %7s %8s %10s %12s %10s\n' "node" "rows" "epochs" "gossip" "local-only" "sent"
: >"$OUT/table.txt"
while read -r node acc bytes rounds epochs; do
	ep=$(awk -v e="$epochs" 'BEGIN{x = int(e); if (x < e) x++; if (x < 1) x = 1; print x}')
	rows=$(sed -n "s/^shard $node: \([0-9]*\) rows.*/\1/p" "$OUT/split.txt")
	cat >"$OUT/local-$node.conf" <<CONF
[Model]
Type = mlp
Hidden = 128
Seed = 42
[Training]
Dataset = shard-$node.sdat.gz
TestSet = $ROOT/data/mnist-test.sdat.gz
LearningRate = 0.05
Momentum = 0.9
BatchSize = 32
Epochs = $ep
CONF
	local=$("$S" train -c "$OUT/local-$node.conf" 2>&1 | awk '/^epoch/{a=$0} END{print a}' |
		sed -n 's/.*test loss [0-9.]* acc *\([0-9.]*\)%.*/\1/p')
	printf '%6s %7s %8s %9.2f%% %11s%% %8.2fMB\n' "$node" "$rows" "$ep" \
		"$(awk -v a="$acc" 'BEGIN{print a == "-" ? 0 : 100 * a}')" "${local:-?}" \
		"$(awk -v b="$bytes" 'BEGIN{print b / 1e6}')" | tee -a "$OUT/table.txt"
done <"$OUT/final.txt"

if command -v gnuplot >/dev/null 2>&1; then
	gnuplot <<GP
set terminal pngcairo size 1200,480 font ",10"
set output "$OUT/demo.png"
set multiplot layout 1,2 title "sotto: $N nodes, MNIST Dirichlet(0.5), secure gossip, codec: ${CODEC:-default}"
set grid
set key bottom right
set yrange [0:100]
set xlabel "seconds"
set ylabel "test accuracy (%)"
plot "$OUT/progress.dat" using 1:(100*\$2) with lines lw 2 title "mean of nodes", \
     "$OUT/progress.dat" using 1:(100*\$3) with lines lw 1 title "worst node"
set xlabel "MB sent per node"
plot "$OUT/progress.dat" using (\$4/1e6):(100*\$2) with lines lw 2 title "mean of nodes", \
     "$OUT/progress.dat" using (\$4/1e6):(100*\$3) with lines lw 1 title "worst node"
unset multiplot
GP
	echo "== plot: $OUT/demo.png"
fi
echo "== done: per-node logs in $OUT/logs/, progress in $OUT/progress.dat"
