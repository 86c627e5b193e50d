#!/bin/bash
# cluster.sh: one benchmark run of a sotto cluster on this machine, measured.
#
#   bench/cluster.sh -b SOTTO -o OUT [-n NODES] [-s SECONDS] [-t TARGET]
#                    [-g 'Key = Value;Key = Value'] [-e EPOCHS] [-r RATE]
#                    [-x] [-q] [-l LR] [-L 'Key = Value;..'] [-S N:RATE]
#                    [-M 'Key = Value;..'] [-D DATA] [-i INTERVAL]
#
# Starts NODES `sotto run` processes (MLP 784-128-10, the bundled 8,000 MNIST
# images split Dirichlet(0.5) with a fixed seed, every node evaluating on the
# 2,000 test images; the demo's schedule: LocalEpochs 0.25, Interval 1 s,
# GroupSize 4) with extra [Gossip] keys from -g, polls `sotto status` every
# 2 s for SECONDS, and writes:
#
#   OUT/progress.dat  t mean min max bytes_out/node rounds/node epochs
#                     evaluated aborted/node   (one line per poll)
#   OUT/summary.txt   key value lines: time, bytes and rounds per node when
#                     the mean first reached TARGET (all nodes evaluated),
#                     final mean/min/max, bytes and rounds per node, RSS and
#                     CPU per node (from /proc), rounds aborted
#
# -i INTERVAL sets [Gossip] Interval (default 1 s: a node starts a round, or
# a low-rank chain, about once per INTERVAL, and trains LocalEpochs per
# INTERVAL, so give -L 'LocalEpochs = ..' too to keep the training rate).
# -l LR sets [Training] LearningRate (default 0.05), -L adds [Training] keys
# (Schedule, MomentumRule, ...; or BatchSize, LocalEpochs, Momentum instead
# of the demo's), -M gives the [Model] keys instead of the MLP's (e.g.
# 'Type = cnn'), -D DATA gives each node DATA/site-I.sdat.gz and
# DATA/test.sdat.gz instead of the MNIST split (bench/standardize.sh).
#
# -e EPOCHS caps local training (default 20 = 80 s of the schedule); after it
# the nodes only average, so the final figures are a consensus. -x stops as
# soon as the target is reached. -q prints nothing while running.
#
# -r RATE (needs root): every node in its own network namespace, joined by
# veth pairs to a bridge in one more namespace, with a token-bucket qdisc
# (`tc qdisc ... tbf rate RATE`) on both ends of its link, i.e. RATE up and
# RATE down per node. Addresses are 10.213.x.y inside namespaces this script
# creates; they are deleted on exit whatever happens. Without -r the nodes
# talk over ipc:// sockets. -S N:RATE (with -r) gives the first N nodes
# RATE instead: a mixed network. summary.txt then also has slow_* and
# fast_* lines, the same figures for each kind of site, and
# OUT/nodes.dat has every node's figures at every poll (t node accuracy
# bytes_out rounds epochs aborted).
#
# Not a test: it asserts nothing; bench/run.sh puts runs side by side.
set -eu

SOTTO=""
OUT=""
N=16
SECS=120
TARGET=0.93
GOSSIP=""
EPOCHS=20
RATE=""
STOP_AT_TARGET=0
QUIET=0
TIMEOUT=5
INTERVAL=1
LR=0.05
TRAINING=""
MODEL="Type = mlp;Hidden = 128"
SLOW_N=0
SLOW_RATE=""
DATA=""
while getopts "b:o:n:s:t:g:e:r:xqT:l:L:S:M:D:i:" opt; do
	case $opt in
	b) SOTTO=$OPTARG ;;
	o) OUT=$OPTARG ;;
	n) N=$OPTARG ;;
	s) SECS=$OPTARG ;;
	t) TARGET=$OPTARG ;;
	g) GOSSIP=$OPTARG ;;
	e) EPOCHS=$OPTARG ;;
	r) RATE=$OPTARG ;;
	x) STOP_AT_TARGET=1 ;;
	q) QUIET=1 ;;
	T) TIMEOUT=$OPTARG ;;
	i) INTERVAL=$OPTARG ;;
	l) LR=$OPTARG ;;
	L) TRAINING=$OPTARG ;;
	M) MODEL=$OPTARG ;;
	D) DATA=$OPTARG ;;
	S) SLOW_N=${OPTARG%%:*}; SLOW_RATE=${OPTARG#*:} ;;
	*) sed -n '2,42p' "$0" >&2; exit 2 ;;
	esac
