#!/bin/sh
# determinism.sh: the same seed gives the same run bit for bit (every
# progress line, every summary figure but wall time and memory); another
# seed gives another run. A small synthetic cluster on a 1 Mbit/s link with
# message faults and kills, so the network and fault paths are covered.
set -eu
SIM=$1
ROOT=$2
T=$(mktemp -d /tmp/sotto-simdet-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

run() { # run SEED DIR
	"$SIM" run --root "$ROOT" -q -n 8 -s 40 --seed "$1" --data synth --rows 200 \
		--model 'Type = mlp;Hidden = 16;Seed = 1' -r 1mbit --latency 20 --loss 0.01 \
		--dup 0.01 --delay 0.02 --kill-rate 1 -o "$2" >/dev/null
	grep -v '^wall_s\|^rss_kb' "$2/summary.txt" >"$2/sum"
}
run 5 "$T/a"
run 5 "$T/b"
run 6 "$T/c"
cmp -s "$T/a/progress.dat" "$T/b/progress.dat" || fail "seed 5 twice: progress differs"
cmp -s "$T/a/sum" "$T/b/sum" || fail "seed 5 twice: summary differs: $(diff "$T/a/sum" "$T/b/sum")"
! cmp -s "$T/a/progress.dat" "$T/c/progress.dat" || fail "seeds 5 and 6 gave the same run"
grep -q '^violations 0$' "$T/a/sum" || fail "violations: $(cat "$T/a/sum")"
grep -q '^kills [1-9]' "$T/a/sum" || fail "no kill happened"
echo "determinism: seed 5 twice identical ($(wc -l <"$T/a/progress.dat") progress lines), seed 6 differs"
