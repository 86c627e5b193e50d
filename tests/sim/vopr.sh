#!/bin/sh
# vopr.sh: bounded fault exploration in the simulator (docs/simulation.md).
# SOTTO_VOPR_SEEDS seeds (default 100) of random kills at every phase,
# restarts from checkpoints, partitions, message loss/duplication/delay
# and silent members must all run clean; then the checker checks itself:
# each --break corruption must fail its seed with exit 3 and a replay line,
# and that replay must fail the same way (runs are reproducible).
set -eu
SIM=$1
ROOT=$2
T=$(mktemp -d /tmp/sotto-vopr-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

seeds=${SOTTO_VOPR_SEEDS:-100}
[ -z "${SOTTO_SANITIZED:-}" ] || seeds=${SOTTO_VOPR_SEEDS:-20} # about 10x slower there
"$SIM" vopr --root "$ROOT" --seeds "$seeds" -q >"$T/out" 2>&1 || {
	cat "$T/out"
	fail "vopr found a violation (the replay command is above)"
}
cat "$T/out"
grep -q "^vopr: $seeds seeds from 0, 0 failed" "$T/out" || fail "vopr summary missing"

for what in sum differ abort nan; do
	rc=0
	"$SIM" vopr --root "$ROOT" --seeds 2 --first 11 -q --break "$what" >"$T/b" 2>&1 || rc=$?
	[ "$rc" = 3 ] || fail "--break $what: exit $rc, not 3: $(cat "$T/b")"
	first=$(grep -m1 'FAILED' "$T/b") || fail "--break $what: no FAILED line"
	replay=$(grep -m1 '^  replay: ' "$T/b" | sed 's/^  replay: sotto-sim //; s/ -v$//')
	[ -n "$replay" ] || fail "--break $what: no replay line"
	rc=0
	# shellcheck disable=SC2086 # the replay line is a list of words
	"$SIM" $replay -q >"$T/r" 2>&1 || rc=$?
	[ "$rc" = 3 ] || fail "--break $what: the replay exits $rc"
	[ "$(grep -m1 'FAILED' "$T/r")" = "$first" ] ||
		fail "--break $what: the replay differs: $(grep -m1 FAILED "$T/r")"
	echo "--break $what: caught and replayed: $first"
done
