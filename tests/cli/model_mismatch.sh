#!/bin/sh
# model_mismatch.sh: two sites whose [Model] sections differ in one key say
# which, by name, on both sides: a member declines naming the key and both
# values, and an initiator logs that DECLINE naming the member.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-mismatch-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() {
	echo "FAIL: $*" >&2
	tail -5 "$T/a.log" "$T/c.log" >&2 2>/dev/null || true
	exit 1
}

"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/shard" --nodes 3 --seed 3 >/dev/null
cat >"$T/tpl.ini" <<TPL
[Model]
Type = logreg
[Training]
Dataset = ../shard-0.sdat.gz
LocalEpochs = 0.05
[Gossip]
GroupSize = 3
Interval = 0.3
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" "a=ipc://$T/a.sock" "b=ipc://$T/b.sock" \
	"c=ipc://$T/c.sock" >/dev/null
sed 's/^Type = logreg$/Type = logreg\nSeed = 9/' "$T/c/c.conf" >"$T/c.new"
mv "$T/c.new" "$T/c/c.conf"
grep -q "^Seed = 9$" "$T/c/c.conf" || fail "the test could not set c's Seed"
for s in a c; do
	(cd "$T/$s" && exec "$SOTTO" run -c "$s.conf") >"$T/$s.log" 2>&1 &
	pids="$pids $!"
done
# Each side logs one such line a minute, whichever came first: as member
# (declining the other's invitation) or as initiator (told by the DECLINE).
named() { # LOG PEER OURS THEIRS
	grep -q "declined an invitation from $2: \[Model\] Seed differs: $4 in the invitation, $3 here" "$1" ||
		grep -q "$2 declined this node's round: \[Model\] Seed differs: $3 in the invitation, $4 here" "$1"
}
i=0
until named "$T/a.log" c 1 9 && named "$T/c.log" a 9 1; do
	i=$((i + 1))
	[ $i -lt 150 ] || fail "the differing Seed was not named on both sides"
	sleep 0.2
done
echo "model_mismatch: the differing [Model] key named on both sides: OK"
