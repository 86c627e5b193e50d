#!/bin/sh
# run_tabular.sh: three sites train a PyTorch MLP of their own on their own
# CSV (tabular.py: synthetic, 12 features, 3 classes, a different case mix
# at each site) through sotto's secure gossip, then each alone. Prints both.
#
#   examples/pytorch/run_tabular.sh [-o DIR] [-u]
#
# Loopback only (127.0.0.1, ports 17600-17602; -u: Unix sockets in DIR).
set -eu
OUT=""
UNIX=0
while getopts o:u opt; do
	case $opt in
	o) OUT=$OPTARG ;;
	u) UNIX=1 ;;
	*) echo "usage: $0 [-o DIR] [-u]" >&2; exit 2 ;;
	esac
done
. "$(dirname "$0")/lib.sh"
[ -n "$OUT" ] || OUT=$(mktemp -d /tmp/sotto-tabular-XXXXXX)
mkdir -p "$OUT"
$PY "$ROOT/examples/pytorch/tabular.py" make-data "$OUT/data"
start_nodes 3 "$OUT" $UNIX
echo "3 nodes up ($OUT); each site trains its MLP on its CSV through sotto"
tpids=""
for i in 0 1 2; do
	$PY "$ROOT/examples/pytorch/tabular.py" train --config "$OUT/sites/$i/$i.conf" \
		--csv "$OUT/data/site-$i.csv" --test "$OUT/data/test.csv" >"$OUT/gossip-$i.json" &
	tpids="$tpids $!"
done
for p in $tpids; do wait "$p"; done
for i in 0 1 2; do "$SOTTO" status -c "$OUT/sites/$i/$i.conf" >"$OUT/status-$i.txt"; done
stop_nodes
tpids=""
for i in 0 1 2; do
	$PY "$ROOT/examples/pytorch/tabular.py" train --alone --csv "$OUT/data/site-$i.csv" \
		--test "$OUT/data/test.csv" >"$OUT/alone-$i.json" &
	tpids="$tpids $!"
done
for p in $tpids; do wait "$p"; done
$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
g = [json.load(open("%s/gossip-%d.json" % (out, i))) for i in range(3)]
a = [json.load(open("%s/alone-%d.json" % (out, i))) for i in range(3)]
st = [dict(l.split(" ", 1) for l in open("%s/status-%d.txt" % (out, i)).read().splitlines()
           if " " in l) for i in range(3)]
print("site  rows  through sotto  alone   rounds  MB sent by the node")
for i in range(3):
    print("%4d  %4d  %12.2f%%  %5.2f%%  %6s  %8.2f" % (
        i, g[i]["rows"], 100 * g[i]["accuracy"], 100 * a[i]["accuracy"],
        st[i].get("rounds_completed", "?"), int(st[i].get("bytes_out", 0)) / 1e6))
print("mean        %12.2f%%  %5.2f%%  (test set: all three case mixes)" % (
    100 * sum(x["accuracy"] for x in g) / 3, 100 * sum(x["accuracy"] for x in a) / 3))
PY
echo "logs and results: $OUT"
