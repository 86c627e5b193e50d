# lib.sh: what the PyTorch examples share (sourced): set-up, and N sotto
# nodes whose model is trained by a process of its own ([Model] Type =
# external). Sets ROOT, SOTTO, PY; start_nodes N OUT UNIX starts them
# (UNIX=1: Unix sockets in OUT, else 127.0.0.1:17600+i) and stop_nodes ends
# them; the trap does too.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
SOTTO=${SOTTO:-$ROOT/build/sotto}
PY=/usr/bin/python3
if [ ! -x "$SOTTO" ] || ! $PY -c 'import torch, msgpack, numpy' 2>/dev/null; then
	"$ROOT/scripts/setup.sh"
	cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=Release >/dev/null
	cmake --build "$ROOT/build" -j2 --target sotto >/dev/null
fi
case $SOTTO in /*) ;; *) SOTTO=$(pwd)/$SOTTO ;; esac # the nodes run in their own directories
pids=""
stop_nodes() {
	for p in $pids; do kill "$p" 2>/dev/null || true; done
	for p in $pids; do wait "$p" 2>/dev/null || true; done
	pids=""
}
trap stop_nodes EXIT INT TERM

start_nodes() {
	n=$1 out=$2 unix=$3
	sites=""
	for i in $(seq 0 $((n - 1))); do
		if [ "$unix" -eq 1 ]; then sites="$sites $i=ipc://$out/$i.sock"; else sites="$sites $i=127.0.0.1:$((17600 + i))"; fi
	done
	# The model is the trainer's: no Dataset in the config, and the node waits
	# on DataDir/trainer.sock for the trainer to declare its layout.
	printf '[Model]\nType = external\n\n[Gossip]\nGroupSize = 3\nInterval = 1\n' >"$out/template.ini"
	[ -z "${SOTTO_DEBUG:-}" ] || printf '[Node]\nLogLevel = debug\n' >>"$out/template.ini"
	rm -rf "$out/sites"
	# shellcheck disable=SC2086
	"$SOTTO" init -o "$out/sites" -t "$out/template.ini" $sites >/dev/null
	for i in $(seq 0 $((n - 1))); do
		"$SOTTO" check -c "$out/sites/$i/$i.conf" >/dev/null
		# (SOTTO_TEST_VERIFY=1 in the environment: the nodes keep verification records)
		(cd "$out/sites/$i" && exec "$SOTTO" run -c "$i.conf" >"$out/node-$i.log" 2>&1) &
		pids="$pids $!"
	done
}
