#!/bin/bash
# standardize.sh: federated standardisation against per-site and central
# standardisation, with sites that each import only their own CSV.
#
#   bench/standardize.sh -b SOTTO -o OUT [-r RUNS] [-d 'breast digits mnist']
#                        [-m 'local federated central']
#
# For each dataset: bench/standardize_data.py writes one CSV per site
# (labels Dirichlet 0.5 over the sites) and a held-out test CSV; every site
# imports its own file with `sotto data import-csv --raw`; then real
# `sotto run` clusters (bench/cluster.sh -D) train with [Training]
# Standardize = local (each site its own statistics), federated (agreed
# through secure rounds) and a FILE holding the pooled statistics (central,
# the reference), RUNS times each (default 2). Writes OUT/results.txt: per
# dataset and mode the final mean and worst-site test accuracy of every
# run and their mean, and for federated the largest distance of any site's
# agreed statistics from the central ones (mean: in deviations; deviation:
# relative).
#
#   breast  Wisconsin breast cancer, 4 sites, logreg
#   digits  8x8 digits, 10 sites, MLP 64
#   mnist   the bundled 8,000 MNIST images as 0..255 CSV, 8 sites, MLP 128
#
# The first two come from Debian's python3-sklearn (its CSV copies; no
# scikit-learn import): apt-get install python3-sklearn. About 25 minutes
# with RUNS 2. Not a test: it asserts nothing.
set -eu

SOTTO=""
OUT=""
RUNS=2
SETS="breast digits mnist"
MODES="local federated central"
while getopts "b:o:r:d:m:" opt; do
	case $opt in
	b) SOTTO=$(realpath "$OPTARG") ;;
	o) OUT=$OPTARG ;;
	r) RUNS=$OPTARG ;;
	d) SETS=$OPTARG ;;
	m) MODES=$OPTARG ;;
	*) sed -n '2,29p' "$0" >&2; exit 2 ;;
	esac
done
[ -n "$SOTTO" ] && [ -n "$OUT" ] || { sed -n '2,29p' "$0" >&2; exit 2; }
SRC=$(cd "$(dirname "$0")/.." && pwd)
PY=/usr/bin/python3
if [ ! -r /usr/lib/python3/dist-packages/sklearn/datasets/data/breast_cancer.csv ]; then
	echo "standardize.sh: needs Debian's python3-sklearn (apt-get install python3-sklearn)" >&2
	exit 2
fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
RES="$OUT/results.txt"
: >"$RES"

# dataset -> sites, seconds, classes, cluster.sh options
setting() {
	case $1 in
	breast) echo "4 45 2 -e 20 -l 0.1 -M Type=logreg -L BatchSize=16;LocalEpochs=1" ;;
	digits) echo "10 60 10 -e 30 -l 0.05 -M Type=mlp;Hidden=64 -L BatchSize=16;LocalEpochs=1" ;;
	mnist) echo "8 110 10 -e 20 -l 0.05 -M Type=mlp;Hidden=128 -L BatchSize=32;LocalEpochs=0.25" ;;
	esac
}

# The farthest any site's agreed statistics are from the central ones.
stats_gap() {
	$PY - "$1" "$2" <<'EOF'
import glob, sys
def read(p):
    m, s = [], []
    for line in open(p):
        line = line.split("#")[0].split()
        if len(line) == 3 and line[0].isdigit():
            m.append(float(line[1])); s.append(float(line[2]))
    return m, s
cm, cs = read(sys.argv[2])
dm = ds = 0.0
files = glob.glob(sys.argv[1] + "/sites/*/state/standardize.stats")
for f in files:
    m, s = read(f)
    dm = max([dm] + [abs(a - b) / d for a, b, d in zip(m, cm, cs)])
    ds = max([ds] + [abs(a / b - 1) for a, b in zip(s, cs)])
print("%d sites: mean within %.2g deviations, deviation within %.2g (relative)" % (len(files), dm, ds))
EOF
}

for set in $SETS; do
	read -r sites secs classes opts <<<"$(setting "$set")"
	data="$OUT/$set/data"
	mkdir -p "$data"
	$PY "$SRC/bench/standardize_data.py" "$set" "$sites" "$data" >"$data/split.txt"
	for ((i = 0; i < sites; i++)); do
		"$SOTTO" data import-csv "$data/site-$i.csv" "$data/site-$i.sdat.gz" --raw \
			--classes "$classes" >/dev/null 2>&1
	done
	"$SOTTO" data import-csv "$data/test.csv" "$data/test.sdat.gz" --raw --classes "$classes" \
		>/dev/null 2>&1
	# shellcheck disable=SC2206
	o=($opts)
	model=${o[5]//=/ = }
	train=${o[7]//=/ = }
	for mode in $MODES; do
		std=$mode
		[ "$mode" = central ] && std="$data/central.stats"
		line="$set $mode:"
		sum=0
		for ((r = 1; r <= RUNS; r++)); do
			run="$OUT/$set/$mode-$r"
			rm -rf "$run"
			"$SRC/bench/cluster.sh" -b "$SOTTO" -o "$run" -n "$sites" -s "$secs" -q \
				"${o[0]}" "${o[1]}" "${o[2]}" "${o[3]}" -M "$model" \
				-L "Standardize = $std;$train" -D "$data"
			mean=$(awk '$1 == "final_mean" { print $2 }' "$run/summary.txt")
			min=$(awk '$1 == "final_min" { print $2 }' "$run/summary.txt")
			line="$line run $r mean $mean min $min;"
			sum=$(awk -v a="$sum" -v b="$mean" 'BEGIN { print a + b }')
			if [ "$mode" = federated ]; then
				echo "$set federated run $r: $(stats_gap "$run" "$data/central.stats")" >>"$RES"
			fi
		done
		echo "$line mean of runs $(awk -v s="$sum" -v n="$RUNS" 'BEGIN { printf "%.4f", s / n }')" >>"$RES"
		tail -1 "$RES"
	done
done
cat "$RES"
