#!/bin/sh
# reload.sh: a running node re-reads its config (`sotto reload`, SIGHUP).
# A peer added is dialed and joins rounds; a peer removed is gone from
# status at once and its frames are refused; a re-keyed peer's frames are
# refused until the key matches again; Listen or the model changed, a
# config with errors, or another private key is refused with the reason
# and changes nothing; rounds go on throughout.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-reload-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do kill -KILL "$p" 2>/dev/null || true; done
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; tail -30 "$T/a.log" >&2 2>/dev/null || true; exit 1; }
A="$T/a/a.conf"
st() { "$SOTTO" status -c "$A"; }
num() { st | awk -v k="$1" '$1 == k { print $2 }'; }
# Wait until the status satisfies the shell test in $1 (status text in $S).
wait_for() {
	i=0
	while [ $i -lt 300 ]; do
		S=$(st 2>/dev/null || true)
		if eval "$1"; then return 0; fi
		sleep 0.2
		i=$((i + 1))
	done
	fail "never: $2"
}
# The config of a without the [Peer] named $1.
without() {
	awk -v n="$1" 'function flush() { if (!(peer && named)) printf "%s", buf; buf = ""; named = 0 }
		/^\[/ { flush(); peer = ($0 == "[Peer]") }
		$0 == "Name = " n { named = 1 }
		{ buf = buf $0 "\n" }
		END { flush() }' "$2"
}
put() { cp "$1" "$A.new" && mv "$A.new" "$A"; }
rounds_with() { echo "$S" | awk -v p="$1" '$1 == "peer" && $2 == p { for (i = 3; i < NF; i++) if ($i == "rounds") print $(i + 1) }'; }

"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/shard" --nodes 4 --seed 3 >/dev/null
cat >"$T/tpl.ini" <<TPL
[Model]
Type = logreg
[Training]
Dataset = ../shard-0.sdat.gz
LocalEpochs = 0.05
[Gossip]
GroupSize = 3
Interval = 0.3
RoundTimeout = 3
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" a=ipc://$T/a.sock b=ipc://$T/b.sock c=ipc://$T/c.sock \
	d=ipc://$T/d.sock >/dev/null
cp "$A" "$T/full.conf"
# a starts without d (d knows a: its frames to a are refused until a reloads).
without d "$T/full.conf" >"$T/no-d.conf"
grep -q "^Name = d$" "$T/no-d.conf" && fail "the test could not take d out"
put "$T/no-d.conf"
"$SOTTO" check -c "$A" >/dev/null || fail "a's config without d"
for s in a b c d; do
	(cd "$T/$s" && exec "$SOTTO" run -c "$s.conf") >"$T/$s.log" 2>&1 &
	pids="$pids $!"
done
apid=$(echo $pids | cut -d' ' -f1)
wait_for '[ "$(echo "$S" | awk "\$1 == \"rounds_completed\" { print \$2 }")" -ge 3 ] 2>/dev/null' \
	"a completes rounds with b and c"
echo "$S" | grep -q "^peer d " && fail "d listed before the reload"

# Refused: Listen changed, errors, another key. Nothing changes, exit 1:
# not even the peers that came with the refused change (c stays, d stays out).
without c "$T/full.conf" | sed 's|^Listen = .*|Listen = ipc://'"$T"'/elsewhere.sock|' >"$T/x.conf"
put "$T/x.conf"
if "$SOTTO" reload -c "$A" >"$T/out" 2>&1; then fail "a changed Listen was applied"; fi
grep -q "\[Node\] Listen cannot change while the node runs; nothing changed" "$T/out" ||
	fail "no reason for the refused Listen: $(cat "$T/out")"
st | grep -q "^peer c " || fail "a refused reload dropped peer c"
st | grep -q "^peer d " && fail "a refused reload added peer d"
sed 's|^Type = logreg|Type = mlp|' "$T/no-d.conf" >"$T/x.conf"
put "$T/x.conf"
if "$SOTTO" reload -c "$A" >"$T/out" 2>&1; then fail "a changed model was applied"; fi
grep -q "\[Model\] Type cannot change" "$T/out" || fail "no reason for the model: $(cat "$T/out")"
sed 's|^Interval = .*|Interval = fast|' "$T/no-d.conf" >"$T/x.conf"
put "$T/x.conf"
if "$SOTTO" reload -c "$A" >"$T/out" 2>&1; then fail "a config with errors was applied"; fi
grep -q "has errors; the running config stays in force" "$T/out" &&
	grep -q "Interval" "$T/out" || fail "errors not reported: $(cat "$T/out")"
"$SOTTO" keygen "$T/other.key" >/dev/null 2>&1
sed 's|^PrivateKeyFile = .*|PrivateKeyFile = '"$T"'/other.key|' "$T/no-d.conf" >"$T/x.conf"
put "$T/x.conf"
if "$SOTTO" reload -c "$A" >"$T/out" 2>&1; then fail "another key was applied"; fi
grep -q "PrivateKeyFile holds another key" "$T/out" || fail "key change: $(cat "$T/out")"
put "$T/no-d.conf"
kill -0 "$apid" || fail "a refused reload ended the node"

# d added: dialed at once, and rounds with it follow.
put "$T/full.conf"
"$SOTTO" reload -c "$A" >"$T/out" 2>&1 || fail "reload adding d: $(cat "$T/out")"
grep -q "reloaded .*: 3 peers (1 added, 0 removed" "$T/out" || fail "reload answer: $(cat "$T/out")"
wait_for '[ "$(rounds_with d)" -ge 1 ] 2>/dev/null' "a completes a round with d"

# b removed: gone from status at once; its frames refused from now on.
without b "$T/full.conf" >"$T/no-b.conf"
put "$T/no-b.conf"
# shellcheck disable=SC2034 # read by wait_for's eval
unk0=$(num rejected_unknown_sender)
"$SOTTO" reload -c "$A" >"$T/out" 2>&1 || fail "reload removing b: $(cat "$T/out")"
grep -q "0 added, 1 removed" "$T/out" || fail "reload answer: $(cat "$T/out")"
st | grep -q "^peer b " && fail "b still listed after its removal"
wait_for '[ "$(echo "$S" | awk "\$1 == \"rejected_unknown_sender\" { print \$2 }")" -gt "$unk0" ]' \
	"b's frames refused after its removal"
# shellcheck disable=SC2034 # read by wait_for's eval
r0=$(num rounds_completed)
wait_for '[ "$(echo "$S" | awk "\$1 == \"rounds_completed\" { print \$2 }")" -gt $((r0 + 2)) ]' \
	"rounds go on with c and d"

# SIGHUP: b back, the same way.
put "$T/full.conf"
kill -HUP "$apid"
wait_for 'echo "$S" | grep -q "^peer b "' "b listed again after SIGHUP"
grep -q "SIGHUP: reloading" "$T/a.log" || fail "no SIGHUP line"
grep -q "reloaded .*1 added, 0 removed" "$T/a.log" || fail "no reload line for SIGHUP"

# c re-keyed at a (a wrong key, as in a botched rotation): c's frames are refused.
other=$("$SOTTO" pubkey <"$T/other.key")
awk -v o="$other" '/^\[Peer\]/ { peer = 1 } peer && /^Name = c$/ { isc = 1 }
	isc && /^PublicKey/ { $0 = "PublicKey = " o; isc = 0 } { print }' "$T/full.conf" >"$T/rekey.conf"
put "$T/rekey.conf"
"$SOTTO" reload -c "$A" >"$T/out" 2>&1 || fail "reload re-keying c: $(cat "$T/out")"
grep -q "1 added, 1 removed" "$T/out" || fail "re-key answer: $(cat "$T/out")"
# shellcheck disable=SC2034 # read by wait_for's eval
unk0=$(num rejected_unknown_sender)
wait_for '[ "$(echo "$S" | awk "\$1 == \"rejected_unknown_sender\" { print \$2 }")" -gt "$unk0" ]' \
	"c's frames refused under the old key"
# And back: the right key again, and rounds with c resume.
put "$T/full.conf"
"$SOTTO" reload -c "$A" >"$T/out" 2>&1 || fail "reload restoring c: $(cat "$T/out")"
wait_for '[ "$(rounds_with c)" -ge 1 ] 2>/dev/null' "a completes a round with c again"
for p in $pids; do kill -0 "$p" || fail "a node died"; done
kill -TERM $pids
for p in $pids; do wait "$p" || fail "exit status $? on SIGTERM"; done
pids=""
echo "reload: peers added, removed, re-keyed, by reload and SIGHUP; refusals change nothing: OK"
