#!/bin/sh
# cluster-init.sh: the set-up shared by the demo (scripts/demo.sh), the
# integration test (tests/integration/cluster.sh) and the benchmarks
# (bench/cluster.sh): the bundled MNIST split non-IID across the nodes, one
# config template, and `sotto init` writing a key and config per site.
#
#   scripts/cluster-init.sh -b SOTTO -o DIR [-d SPLIT_SEED] [-m MODEL_SEED]
#                           [-e EPOCHS] [-i INTERVAL] [-T ROUND_TIMEOUT]
#                           [-g 'Key = Value;Key = Value'] [-l LR]
#                           [-L 'Key = Value;..'] [-M 'Key = Value;..']
#                           [-D DATA] NAME=ENDPOINT...
#
# Writes DIR/shard-NAME.sdat.gz (Dirichlet 0.5 over the 8,000 training
# images, seed SPLIT_SEED, default 7), DIR/split.txt (label histograms),
# DIR/template.ini (MLP 784-128-10, SGD 0.05 momentum 0.9 batch 32,
# LocalEpochs 0.25, GroupSize 4, EvalEvery 2, every node evaluating on the
# 2,000 test images; -g adds [Gossip] keys such as a codec, -l sets the
# LearningRate, -L adds [Training] keys such as Schedule, or replaces
# Momentum, BatchSize and LocalEpochs; -M replaces the model's Type = mlp
# and Hidden = 128 with its [Model] keys, e.g. 'Type = cnn'), and
# DIR/sites/NAME/ (key + config, from `sotto init`). -D DATA uses
# DATA/site-NAME.sdat.gz and DATA/test.sdat.gz instead of the MNIST split
# and test images (no split.txt then). Without -e the
# [Training] Epochs default applies. Sites are named 0..N-1 by the callers.
set -eu
SOTTO=""
DIR=""
SPLIT_SEED=7
MODEL_SEED=42
EPOCHS=""
INTERVAL=1
TIMEOUT=5
GOSSIP=""
LR=0.05
TRAINING=""
MODEL="Type = mlp;Hidden = 128"
DATA=""
usage() { sed -n '2,25p' "$0" >&2; exit 2; }
while getopts "b:o:d:m:e:i:T:g:l:L:M:D:" opt; do
	case $opt in
	b) SOTTO=$OPTARG ;;
	o) DIR=$OPTARG ;;
	d) SPLIT_SEED=$OPTARG ;;
	m) MODEL_SEED=$OPTARG ;;
	e) EPOCHS=$OPTARG ;;
	i) INTERVAL=$OPTARG ;;
	T) TIMEOUT=$OPTARG ;;
	g) GOSSIP=$OPTARG ;;
	l) LR=$OPTARG ;;
	L) TRAINING=$OPTARG ;;
	M) MODEL=$OPTARG ;;
	D) DATA=$(cd "$OPTARG" && pwd) ;;
	*) usage ;;
	esac
done
shift $((OPTIND - 1))
[ -n "$SOTTO" ] && [ -n "$DIR" ] && [ $# -ge 1 ] || usage
ROOT=$(cd "$(dirname "$0")/.." && pwd)

if [ -n "$DATA" ]; then
	SHARD="$DATA/site-{site}.sdat.gz"
	TEST="$DATA/test.sdat.gz"
else
	"$SOTTO" data split "$ROOT/data/mnist-train.sdat.gz" "$DIR/shard" --nodes $# \
		--mode dirichlet --alpha 0.5 --seed "$SPLIT_SEED" >"$DIR/split.txt"
	SHARD="../../shard-{site}.sdat.gz"
	TEST="$ROOT/data/mnist-test.sdat.gz"
fi
{
	cat <<TPL
[Model]
Seed = $MODEL_SEED
TPL
	printf '%s\n' "$MODEL" | tr ';' '\n' | sed 's/^ *//' | grep -v '^$' || true
	cat <<TPL

[Training]
Dataset = $SHARD
TestSet = $TEST
LearningRate = $LR
TPL
	# The template's own keys, unless -L gives them (a key may appear once).
	for kv in "Momentum = 0.9" "BatchSize = 32" "LocalEpochs = 0.25"; do
		printf '%s\n' "$TRAINING" | tr ';' '\n' | grep -q "^ *${kv%% *} *=" || echo "$kv"
	done
	[ -z "$EPOCHS" ] || echo "Epochs = $EPOCHS"
	printf '%s\n' "$TRAINING" | tr ';' '\n' | sed 's/^ *//' | grep -v '^$' || true
	cat <<TPL

[Gossip]
GroupSize = 4
Interval = $INTERVAL
RoundTimeout = $TIMEOUT
EvalEvery = 2
TPL
	printf '%s\n' "$GOSSIP" | tr ';' '\n' | sed 's/^ *//' | grep -v '^$' || true
} >"$DIR/template.ini"
"$SOTTO" init -o "$DIR/sites" -t "$DIR/template.ini" "$@" >"$DIR/init.txt"
