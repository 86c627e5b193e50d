#!/bin/sh
# export.sh: `sotto export` and `sotto predict` (issue 16, item 3). A node
# trains on an imported CSV and stops; export writes its model as a .npz
# (mode 0600) and a JSON sidecar; numpy, with no sotto code, loads the
# tensors, runs the forward pass the sidecar describes on the raw CSV rows
# and gets the labels and probabilities `sotto predict` wrote; predict reads
# CSVs (features only, or with --label and the accuracy) and dataset files;
# a missing checkpoint, a CSV of other columns, a dataset scaled otherwise
# and bad arguments are refused with a reason and write nothing.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-export-XXXXXX)
pid=""
cleanup() {
	[ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; tail -20 "$T/a.log" >&2 2>/dev/null || true; exit 1; }
PY=/usr/bin/python3

# 3 classes in 6 features, 600 training rows and 150 test rows
awk 'BEGIN { srand(5); for (i = 0; i < 750; i++) { c = i % 3; line = "";
	for (j = 0; j < 6; j++) line = line sprintf("%.3f,", (j == 2 * c ? 3 : 0) + 2 * rand() - 1 + j);
	print line c > (i < 600 ? "'"$T"'/train.csv" : "'"$T"'/test.csv") } }'
"$SOTTO" data import-csv "$T/train.csv" "$T/train.sdat.gz" >/dev/null 2>&1
cut -d, -f1-6 "$T/test.csv" >"$T/features.csv"
cat >"$T/tpl.ini" <<TPL
[Model]
Type = mlp
Hidden = 8, 5
[Training]
Dataset = $T/train.sdat.gz
Epochs = 4
LocalEpochs = 1
[Gossip]
Interval = 1
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" a=127.0.0.1:1 b=127.0.0.1:2 c=127.0.0.1:3 d=127.0.0.1:4 >/dev/null
A="$T/a/a.conf"
cd "$T/a"

# Before the node ever ran: no checkpoint, said so, nothing written.
if "$SOTTO" export -c "$A" -o "$T/m.npz" 2>"$T/err"; then fail "export without a checkpoint"; fi
grep -q "does not exist yet" "$T/err" || fail "no reason: $(cat "$T/err")"
[ ! -e "$T/m.npz" ] || fail "wrote a file without a checkpoint"

# The node alone (its peers are not there) trains its epochs and checkpoints when it stops.
"$SOTTO" run -c "$A" >"$T/a.log" 2>&1 &
pid=$!
i=0
phase=""
while [ "$phase" != averaging ] && [ "$phase" != done ]; do
	[ $i -lt 150 ] || fail "the node never finished its 4 epochs (phase '$phase')"
	sleep 0.2
	i=$((i + 1))
	phase=$("$SOTTO" status -c "$A" 2>/dev/null | awk '$1 == "phase" { print $2 }')
done
kill -TERM "$pid"
wait "$pid" || true
pid=""
[ -f state/checkpoint ] || fail "the node left no checkpoint"

"$SOTTO" export -c "$A" -o "$T/m.npz" >"$T/out" || fail "export: $(cat "$T/out")"
grep -q "^exported mlp, 119 parameters" "$T/out" || fail "export said: $(cat "$T/out")"
for f in m.npz m.json; do
	[ "$(stat -c %a "$T/$f")" = 600 ] || fail "$f is mode $(stat -c %a "$T/$f"), not 600"
done
grep -q '"rounds_completed": 0' "$T/m.json" || fail "sidecar without the node's progress: $(cat "$T/m.json")"

