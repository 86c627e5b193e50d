#!/bin/sh
# run_cnn.sh: four sites train a PyTorch CNN of their own definition
# (mnist_cnn.py: two convolutions + BatchNorm) on the bundled MNIST split,
# Dirichlet 0.5 across the sites, averaged through sotto's secure gossip
# ([Model] Type = external); then each site trains the same model alone, for
# comparison. Prints both, and the bytes each node sent.
#
#   examples/pytorch/run_cnn.sh [-e EPOCHS] [-o DIR] [-u]
#
# Loopback only (127.0.0.1, ports 17600-17603; -u: Unix sockets in DIR
# instead, as the test suite runs it). Builds sotto first if
# build/sotto is missing (scripts/setup.sh installs the Debian packages,
# python3-torch among them).
set -eu
EPOCHS=20
OUT=""
UNIX=0
while getopts e:o:u opt; do
	case $opt in
	e) EPOCHS=$OPTARG ;;
	o) OUT=$OPTARG ;;
	u) UNIX=1 ;;
	*) echo "usage: $0 [-e EPOCHS] [-o DIR] [-u]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/lib.sh"
# Every site takes the same number of steps: EPOCHS of an average shard
# (8,000 rows / 4 sites, batch 32), so all finish together.
STEPS=$((EPOCHS * 2000 / 32))
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/sotto-pytorch-XXXXXX)
mkdir -p "$OUT"

"$SOTTO" data split "$ROOT/data/mnist-train.sdat.gz" "$OUT/shard" --nodes 4 --mode dirichlet \
	--alpha 0.5 --seed 7 >/dev/null
start_nodes 4 "$OUT" $UNIX
echo "4 nodes up ($OUT); training the CNN at each site through sotto, $EPOCHS epochs"
tpids=""
for i in 0 1 2 3; do
	$PY "$ROOT/examples/pytorch/mnist_cnn.py" --config "$OUT/sites/$i/$i.conf" \
		--data "$OUT/shard-$i.sdat.gz" --test "$ROOT/data/mnist-test.sdat.gz" \
		--steps "$STEPS" --save "$OUT/gossip-$i.npy" >"$OUT/gossip-$i.json" \
		2>"$OUT/gossip-$i.err" &
	tpids="$tpids $!"
done
fail=0
for p in $tpids; do wait "$p" || fail=1; done
if [ $fail -ne 0 ]; then
	cat "$OUT"/gossip-*.err >&2
	echo "run_cnn: a trainer failed (logs in $OUT)" >&2
	exit 1
fi
for i in 0 1 2 3; do
	"$SOTTO" status -c "$OUT/sites/$i/$i.conf" >"$OUT/status-$i.txt"
done
stop_nodes
echo "each site alone (the same model and epochs, no sotto)"
tpids=""
for i in 0 1 2 3; do
	$PY "$ROOT/examples/pytorch/mnist_cnn.py" --alone --data "$OUT/shard-$i.sdat.gz" \
		--test "$ROOT/data/mnist-test.sdat.gz" --steps "$STEPS" >"$OUT/alone-$i.json" &
	tpids="$tpids $!"
done
for p in $tpids; do wait "$p"; done
$PY - "$OUT" <<'EOF'
import json, sys
out = sys.argv[1]
g = [json.load(open("%s/gossip-%d.json" % (out, i))) for i in range(4)]
a = [json.load(open("%s/alone-%d.json" % (out, i))) for i in range(4)]
st = []
for i in range(4):
    kv = dict(l.split(" ", 1) for l in open("%s/status-%d.txt" % (out, i)).read().splitlines() if " " in l)
    st.append(kv)
print("site  rows  through sotto  alone   rounds  MB sent by the node")
for i in range(4):
    print("%4d  %4d  %12.2f%%  %5.2f%%  %6s  %8.2f" % (
        i, g[i]["rows"], 100 * g[i]["accuracy"], 100 * a[i]["accuracy"],
        st[i].get("rounds_completed", "?"), int(st[i].get("bytes_out", 0)) / 1e6))
mg = sum(x["accuracy"] for x in g) / 4
ma = sum(x["accuracy"] for x in a) / 4
print("mean  %4d  %12.2f%%  %5.2f%%   (%d parameters incl. BatchNorm buffers)" % (
    sum(x["rows"] for x in g), 100 * mg, 100 * ma, g[0]["n_params"]))
EOF
echo "logs and results: $OUT"
