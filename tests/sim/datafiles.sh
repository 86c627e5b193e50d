#!/bin/sh
# datafiles.sh: the simulator on dataset files of one's own (--data
# TRAIN,TEST, e.g. a CSV imported with `sotto data import-csv`), with DP-SGD:
# the run learns the task (a few linearly separable clusters), verifies every
# round, spends no more than its epsilon, and repeats exactly for a seed; a
# test set whose features differ, or a missing file, is refused with a reason.
set -eu
SIM=$1
ROOT=$2
SOTTO=$(dirname "$SIM")/sotto
T=$(mktemp -d /tmp/sotto-simdata-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
get() { sed -n "s/^$1 //p" "$2"; }

# 3 classes around 3 centres in 6 features, 600 training rows, 150 test rows
awk 'BEGIN { srand(5); for (i = 0; i < 750; i++) { c = i % 3; line = "";
	for (j = 0; j < 6; j++) line = line sprintf("%.3f,", (j == 2 * c ? 3 : 0) + rand() - 0.5);
	print line c > (i < 600 ? "'"$T"'/train.csv" : "'"$T"'/test.csv") } }'
"$SOTTO" data import-csv "$T/train.csv" "$T/train.sdat.gz" >/dev/null 2>&1
"$SOTTO" data import-csv "$T/test.csv" "$T/test.sdat.gz" --stats "$T/train.sdat.gz" >/dev/null 2>&1
run() {
	"$SIM" run --root "$ROOT" -n 4 -s 30 --seed 3 -q -e 5 --data "$T/train.sdat.gz,$T/test.sdat.gz" \
		--model 'Type = logreg' --privacy 'Epsilon = 4;ClipNorm = 1' "$@"
}
run >"$T/a.txt" || fail "the run failed"
run >"$T/b.txt" || fail "the second run failed"
grep -v '^wall_s\|^rss_kb' "$T/a.txt" >"$T/a2.txt"
grep -v '^wall_s\|^rss_kb' "$T/b.txt" >"$T/b2.txt"
cmp -s "$T/a2.txt" "$T/b2.txt" || fail "two runs of one seed differ"
final=$(get final_mean "$T/a.txt")
eps=$(get epsilon_max "$T/a.txt")
echo "datafiles: final $final, epsilon_max $eps, violations $(get violations "$T/a.txt")"
awk -v a="$final" 'BEGIN { exit !(a >= 0.9) }' || fail "final accuracy $final below 90%"
awk -v e="$eps" 'BEGIN { exit !(e > 0 && e <= 4) }' || fail "epsilon_max $eps not in (0, 4]"
[ "$(get violations "$T/a.txt")" = 0 ] || fail "violations"

# A test set of other features is refused, naming both shapes.
head -n 100 "$T/train.csv" | cut -d, -f2- >"$T/narrow.csv"
"$SOTTO" data import-csv "$T/narrow.csv" "$T/narrow.sdat.gz" >/dev/null 2>&1
if "$SIM" run --root "$ROOT" -n 4 -s 5 -q --data "$T/train.sdat.gz,$T/narrow.sdat.gz" >"$T/err.txt" 2>&1; then
	fail "a test set with other features was accepted"
fi
grep -q "5 features and 3 classes, the training set 6 and 3" "$T/err.txt" || { cat "$T/err.txt"; fail "no reason given"; }
if "$SIM" run --root "$ROOT" -n 4 -s 5 -q --data "$T/none.sdat.gz,$T/test.sdat.gz" >"$T/err.txt" 2>&1; then
	fail "a missing file was accepted"
fi
grep -q "none.sdat.gz" "$T/err.txt" || { cat "$T/err.txt"; fail "the missing file is not named"; }
echo "datafiles: ok"
