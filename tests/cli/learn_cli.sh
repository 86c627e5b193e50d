#!/bin/sh
# learn_cli.sh: `sotto data` and `sotto train` end to end on the bundled
# MNIST: info, a Dirichlet split with histograms, a CSV import, one epoch
# of the documented local-mnist.conf (a config with no [Node]), a resumed
# checkpoint, and clear errors for bad files.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-learn-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

out=$("$SOTTO" data info "$SRC/data/mnist-test.sdat.gz") || fail "data info"
echo "$out" | grep -q "2000 rows, 784 features (u8/255), 10 classes, images 1x28x28" ||
	fail "data info: $out"

"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/shard" --nodes 4 \
	--mode dirichlet --alpha 0.3 --seed 5 >"$T/split1" || fail "split"
[ "$(grep -c '^shard [0-3]: ' "$T/split1")" = 4 ] || fail "split: no histograms"
"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/again" --nodes 4 \
	--mode dirichlet --alpha 0.3 --seed 5 >"$T/split2" || fail "split again"
cmp -s "$T/shard-2.sdat.gz" "$T/again-2.sdat.gz" || fail "split not deterministic"
total=0
for i in 0 1 2 3; do
	n=$("$SOTTO" data info "$T/shard-$i.sdat.gz" | sed -n 's/.*: \([0-9]*\) rows.*/\1/p;q')
	total=$((total + n))
done
[ "$total" = 2000 ] || fail "shards hold $total rows, not 2000"

printf 'x1,x2,y\n0,1,0\n1,0,1\n2,2,1\n' >"$T/a.csv"
"$SOTTO" data import-csv "$T/a.csv" "$T/a.sdat" --header >/dev/null || fail "import-csv"
"$SOTTO" data info "$T/a.sdat" | grep -q "3 rows, 2 features (f32), 2 classes, standardised" ||
	fail "csv info"

cp "$SRC/docs/examples/local-mnist.conf" "$T/local.conf"
sed -i "s|\.\./\.\./data|$SRC/data|" "$T/local.conf"
out=$("$SOTTO" train -c "$T/local.conf" --epochs 1 --save "$T/ck") || fail "train: $out"
echo "$out" | grep -Eq '^epoch +1/1 .*test loss [0-9.]+ acc +(9[0-9]|100)\.[0-9]+%' ||
	fail "train output: $out"
out=$("$SOTTO" train -c "$T/local.conf" --epochs 1 --resume "$T/ck") || fail "resume: $out"
echo "$out" | grep -Eq '^epoch +2/2 ' || fail "resume did not continue at epoch 2: $out"

# Bad inputs: a clear message and a non-zero status, never a crash.
printf 'not a dataset' >"$T/junk"
if "$SOTTO" data info "$T/junk" 2>"$T/err"; then fail "junk accepted"; fi
grep -q "not a sotto file" "$T/err" || fail "junk message: $(cat "$T/err")"
head -c 1000 "$SRC/data/mnist-test.sdat.gz" >"$T/cut.gz"
if "$SOTTO" data info "$T/cut.gz" 2>"$T/err"; then fail "truncated accepted"; fi
grep -q "truncated" "$T/err" || fail "truncated message: $(cat "$T/err")"
if "$SOTTO" train -c "$T/local.conf" --resume "$T/junk" 2>"$T/err" >/dev/null; then
	fail "junk checkpoint accepted"
fi
grep -q "resume" "$T/err" || fail "checkpoint message: $(cat "$T/err")"
echo "learn_cli: ok"