done
[ -n "$SOTTO" ] && [ -n "$OUT" ] || { sed -n '2,42p' "$0" >&2; exit 2; }
if [ "$SLOW_N" != 0 ]; then
	case $SLOW_N in *[!0-9]*) echo "cluster.sh: -S wants N:RATE, e.g. 4:100kbit" >&2; exit 2 ;; esac
	[ -n "$RATE" ] && [ -n "$SLOW_RATE" ] && [ "$SLOW_N" -le "$N" ] ||
		{ echo "cluster.sh: -S N:RATE needs -r and N <= nodes" >&2; exit 2; }
fi
# The rate of node i, and in bits per second (tc's units: kbit, mbit).
rate_of() { if [ "$1" -lt "$SLOW_N" ]; then echo "$SLOW_RATE"; else echo "$RATE"; fi; }
bits_of() {
	echo "$1" | awk '{ v = $0 + 0; u = tolower($0); sub(/^[0-9.]+/, "", u)
		m = (u == "kbit" ? 1e3 : u == "mbit" ? 1e6 : u == "gbit" ? 1e9 : u == "bit" || u == "" ? 1 : 0)
		print v * m }'
}
SRC=$(cd "$(dirname "$0")/.." && pwd)
SOTTO=$(cd "$(dirname "$SOTTO")" && pwd)/$(basename "$SOTTO")
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -rf "$OUT/sites" "$OUT/logs"
mkdir -p "$OUT/logs"

