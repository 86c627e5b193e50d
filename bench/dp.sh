#!/bin/bash
# dp.sh: issue 18's table, differential privacy's accuracy against epsilon,
# in the simulator (the real node code, seeded: runs repeat exactly), with
# central DP-SGD on the pooled records at the same sampling rate beside it.
#
#   bench/dp.sh [--quick] [-o OUT]
#
# Two datasets:
#   mnist   the demo's 8 sites (data/, Dirichlet 0.5), MLP 784-128-10;
#   digits  a CSV: scikit-learn's 8x8 digits (1,797 rows, 64 features, 10
#           classes) from Debian's python3-sklearn package (fetched with
#           `apt-get download` when scikit-learn is not installed), split 80/20
#           with seed 1, imported with `sotto data import-csv` (the test set
#           with --stats of the training set), 4 sites, Dirichlet 0.5.
# Per dataset: epsilon 1, 3 and 8 (delta 1e-5) over seeds 1-3 with the DP
# settings of docs/privacy.md, the same sites without DP (the bench's
# settings), and `sotto train` on the pooled rows (DP with BatchSize = sites
# x the sites' BatchSize: the same q and sigma). --quick: seed 1 only.
# Takes about 10 minutes on 2 cores (digits: a few seconds a run). Not in CI.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
OUT=bench-out/dp
SEEDS="1 2 3"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) SEEDS=1 ;;
	-o) OUT=$2; shift ;;
	*) sed -n '2,20p' "$0" >&2; exit 2 ;;
	esac
	shift
done
SIM=$ROOT/build/sotto-sim
SOTTO=$ROOT/build/sotto
for b in "$SIM" "$SOTTO"; do
	[ -x "$b" ] || { echo "dp.sh: $b is missing: build first (cmake -B build && make -C build)" >&2; exit 1; }
done
mkdir -p "$OUT"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# digits.csv.gz from scikit-learn, installed or fetched as a Debian package
DIGITS=$(python3 -c 'import sklearn, os; print(os.path.join(os.path.dirname(sklearn.__file__), "datasets/data/digits.csv.gz"))' 2>/dev/null || true)
if [ -z "$DIGITS" ] || [ ! -f "$DIGITS" ]; then
	(cd "$WORK" && apt-get download python3-sklearn >/dev/null 2>&1) ||
		{ echo "dp.sh: scikit-learn's digits are needed: apt-get install python3-sklearn" >&2; exit 1; }
	dpkg-deb -x "$WORK"/python3-sklearn_*.deb "$WORK/skl"
	DIGITS=$(find "$WORK/skl" -name digits.csv.gz | head -1)
fi
python3 - "$DIGITS" "$WORK" <<'PY'
import gzip, random, sys
rows = [l.strip() for l in gzip.open(sys.argv[1], "rt") if l.strip()]
random.Random(1).shuffle(rows)
k = int(len(rows) * 0.8)
open(sys.argv[2] + "/digits-train.csv", "w").write("\n".join(rows[:k]) + "\n")
open(sys.argv[2] + "/digits-test.csv", "w").write("\n".join(rows[k:]) + "\n")
PY
"$SOTTO" data import-csv "$WORK/digits-train.csv" "$WORK/digits-train.sdat.gz" >/dev/null 2>&1
"$SOTTO" data import-csv "$WORK/digits-test.csv" "$WORK/digits-test.sdat.gz" \
	--stats "$WORK/digits-train.sdat.gz" >/dev/null 2>&1

# name sites sim-data sim-seconds train test lr batch clip
run_table() {
	local name=$1 sites=$2 data=$3 secs=$4 train=$5 test=$6 lr=$7 batch=$8 clip=$9
	local tkeys="LearningRate = $lr;Momentum = 0.9;BatchSize = $batch;LocalEpochs = 0.35"
	local table=$OUT/$name.md
	{
		echo "| epsilon | $sites sites, seeds $SEEDS | central, pooled |"
		echo "| --- | --- | --- |"
	} >"$table"
	for eps in 1 3 8 none; do
		local cells="" central
		for seed in $SEEDS; do
			local acc
			if [ "$eps" = none ]; then
				acc=$("$SIM" run -n "$sites" -s "$secs" --seed "$seed" -q $data | awk '/^final_mean/ {print $2}')
			else
				acc=$("$SIM" run -n "$sites" -s "$secs" --seed "$seed" -q $data -e 30 \
					--training "$tkeys" --privacy "Epsilon = $eps;ClipNorm = $clip" |
					awk '/^final_mean/ {print $2}')
			fi
			cells="$cells${cells:+ / }$(awk -v a="$acc" 'BEGIN {printf "%.2f%%", a * 100}')"
		done
		{
			echo "[Model]"
			echo "Type = mlp"
			echo "Hidden = 128"
			echo "[Training]"
			echo "Dataset = $train"
			echo "TestSet = $test"
			if [ "$eps" = none ]; then
				printf 'LearningRate = 0.05\nMomentum = 0.9\nBatchSize = 32\nEpochs = 20\n'
			else
				printf 'LearningRate = %s\nMomentum = 0.9\nBatchSize = %s\nEpochs = 30\n' \
					"$lr" $((batch * sites))
				printf '[Privacy]\nEpsilon = %s\nClipNorm = %s\n' "$eps" "$clip"
			fi
		} >"$WORK/central.conf"
		central=$("$SOTTO" train -c "$WORK/central.conf" | awk '/^best test accuracy/ {print $NF}')
		echo "| $eps | $cells | $central |" >>"$table"
		echo "$name epsilon $eps: $cells; central $central" >&2
	done
	echo "== $name"
	cat "$table"
}

run_table mnist 8 "" 125 "$ROOT/data/mnist-train.sdat.gz" "$ROOT/data/mnist-test.sdat.gz" 2 128 0.1
run_table digits 4 "--data $WORK/digits-train.sdat.gz,$WORK/digits-test.sdat.gz" 125 \
	"$WORK/digits-train.sdat.gz" "$WORK/digits-test.sdat.gz" 1 45 0.1
