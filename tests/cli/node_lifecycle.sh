#!/bin/sh
# node_lifecycle.sh: one node whose peers are all unreachable keeps
# training locally and says so; `sotto status` and /metrics answer; SIGTERM
# stops it at a safe point with a checkpoint; SIGHUP does not end it (it
# reloads the config: here unchanged); under systemd's NOTIFY_SOCKET it says
# READY=1 once it listens; a restart resumes from it,
# also after kill -9; a second daemon on the same DataDir is refused; a
# shutdown whose socket close hangs still ends, checkpoint written.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-life-XXXXXX)
pid=""
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT INT TERM
fail() { echo "FAIL: $*" >&2; cat "$T/node.log" >&2 2>/dev/null || true; exit 1; }
# Wait until `sotto status` shows "KEY" with a value satisfying the awk test.
wait_status() {
	i=0
	while [ $i -lt 300 ]; do
		if "$SOTTO" status -c "$T/a/a.conf" 2>/dev/null | awk -v k="$1" "\$1==k && ($2){f=1} END{exit !f}"; then
			return 0
		fi
		sleep 0.2
		i=$((i + 1))
	done
	fail "status never showed $1 with $2"
}

"$SOTTO" data split "$SRC/data/mnist-test.sdat.gz" "$T/shard" --nodes 4 --seed 3 >/dev/null
cat >"$T/tpl.ini" <<TPL
[Model]
Type = logreg
[Training]
Dataset = ../shard-0.sdat.gz
TestSet = ../shard-1.sdat.gz
LocalEpochs = 1
Epochs = 100000
[Gossip]
GroupSize = 3
Interval = 0.2
EvalEvery = 1
TPL
"$SOTTO" init -o "$T" -t "$T/tpl.ini" a=ipc://$T/a.sock b=ipc://$T/b.sock c=ipc://$T/c.sock >/dev/null
port=$((20000 + $$ % 12000)) # below the ephemeral range (32768 and up)
echo "MetricsListen = 127.0.0.1:$port" >"$T/metrics.line"
sed -i "/^DataDir/r $T/metrics.line" "$T/a/a.conf"
"$SOTTO" check -c "$T/a/a.conf" >/dev/null || fail "config"

(cd "$T/a" && exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1 &
pid=$!
wait_status epochs_trained '$2 >= 2'
wait_status accuracy '$2 != "-"'
wait_status state '$2 == "idle"'
"$SOTTO" status -c "$T/a/a.conf" | grep -q "^peer b seen never rounds 0 connected no link - rtt -$" ||
	fail "peer b listed as seen or connected"
if "$SOTTO" run -c "$T/a/a.conf" >"$T/second.log" 2>&1; then fail "a second daemon started"; fi
grep -q "another sotto run uses" "$T/second.log" || fail "no message for the second daemon"
"$SOTTO" status -c "$T/a/a.conf" --metrics | grep -q '^sotto_rounds_completed_total{node="a"} 0' ||
	fail "status --metrics"
"$SOTTO" status -c "$T/a/a.conf" --metrics | grep -q '^sotto_peer_connected{node="a",peer="c"} 0' ||
	fail "status --metrics: peer_connected"
/usr/bin/python3 -c "
import sys, urllib.request
body = urllib.request.urlopen('http://127.0.0.1:$port/metrics', timeout=5).read().decode()
sys.exit(0 if 'sotto_epochs_trained{node=\"a\"}' in body else 1)" || fail "GET /metrics"
kill -HUP "$pid"
i=0
until grep -q "reloaded a.conf: 2 peers (0 added, 0 removed, 0 moved, 0 renamed)" "$T/node.log"; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail "no message for SIGHUP"
	sleep 0.1
done
kill -0 "$pid" 2>/dev/null || fail "SIGHUP ended the node"
kill -TERM "$pid"
wait "$pid" || fail "SIGTERM exit status $?"
pid=""
grep -q "checkpoint written" "$T/node.log" || fail "no checkpoint at SIGTERM"
[ -f "$T/a/state/checkpoint" ] || fail "checkpoint file missing"
! ls "$T/a/state/" | grep -q "\.tmp\." || fail "temporary file left behind"

/usr/bin/python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind('$T/notify')
s.settimeout(60)
print(s.recv(4096).decode())" >"$T/notify.out" 2>&1 &
npid=$!
i=0
until [ -S "$T/notify" ]; do
	i=$((i + 1))
	[ $i -lt 50 ] || fail "the notify socket of the test did not appear"
	sleep 0.1
done
(cd "$T/a" && NOTIFY_SOCKET="$T/notify" exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1 &
pid=$!
wait "$npid" || fail "no sd_notify datagram"
grep -q "READY=1" "$T/notify.out" || fail "sd_notify said $(cat "$T/notify.out"), not READY=1"
wait_status restarts '$2 == 1'
grep -q "resumed from" "$T/node.log" || fail "restart did not resume"
wait_status epochs_trained '$2 >= 4'
kill -KILL "$pid"
wait "$pid" 2>/dev/null || true
(cd "$T/a" && exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1 &
pid=$!
wait_status restarts '$2 >= 1'
grep -q "resumed from" "$T/node.log" || fail "no resume after kill -9"
grep -q "training locally" "$T/node.log" || true
kill -TERM "$pid"
wait "$pid" || fail "exit status after kill -9 restart"
pid=""

# A close that never returns (libnng 1.5's nng_close deadlock, simulated by a
# test hook): the watchdog ends the process about 10 s after SIGTERM, with
# the checkpoint already written.
(cd "$T/a" && SOTTO_TEST_CLOSE_HANG=1 exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1 &
pid=$!
wait_status restarts '$2 >= 2'
rm -f "$T/a/state/checkpoint"
kill -TERM "$pid"
start=$(date +%s)
wait "$pid" || fail "exit status after a hung close $?"
pid=""
took=$(($(date +%s) - start))
[ "$took" -le 30 ] || fail "a hung close took $took s to end"
grep -q "did not close its sockets" "$T/node.log" || fail "no watchdog message"
[ -f "$T/a/state/checkpoint" ] || fail "no checkpoint before the hung close"
# A checkpoint that the [Training] settings refuse (Adam's state, then
# DriftCorrection, which needs SGD): the node says so and changes nothing.
sed -i 's/^\[Training\]$/[Training]\nOptimizer = adam/' "$T/a/a.conf"
rm -f "$T/a/state/checkpoint"
(cd "$T/a" && exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1 &
pid=$!
wait_status epochs_trained '$2 >= 1'
kill -TERM "$pid"
wait "$pid" || fail "exit status of the Adam run $?"
pid=""
sed -i 's/^Optimizer = adam$/DriftCorrection = 0.05/' "$T/a/a.conf"
cp "$T/a/state/checkpoint" "$T/adam.ckpt"
if (cd "$T/a" && exec "$SOTTO" run -c a.conf) >"$T/node.log" 2>&1; then
	fail "a node started from an Adam checkpoint with DriftCorrection"
fi
grep -q "holds an optimizer that \[Training\] does not allow" "$T/node.log" ||
	fail "no message for the refused checkpoint: $(tail -2 "$T/node.log")"
cmp -s "$T/a/state/checkpoint" "$T/adam.ckpt" || fail "the refused checkpoint changed"
echo "node_lifecycle: alone, status, metrics, SIGHUP, SIGTERM, sd_notify, resume, kill -9, lock, close watchdog, refused checkpoint: OK"