NS=""
if [ -n "$RATE" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "cluster.sh: -r needs root (network namespaces); skipped" >&2
		exit 3
	fi
	NS="sb$$"
fi

pids=()
cleanup() {
	trap '' INT TERM # finish cleaning up even if told to stop again
	for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	# Give nodes 15 s to checkpoint and stop, then kill what is left.
	for _ in $(seq 1 30); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		[ "$alive" = 0 ] && break
		sleep 0.5
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	if [ -n "$NS" ]; then
		for i in $(seq 0 $((N - 1))); do ip netns del "$NS-$i" 2>/dev/null || true; done
		ip netns del "$NS-hub" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Addresses: node i is 10.213.(i/200).(i%200+1) behind its own veth.
addr_of() { echo "10.213.$(($1 / 200)).$(($1 % 200 + 1))"; }
sites=""
for i in $(seq 0 $((N - 1))); do
	if [ -n "$NS" ]; then
		sites="$sites $i=$(addr_of "$i"):7000"
	else
		sites="$sites $i=ipc://$OUT/n$i.sock"
	fi
done
# shellcheck disable=SC2086
"$SRC/scripts/cluster-init.sh" -b "$SOTTO" -o "$OUT" -e "$EPOCHS" -T "$TIMEOUT" -i "$INTERVAL" -g "$GOSSIP" \
	-l "$LR" -L "$TRAINING" -M "$MODEL" ${DATA:+-D "$DATA"} $sites

if [ -n "$NS" ]; then
	ip netns add "$NS-hub"
	ip -n "$NS-hub" link add br0 type bridge
	ip -n "$NS-hub" link set br0 up
	ip -n "$NS-hub" link set lo up
	for i in $(seq 0 $((N - 1))); do
		ns="$NS-$i"
		ip netns add "$ns"
		ip link add "v$i" netns "$ns" type veth peer name "h$i" netns "$NS-hub"
		ip -n "$ns" addr add "$(addr_of "$i")/16" dev "v$i"
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "v$i" up
		ip -n "$NS-hub" link set "h$i" master br0
		ip -n "$NS-hub" link set "h$i" up
		# RATE out of the node (its uplink) and RATE into it (downlink).
		ip netns exec "$ns" tc qdisc add dev "v$i" root tbf rate "$(rate_of "$i")" burst 16kb \
			latency 2000ms
		ip netns exec "$NS-hub" tc qdisc add dev "h$i" root tbf rate "$(rate_of "$i")" \
			burst 16kb latency 2000ms
	done
fi

for i in $(seq 0 $((N - 1))); do
	if [ -n "$NS" ]; then
		(cd "$OUT/sites/$i" && exec ip netns exec "$NS-$i" "$SOTTO" run -c "$i.conf") \
			>"$OUT/logs/n$i.log" 2>&1 &
	else
		(cd "$OUT/sites/$i" && exec "$SOTTO" run -c "$i.conf") >"$OUT/logs/n$i.log" 2>&1 &
	fi
	pids+=("$!")
done

# The sotto process of node i (ip netns exec execs, so $! is it).
rss_cpu() {
	local kb=0 ticks=0 p
	for p in "${pids[@]}"; do
		if [ -r "/proc/$p/status" ]; then
			kb=$((kb + $(awk '/^VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)))
			ticks=$((ticks + $(awk '{print $14 + $15}' "/proc/$p/stat" 2>/dev/null || echo 0)))
		fi
	done
	echo "$kb $ticks"
}

: >"$OUT/progress.dat"
: >"$OUT/nodes.dat"
start=$(date +%s.%N)
reached=""
peak_rss=0
while :; do
	sleep 2
	t=$(awk -v s="$start" -v n="$(date +%s.%N)" 'BEGIN{printf "%.1f", n - s}')
	: >"$OUT/poll.txt"
	for i in $(seq 0 $((N - 1))); do
		"$SOTTO" status -c "$OUT/sites/$i/$i.conf" 2>/dev/null |
			awk -v n="$i" '$1=="accuracy"{a=$2} $1=="bytes_out"{b=$2}
				$1=="rounds_completed"{r=$2} $1=="epochs_trained"{e=$2}
				$1=="rounds_aborted"{x=$2} $1=="rounds_unformed"{u=$2}
				END{print n, (a==""?"-":a), b+0, r+0, e+0, x+0, u+0}' >>"$OUT/poll.txt" || true
	done
	awk -v t="$t" '{print t, $0}' "$OUT/poll.txt" >>"$OUT/nodes.dat"
	line=$(awk -v t="$t" -v N="$N" '
		$2 != "-" { s += $2; c++; if (mn == "" || $2 < mn) mn = $2; if (mx == "" || $2 > mx) mx = $2 }
		{ b += $3; r += $4; e += $5; x += $6; u += $7 }
		END { if (mn == "") { mn = 0; mx = 0 }
		      printf "%s %.4f %.4f %.4f %.0f %.2f %.3f %d %.2f %.2f\n", t, c ? s / c : 0, mn, mx,
			b / N, r / N, e / N, c, x / N, u / N }' "$OUT/poll.txt")
	echo "$line" >>"$OUT/progress.dat"
	read -r rss cpu <<<"$(rss_cpu)"
	[ "$rss" -gt "$peak_rss" ] && peak_rss=$rss
	[ "$QUIET" = 1 ] || echo "$line" | awk '{printf "  %6.1fs mean %5.2f%% min %5.2f%% sent %7.2f MB/node rounds %6.1f epochs %5.2f\n", $1, 100*$2, 100*$3, $5/1e6, $6, $7}'
	if [ -z "$reached" ] && echo "$line" | awk -v g="$TARGET" -v N="$N" '{exit !($8 == N && $2 >= g)}'; then
		reached=$line
		[ "$STOP_AT_TARGET" = 1 ] && break
	fi
	died=0
	for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null || died=$((died + 1)); done
	if [ "$died" -gt 0 ]; then
		# Something outside this run may kill processes named sotto: keep
		# what was measured and say so.
		echo "cluster.sh: $died node(s) exited early at ${t}s; see $OUT/logs/" >&2
		break
	fi
	awk -v t="$t" -v s="$SECS" 'BEGIN{exit !(t >= s)}' && break
done
read -r rss cpu <<<"$(rss_cpu)"
# The last poll in which every node answered.
final=$(awk -v N="$N" '$8 == N' "$OUT/progress.dat" | tail -n 1)
[ -n "$final" ] || final=$(tail -n 1 "$OUT/progress.dat")
hz=$(getconf CLK_TCK)
{
	echo "nodes $N"
	echo "gossip ${GOSSIP:-default}"
	echo "rate ${RATE:-none}"
	echo "nodes_died ${died:-0}"
	if [ -n "$reached" ]; then
		echo "$reached" | awk '{printf "target_time %s\ntarget_bytes %s\ntarget_rounds %s\ntarget_epochs %s\n", $1, $5, $6, $7}'
	else
		echo "target_time -"
		echo "target_bytes -"
		echo "target_rounds -"
		echo "target_epochs -"
	fi
	echo "$final" | awk '{printf "final_time %s\nfinal_mean %s\nfinal_min %s\nfinal_max %s\nfinal_bytes %s\nfinal_rounds %s\nfinal_epochs %s\nfinal_aborted %s\nfinal_unformed %s\n", $1, $2, $3, $4, $5, $6, $7, $9, $10}'
	echo "rss_kb_per_node $((peak_rss / N))"
	awk -v c="$cpu" -v hz="$hz" -v N="$N" -v r="$(echo "$final" | awk '{print $6}')" \
		'BEGIN{printf "cpu_s_per_node %.2f\ncpu_ms_per_round %.1f\n", c / hz / N, (r > 0 ? 1000 * c / hz / N / r : 0)}'
	# Aborted rounds as a share of the rounds started (completed + aborted).
	echo "$final" | awk '{printf "aborted_share %.3f\n", (($6 + $9) > 0 ? $9 / ($6 + $9) : 0)}'
	# Of those, the ones that ended before their group was fixed (fewer than t
	# accepted, or too few fresh inputs: matchmaking, no vector sent), and the
	# share of the rounds that formed a group that then aborted.
	echo "$final" | awk '{s = $6 + $9; f = s - $10
		printf "unformed_share %.3f\naborted_formed_share %.3f\n", (s > 0 ? $10 / s : 0),
			(f > 0 ? ($9 - $10) / f : 0)}'
	# Fairness: completed rounds of the node with the fewest and the most.
	awk -v N="$N" '{ last[$2] = $5 } END { mn = -1; for (i = 0; i < N; i++) {
		if (mn < 0 || last[i] < mn) mn = last[i]; if (last[i] > mx) mx = last[i] }
		printf "rounds_per_node_min %d\nrounds_per_node_max %d\n", mn, mx }' "$OUT/nodes.dat"
	if [ -n "$RATE" ]; then
		# Each node's uplink utilisation: bytes it sent / what its rate
		# could carry in the run (frames' overhead not counted).
		awk -v N="$N" -v sn="$SLOW_N" -v fb="$(bits_of "$RATE")" -v sb="$(bits_of "${SLOW_RATE:-0}")" '
			{ last[$2] = $0 }
			END { for (i = 0; i < N; i++) { split(last[i], f, " ")
				u = 8 * f[4] / ((i < sn ? sb : fb) * f[1]); s += u; if (u > mx) mx = u }
				printf "uplink_busy_mean %.3f\nuplink_busy_max %.3f\n", s / N, mx }' "$OUT/nodes.dat"
	fi
	if [ "$SLOW_N" != 0 ]; then
		# The same figures for the slow sites (nodes < SLOW_N) and the fast ones,
		# at the last poll, and when each kind's mean first reached the target.
		for kind in slow fast; do
			awk -v k="$kind" -v sn="$SLOW_N" -v N="$N" -v g="$TARGET" \
				-v bits="$(bits_of "$([ "$kind" = slow ] && echo "$SLOW_RATE" || echo "$RATE")")" '
				function mine(i) { return k == "slow" ? i < sn : i >= sn }
				mine($2) { if ($3 != "-") { s[$1] += $3; c[$1]++
					if (!($1 in mn) || $3 < mn[$1]) mn[$1] = $3 }
					b[$1] += $4; r[$1] += $5; x[$1] += $7; u[$1] += $8; n[$1]++; lastr[$2] = $5
					up[$2] = 8 * $4 / (bits * $1)
					if (!($1 in seen)) { seen[$1] = 1; order[++m] = $1 } }
				END { want = k == "slow" ? sn : N - sn; tt = "-"
					for (j = 1; j <= m; j++) { t = order[j]
						if (c[t] == want && s[t] / c[t] >= g) { tt = t; tb = b[t] / n[t]; break } }
					for (j = m; j >= 1; j--) if (c[order[j]] == want) break
					t = order[j]
					printf "%s_nodes %d\n%s_target_time %s\n%s_target_bytes %s\n", k, want, k, tt, k, tt == "-" ? "-" : sprintf("%.0f", tb)
					printf "%s_final_mean %.4f\n%s_final_min %.4f\n%s_final_bytes %.0f\n%s_final_rounds %.2f\n%s_final_aborted %.2f\n%s_final_unformed %.2f\n",
						k, s[t] / c[t], k, mn[t], k, b[t] / n[t], k, r[t] / n[t], k, x[t] / n[t], k, u[t] / n[t]
					rmn = -1; rmx = 0; us = 0; umx = 0
					for (i in lastr) { if (rmn < 0 || lastr[i] < rmn) rmn = lastr[i]; if (lastr[i] > rmx) rmx = lastr[i]
						us += up[i]; if (up[i] > umx) umx = up[i] }
					printf "%s_rounds_per_node_min %d\n%s_rounds_per_node_max %d\n%s_uplink_busy_mean %.3f\n%s_uplink_busy_max %.3f\n",
						k, rmn, k, rmx, k, us / want, k, umx }' "$OUT/nodes.dat"
		done
	fi
} >"$OUT/summary.txt"
[ "$QUIET" = 1 ] || cat "$OUT/summary.txt"