"$SOTTO" predict -c "$A" "$T/features.csv" "$T/p.csv" 2>"$T/err" || fail "predict: $(cat "$T/err")"
grep -q "^predicted 150 rows with mlp" "$T/err" || fail "predict said: $(cat "$T/err")"
"$SOTTO" predict -c "$A" "$T/test.csv" "$T/p2.csv" --label 6 2>"$T/err" || fail "predict --label: $(cat "$T/err")"
acc=$(sed -n 's/.*accuracy \([0-9.]*\)%.*/\1/p' "$T/err")
awk -v a="$acc" 'BEGIN { exit !(a >= 90) }' || fail "accuracy '$acc' on an easy task"
cmp -s "$T/p.csv" "$T/p2.csv" || fail "the same rows with and without a label column predicted differently"
"$SOTTO" predict -c "$A" "$T/train.sdat.gz" "$T/p3.csv" 2>"$T/err" || fail "predict a dataset file: $(cat "$T/err")"
[ "$(wc -l <"$T/p3.csv")" = 601 ] || fail "dataset predictions: $(wc -l <"$T/p3.csv") lines"

if [ -x "$PY" ] && "$PY" -c 'import numpy' 2>/dev/null; then
	"$PY" - "$T" <<'PY' || fail "numpy disagrees with sotto predict"
import csv, json, sys
import numpy as np
t = sys.argv[1]
meta = json.load(open(t + "/m.json"))
z = np.load(t + "/m.npz")
assert sorted(z.files) == sorted(meta["tensors"]), (z.files, meta["tensors"])
for name, shape in meta["tensors"].items():
    assert z[name].dtype == np.float32 and list(z[name].shape) == shape, name
assert meta["model"]["type"] == "mlp" and meta["model"]["hidden"] == [8, 5]
raw = np.loadtxt(t + "/features.csv", delimiter=",", dtype=np.float64)
x = ((raw.astype(np.float32) - z["input.mean"]) / z["input.std"]).astype(np.float32)
n = len(meta["model"]["hidden"]) + 1
for i in range(1, n + 1):
    x = x @ z["fc%d.weight" % i].T + z["fc%d.bias" % i]
    if i < n:
        x = np.maximum(x, 0)
p = np.exp(x - x.max(axis=1, keepdims=True))
p /= p.sum(axis=1, keepdims=True)
rows = list(csv.reader(open(t + "/p.csv")))
assert rows[0] == ["label", "p0", "p1", "p2"], rows[0]
got = np.array([[float(v) for v in r[1:]] for r in rows[1:]])
labels = np.array([int(r[0]) for r in rows[1:]])
assert got.shape == p.shape, (got.shape, p.shape)
err = np.abs(got - p).max()
assert err < 1e-4, err
assert (labels == p.argmax(axis=1)).all()
print("numpy round trip: %d rows, max |p - p_numpy| = %.2g" % (len(labels), err))
PY
else
	echo "export: numpy round trip skipped (no python3-numpy; scripts/setup.sh installs it)"
fi

# Refusals: nothing written, a reason given.
rm -f "$T/bad.csv.out"
cut -d, -f1-5 "$T/test.csv" >"$T/narrow.csv"
if "$SOTTO" predict -c "$A" "$T/narrow.csv" "$T/bad.out" 2>"$T/err"; then fail "5 columns accepted"; fi
grep -q "features, but the stats file has 6" "$T/err" || fail "no reason for 5 columns: $(cat "$T/err")"
"$SOTTO" data import-csv "$T/test.csv" "$T/own.sdat.gz" >/dev/null 2>&1
if "$SOTTO" predict -c "$A" "$T/own.sdat.gz" "$T/bad.out" 2>"$T/err"; then fail "other scaling accepted"; fi
grep -q "scaled unlike Dataset" "$T/err" || fail "no reason for other scaling: $(cat "$T/err")"
[ ! -e "$T/bad.out" ] || fail "a refused predict wrote its output"
set +e
"$SOTTO" export -c "$A" -o "$T/m.zip" 2>/dev/null
[ $? = 2 ] || fail "export -o without .npz: not a usage error"
"$SOTTO" predict -c "$A" "$T/features.csv" 2>/dev/null
[ $? = 2 ] || fail "predict without OUT: not a usage error"
"$SOTTO" predict -c "$A" "$T/features.csv" "$T/bad.out" --bogus 2>/dev/null
[ $? = 2 ] || fail "predict --bogus: not a usage error"
set -e
echo "export: ok"
