#!/bin/sh
# standardize.sh: [Training] Standardize from a user's side. Three sites
# import only their own CSV (--raw, --sums); misuses are refused by name
# (--raw with --stats, --sums without --raw, Standardize on data that was
# standardised at import, a statistics file of other features, federated
# in `sotto train`); `train` with Standardize = local and with a file;
# then three real nodes with Standardize = federated agree the statistics
# through secure rounds (status phase "standardising" while one site is
# missing; one site killed in the middle resumes without counting its rows
# twice), every site's DataDir/standardize.stats matches the pooled
# statistics of all rows (computed here from the CSVs), the node trains,
# a restart goes straight to training, and export and predict scale with
# the agreed statistics.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-std-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	[ -n "${KEEP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() {
	echo "FAIL: $*" >&2
	tail -5 "$T"/*.log >&2 2>/dev/null || true
	exit 1
}

# Three sites whose features differ in scale by 10^6 and in mean by site.
for s in 0 1 2; do
	awk -v s=$s 'BEGIN {
		n = 40 + 20 * s
		for (i = 0; i < n; i++) {
			x0 = 1000 + 100 * s + (i * 37) % 50
			x1 = 0.001 * (i % 7) + 0.01 * s
			printf "%.6f,%.6f,%d\n", x0, x1, (x0 + 3000 * x1 > 1110) ? 1 : 0
		}
	}' >"$T/site-$s.csv"
done
cat "$T"/site-*.csv >"$T/all.csv"

"$SOTTO" data import-csv "$T/site-0.csv" "$T/std0.sdat" >/dev/null 2>&1 || fail "plain import"
for s in 0 1 2; do
	"$SOTTO" data import-csv "$T/site-$s.csv" "$T/site-$s.sdat" --raw --sums "$T/site-$s.sums" \
		>"$T/import.out" 2>&1 || fail "raw import of site $s"
done
grep -q "not standardised" "$T/import.out" || fail "a raw import does not say it is raw"
grep -q "^sotto-stats 1 sums$" "$T/site-2.sums" || fail "no sums file"
grep -q "^rows 80$" "$T/site-2.sums" || fail "the sums file does not count site 2's 80 rows"
"$SOTTO" data import-csv "$T/site-0.csv" "$T/x.sdat" --raw --stats "$T/std0.sdat" \
	>/dev/null 2>"$T/err" && fail "--raw with --stats accepted"
grep -q "exclude each other" "$T/err" || fail "--raw with --stats: no reason"
"$SOTTO" data import-csv "$T/site-0.csv" "$T/x.sdat" --sums "$T/x.sums" >/dev/null 2>"$T/err" &&
	fail "--sums without --raw accepted"
grep -q "needs --raw" "$T/err" || fail "--sums without --raw: no reason"
[ ! -e "$T/x.sdat" ] || fail "a refused import wrote its output"

# The pooled statistics of all rows: the reference.
awk -F, '{ for (j = 1; j <= 2; j++) { s[j] += $j; q[j] += $j * $j } n++ }
	END { printf "sotto-stats 1 mean-std\nfeatures 2\nrows %d\n", n
	      for (j = 1; j <= 2; j++) { m = s[j] / n; printf "%d %.9g %.9g\n", j - 1, m, sqrt(q[j] / n - m * m) } }' \
	"$T/all.csv" >"$T/central.stats"

# `sotto train` and `check` on their own.
cat >"$T/train.conf" <<CONF
[Model]
Type = logreg
[Training]
Dataset = site-0.sdat
Epochs = 2
Standardize = local
CONF
"$SOTTO" train -c "$T/train.conf" >"$T/train.log" 2>&1 || fail "train with Standardize = local"
sed 's|^Standardize = local$|Standardize = central.stats|' "$T/train.conf" >"$T/file.conf"
"$SOTTO" train -c "$T/file.conf" >"$T/train.log" 2>&1 || fail "train with a statistics file"
sed 's|^Standardize = local$|Standardize = federated|' "$T/train.conf" >"$T/fed.conf"
"$SOTTO" train -c "$T/fed.conf" >"$T/train.log" 2>&1 && fail "train agreed federated statistics alone"
grep -q "agrees the statistics with its" "$T/train.log" || fail "train with federated: no reason"
sed 's|^Dataset = site-0.sdat$|Dataset = std0.sdat|' "$T/train.conf" >"$T/twice.conf"
"$SOTTO" check -c "$T/twice.conf" >"$T/check.log" 2>&1 && fail "standardising twice accepted"
grep -q "was standardised when it" "$T/check.log" || fail "standardising twice: no reason"
printf 'sotto-stats 1 mean-std\nfeatures 3\n0 0 1\n1 0 1\n2 0 1\n' >"$T/three.stats"
sed 's|^Standardize = local$|Standardize = three.stats|' "$T/train.conf" >"$T/three.conf"
"$SOTTO" check -c "$T/three.conf" >"$T/check.log" 2>&1 && fail "statistics of 3 features accepted"
grep -q "statistics of 3 features" "$T/check.log" || fail "3 features: no reason"
sed 's|^Standardize = local$|Standardize = nothere.stats|' "$T/train.conf" >"$T/none.conf"
"$SOTTO" check -c "$T/none.conf" >"$T/check.log" 2>&1 && fail "a missing statistics file accepted"

# Three nodes, federated.
cat >"$T/tpl.ini" <<TPL
[Model]
Type = logreg
[Training]
Dataset = ../site-{site}.sdat
TestSet = ../site-0.sdat
Standardize = federated
LocalEpochs = 0.5
Epochs = 4
[Gossip]
GroupSize = 3
Interval = 1.5
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" "0=ipc://$T/0.sock" "1=ipc://$T/1.sock" \
	"2=ipc://$T/2.sock" >/dev/null
start() {
	(cd "$T/$1" && exec "$SOTTO" run -c "$1.conf") >>"$T/$1.log" 2>&1 &
	pids="$pids $!"
	eval "pid$1=$!"
}
start 0
start 1
i=0
until "$SOTTO" status -c "$T/0/0.conf" 2>/dev/null | grep -q "^phase standardising$"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "status never showed phase standardising"
	sleep 0.1
done
[ ! -e "$T/0/state/standardize.stats" ] || fail "statistics agreed without the third site"
start 2
# Killed in the middle of the phase, site 0 resumes from its partial state:
# were its rows counted again, the pooled mean below would be off by about
# 0.4 deviations.
i=0
until grep -q "feature statistics: result 1 " "$T/0.log"; do
	i=$((i + 1))
	[ $i -lt 300 ] || fail "site 0 applied no statistics result"
	sleep 0.05
done
kill -KILL "$pid0"
wait "$pid0" 2>/dev/null || true
grep -q "training starts" "$T/0.log" && fail "the test was too slow to kill site 0 in the phase"
[ -s "$T/0/state/standardize.partial" ] || fail "no partial state after a result"
start 0
for s in 0 1 2; do
	i=0
	until grep -q "training starts" "$T/$s.log"; do
		i=$((i + 1))
		[ $i -lt 600 ] || fail "site $s never finished the statistics phase"
		sleep 0.1
	done
done
for s in 0 1 2; do
	awk 'NR == FNR { if ($1 ~ /^[0-9]+$/ && NF == 3) { m[$1] = $2; d[$1] = $3 } next }
		$1 ~ /^[0-9]+$/ && NF == 3 {
			if ((($2 - m[$1]) / d[$1]) ^ 2 > 1e-6 || ($3 / d[$1] - 1) ^ 2 > 1e-4) bad = 1
			n++
		}
		END { exit bad || n != 2 }' "$T/central.stats" "$T/$s/state/standardize.stats" ||
		fail "site $s's agreed statistics are not the pooled ones: $(cat "$T/$s/state/standardize.stats")"
done
[ ! -e "$T/0/state/standardize.partial" ] || fail "the phase's partial state was left behind"
grep -q "resumed after a restart" "$T/0.log" || fail "site 0 did not resume its phase"
grep -q "stats in the invitation\|in the invitation, stats here" "$T"/*.log ||
	echo "note: no round met a node in the other phase this time"
i=0
until "$SOTTO" status -c "$T/0/0.conf" 2>/dev/null | grep -q "^phase \(training\|averaging\|done\)$"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "site 0 does not train after the statistics phase"
	sleep 0.1
done
# A restart goes straight to training with the agreed statistics.
kill -TERM "$pid0"
wait "$pid0" 2>/dev/null || true
cp "$T/0.log" "$T/0-before-restart.log"
: >"$T/0.log"
start 0
i=0
until grep -q "listening on" "$T/0.log"; do
	i=$((i + 1))
	[ $i -lt 100 ] || fail "site 0 did not restart"
	sleep 0.1
done
grep -q "agreeing the statistics" "$T/0.log" && fail "a restart ran the statistics phase again"
for p in $pids; do kill -TERM "$p" 2>/dev/null || true; done
for p in $pids; do wait "$p" 2>/dev/null || true; done
pids=""

# export and predict use the agreed statistics.
"$SOTTO" export -c "$T/0/0.conf" -o "$T/model.npz" >/dev/null 2>&1 || fail "export"
/usr/bin/python3 - "$T/model.npz" "$T/0/state/standardize.stats" <<'EOF' || fail "export's input.mean is not the agreed mean"
import sys, numpy as np
z = np.load(sys.argv[1])
rows = [l.split() for l in open(sys.argv[2]) if l[0].isdigit()]
assert np.array_equal(z["input.mean"], np.array([float(r[1]) for r in rows], dtype=np.float32))
assert np.array_equal(z["input.std"], np.array([float(r[2]) for r in rows], dtype=np.float32))
EOF
"$SOTTO" predict -c "$T/0/0.conf" "$T/site-1.sdat" "$T/pred.csv" >"$T/predict.log" 2>&1 ||
	fail "predict on a raw dataset: $(cat "$T/predict.log")"
[ "$(wc -l <"$T/pred.csv")" -eq 61 ] || fail "predict wrote $(wc -l <"$T/pred.csv") lines for 60 rows"
"$SOTTO" predict -c "$T/0/0.conf" "$T/site-1.csv" "$T/pred2.csv" --label -1 >/dev/null 2>&1 ||
	fail "predict on a CSV"
cmp -s "$T/pred.csv" "$T/pred2.csv" || fail "a CSV and its raw import predict differently"
echo "standardize: raw import and sums, refusals, train, three sites agreeing the pooled statistics, restart, export and predict: OK"
