#!/bin/sh
# transport_loopback.sh: three real node processes on loopback TCP.
#
#   a -> b   a 10 MB vector arrives intact at b, b acknowledges it to a
#   c -> b   c's key is not in b's config: b drops its frames and counts them
#
# Each process is `sotto transport-test -c FILE`, which runs the node's real
# config loading, replay state (DataDir/replay.state), sealing and NNG
# transport. Run as: sh transport_loopback.sh SOTTO_BINARY SOURCE_DIR
set -eu

sotto=$1
tmp=$(mktemp -d /tmp/sotto-loopback-XXXXXX)
pids=""
cleanup() {
	for p in $pids; do
		kill "$p" 2>/dev/null || true
	done
	[ -n "${KEEP:-}" ] || rm -rf "$tmp"
}
trap cleanup EXIT

fail() {
	echo "transport_loopback: FAIL: $*" >&2
	for f in "$tmp"/*.out "$tmp"/*.err; do
		[ -f "$f" ] && { echo "--- $f"; cat "$f"; } >&2
	done
	exit 1
}

# Ports from the PID so parallel runs on one machine rarely collide.
base=$((20000 + ($$ % 2000) * 10))
pa=$base
pb=$((base + 1))
pc=$((base + 2))
pd=$((base + 3)) # nobody listens there: a configured peer that is down

for n in a b c d; do
	"$sotto" keygen "$tmp/$n.key" >/dev/null
	eval "pub_$n=\$(\"\$sotto\" pubkey < \"\$tmp/$n.key\")"
done
printf 'x1,x2,y\n0,1,0\n1,0,1\n' >"$tmp/empty.csv" # a real, tiny dataset: check loads it
"$sotto" data import-csv "$tmp/empty.csv" "$tmp/empty.sdat" --header >/dev/null

# conf NAME PORT PEER... (each PEER as name:pubkey:port)
conf() {
	name=$1
	port=$2
	shift 2
	{
		printf '[Node]\nName = %s\nPrivateKeyFile = %s.key\n' "$name" "$name"
		printf 'Listen = 127.0.0.1:%s\nDataDir = %s/%s-data\nLogLevel = info\n' \
			"$port" "$tmp" "$name"
		printf '[Training]\nDataset = empty.sdat\n[Gossip]\nGroupSize = 3\n'
		for p in "$@"; do
			printf '[Peer]\nName = %s\nPublicKey = %s\nEndpoint = 127.0.0.1:%s\n' \
				"${p%%:*}" "$(echo "$p" | cut -d: -f2)" "${p##*:}"
		done
	} >"$tmp/$name.conf"
}
conf a "$pa" "b:$pub_b:$pb" "d:$pub_d:$pd"
conf b "$pb" "a:$pub_a:$pa" "d:$pub_d:$pd"
conf c "$pc" "b:$pub_b:$pb" "d:$pub_d:$pd"
for n in a b c; do
	"$sotto" check -c "$tmp/$n.conf" >/dev/null || fail "config $n does not check"
done

"$sotto" transport-test -c "$tmp/b.conf" --expect-vectors 1 --expect-unknown 1 \
	--linger 1 --timeout 60 >"$tmp/b.out" 2>"$tmp/b.err" &
pid_b=$!
pids="$pid_b"
"$sotto" transport-test -c "$tmp/c.conf" --send b --bytes 4096 --no-ack --linger 5 \
	--timeout 30 >"$tmp/c.out" 2>"$tmp/c.err" &
pid_c=$!
pids="$pids $pid_c"

"$sotto" transport-test -c "$tmp/a.conf" --send b --bytes 10000000 --timeout 60 \
	>"$tmp/a.out" 2>"$tmp/a.err" || fail "a: no acknowledgement of its vector"
wait "$pid_b" || fail "b: expectations not met"
wait "$pid_c" || fail "c: did not run"
pids=""

grep -q "acked=1" "$tmp/a.out" || fail "a: not acknowledged"
grep -q "vectors=1 intact=1 bytes=10000000" "$tmp/b.out" || fail "b: vector not intact"
unknown=$(sed -n 's/.*unknown_sender=\([0-9]*\).*/\1/p' "$tmp/b.out")
[ "${unknown:-0}" -ge 1 ] || fail "b: c's frames were not counted as unknown"
grep -q "acked=0" "$tmp/c.out" || fail "c: was answered although b does not know it"
grep -q "sender not in the configuration" "$tmp/b.err" || fail "b: no log line for c"
[ -s "$tmp/b-data/replay.state" ] || fail "b: no replay state saved"

echo "transport_loopback: ok (10 MB a->b intact and acknowledged; c dropped $unknown frame(s))"
