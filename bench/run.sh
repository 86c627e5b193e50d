#!/bin/bash
# run.sh: the benchmark of issue 8, one command. Prints tables and writes
# them with PNG plots to OUT (default bench-out/):
#
#   (a) accuracy against bytes sent per node, 16 nodes, MLP 784-128-10, the
#       bundled MNIST split Dirichlet(0.5) (same seed for every run), the
#       demo's schedule, for several codec settings against Codec = float32,
#       and centralized training on the same 8,000 images (`sotto train`);
#   (b) slow links (root only, else said and skipped): every node in its own
#       network namespace behind tc tbf at 3 Mbit/s, at 100 kbit/s, and a
#       mixed network, against unlimited links (issue 13's table);
#   (c) 64 node processes: rounds and time to the target, final spread;
#   (d) overhead: secure round against a plain group average with the same
#       codec (bench_overhead, in process);
#   (e) footprint: binary size, resident memory per node, CPU per round.
#
#   bench/run.sh [--quick] [-o OUT] [--no-netns] [--only a|b|c|d|e]
#                [--paths 'star scatter']
#
# --only X: that table alone (b alone takes about 25 minutes per data path,
# as root). --paths: the [Gossip] DataPath values table (b) runs (default
# both, each against its own unlimited run).
# --quick: float32 and the default only, 6 epochs, target 88%, shorter runs
# (about 9 minutes instead of about 35 on a 2-core machine). Time figures on a shared machine are noisy; bytes
# to the target are the primary figure. Not run in CI.
set -eu
cd "$(dirname "$0")/.."
ROOT=$(pwd)
QUICK=0
OUT=bench-out
NETNS=1
ONLY=
PATHS="star scatter"
while [ $# -gt 0 ]; do
	case $1 in
	--quick) QUICK=1 ;;
	-o) OUT=$2; shift ;;
	--no-netns) NETNS=0 ;;
	--only) ONLY=$2; shift ;;
	--paths) PATHS=$2; shift ;;
	*) sed -n '2,25p' "$0" >&2; exit 2 ;;
	esac
	shift
done
case "$OUT" in /*) ;; *) OUT="$ROOT/$OUT" ;; esac
mkdir -p "$OUT"
TARGET=0.93
want() { [ -z "$ONLY" ] || [ "$ONLY" = "$1" ]; }
val() { awk -v k="$2" '$1 == k {print $2}' "$1/summary.txt" 2>/dev/null; }
B=build-bench
cmake -S . -B "$B" >/dev/null
cmake --build "$B" -j2 --target sotto bench_overhead >/dev/null
S="$ROOT/$B/sotto"
CL="$ROOT/bench/cluster.sh"

if [ "$QUICK" = 1 ]; then
	# 6 epochs end near 90%: measure bytes to 88% instead of 93%.
	EPOCHS=6; SECS=45; NSEC=60; NB_EPOCHS=4; SCALE_SECS=60; TARGET=0.88
else
	EPOCHS=20; SECS=125; NSEC=200; NB_EPOCHS=20; SCALE_SECS=240
fi

{
	echo "date $(date -u +%Y-%m-%dT%H:%MZ)"
	echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo ?)"
	echo "nproc $(nproc)"
	echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')"
	echo "memory $(awk '/MemTotal/{printf "%.1f GiB", $2 / 1048576}' /proc/meminfo)"
	echo "load $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "quick $QUICK"
} >"$OUT/machine.txt"
echo "== machine"; sed 's/^/   /' "$OUT/machine.txt"

# --- (a) accuracy against bytes ------------------------------------------------
if want a; then
# name|[Gossip] keys ("" = the defaults)
SETTINGS=(
	"float32|Codec = float32;Keep = 1"
	"default||"
	"fixed-8|Codec = fixed;Bits = 8;Keep = 1"
	"fixed-8-keep-0.1|Codec = fixed;Bits = 8;Keep = 0.1"
	"modular-6|Codec = modular;Width = 6;Keep = 1"
	"lowrank-16|Rank = 16"
	"lowrank-12|Rank = 12"
)
[ "$QUICK" = 1 ] && SETTINGS=("float32|Codec = float32;Keep = 1" "default||")
echo "== (a) 16 nodes, ${EPOCHS} epochs of local training, ${SECS}s per run, target $TARGET"
for s in "${SETTINGS[@]}"; do
	name=${s%%|*}; keys=${s#*|}; keys=${keys%|}
	echo "   $name: ${keys:-[Gossip] defaults}"
	"$CL" -b "$S" -o "$OUT/a-$name" -n 16 -s "$SECS" -e "$EPOCHS" -t "$TARGET" -q -g "$keys" ||
		echo "   $name: run failed (see $OUT/a-$name/logs)"
done

# Centralized: the same MLP and optimizer on all 8,000 images.
cat >"$OUT/central.conf" <<CONF
[Model]
Type = mlp
Hidden = 128
Seed = 42
[Training]
Dataset = $ROOT/data/mnist-train.sdat.gz
TestSet = $ROOT/data/mnist-test.sdat.gz
LearningRate = 0.05
Momentum = 0.9
BatchSize = 32
Epochs = $EPOCHS
CONF
"$S" train -c "$OUT/central.conf" 2>&1 | sed -n 's/^epoch *\([0-9]*\).*test loss [0-9.]* acc *\([0-9.]*\)%.*/\1 \2/p' \
	>"$OUT/central.dat"
central=$(tail -n 1 "$OUT/central.dat" | awk '{print $2}')

f32_bytes=$(val "$OUT/a-float32" target_bytes)
f32_final=$(val "$OUT/a-float32" final_mean)
{
	echo "| setting | [Gossip] keys | MB/node to ${TARGET/0./}% | vs float32 | s to target | rounds/node to target | final mean | final spread | aborted/node |"
	echo "|---|---|---|---|---|---|---|---|---|"
	for s in "${SETTINGS[@]}"; do
		name=${s%%|*}; keys=${s#*|}; keys=${keys%|}
		d="$OUT/a-$name"
		[ -f "$d/summary.txt" ] || continue
		tb=$(val "$d" target_bytes); tt=$(val "$d" target_time); tr=$(val "$d" target_rounds)
		fm=$(val "$d" final_mean); fmin=$(val "$d" final_min); fmax=$(val "$d" final_max)
		ab=$(val "$d" final_aborted); fb=$(val "$d" final_bytes); fr=$(val "$d" final_rounds)
		awk -v n="$name" -v k="${keys:-defaults}" -v tb="$tb" -v tt="$tt" -v tr="$tr" -v fm="$fm" \
			-v mn="$fmin" -v mx="$fmax" -v ab="$ab" -v f32="$f32_bytes" -v fb="$fb" -v fr="$fr" 'BEGIN {
			if (tb == "-") { mb = sprintf("not reached (%.2f at end)", fb / 1e6); x = "-"; tt = "-"; tr = "-" }
			else { mb = sprintf("%.2f", tb / 1e6); x = (f32 != "-" && f32 != "") ? sprintf("%.1fx", f32 / tb) : "-" }
			printf "| %s | %s | %s | %s | %s | %s | %.2f%% | %.2f | %s |\n", n, k, mb, x, tt, tr, 100 * fm, 100 * (mx - mn), ab }'
	done
	echo
	echo "Centralized training on the same 8,000 images, $EPOCHS epochs: ${central:-?}% test accuracy."
} >"$OUT/table-a.md"
echo; cat "$OUT/table-a.md"

if command -v gnuplot >/dev/null 2>&1; then
	plot=""
	for s in "${SETTINGS[@]}"; do
		name=${s%%|*}
		[ -s "$OUT/a-$name/progress.dat" ] || continue
		plot="$plot \"$OUT/a-$name/progress.dat\" using (\$5/1e6):(100*\$2) with lines lw 2 title \"$name\","
	done
	gnuplot <<GP
set terminal pngcairo size 1000,600 font ",10"
set output "$OUT/accuracy-vs-bytes.png"
set title "sotto, 16 nodes, MLP 784-128-10, MNIST Dirichlet(0.5): mean node accuracy"
set logscale x
set grid
set key bottom right
set xlabel "MB sent per node"
set ylabel "mean test accuracy (%)"
set yrange [50:100]
plot $plot ${central:-0} with lines dt 2 lc rgb "black" title "centralized ($EPOCHS epochs)", $(awk -v t=$TARGET 'BEGIN{print 100*t}') with lines dt 3 lc rgb "gray" title "target"
GP
	gnuplot <<GP
set terminal pngcairo size 1000,600 font ",10"
set output "$OUT/accuracy-vs-time.png"
set title "sotto, 16 nodes: mean node accuracy against time (2 shared cores)"
set grid
set key bottom right
set xlabel "seconds"
set ylabel "mean test accuracy (%)"
set yrange [50:100]
plot $(echo "$plot" | sed 's/(\$5\/1e6)/1/g') $(awk -v t=$TARGET 'BEGIN{print 100*t}') with lines dt 3 lc rgb "gray" title "target"
GP
fi
fi

# --- (b) slow links --------------------------------------------------------------
# Issue 13's setup: table (a)'s 16 nodes with the default codec at
# LearningRate 0.1 (with rounds this rare, 0.05 stops short of 93% and 0.2
# or more drifts apart: docs/benchmarks.md (b)), on unlimited links, then
# behind tbf at 3 Mbit/s, at 100 kbit/s, and a mixed network (4 sites at
# 100 kbit/s, 12 at 3 Mbit/s, each kind reported apart). No -x: the final
# figures are the end of the run.
# name|cluster.sh options
SLOW_RUNS=(
	"unlimited|-T 15"
	"3mbit|-r 3mbit -T 15"
	"100kbit|-r 100kbit -T 120"
	"mixed|-r 3mbit -S 4:100kbit -T 120"
)
slow_secs() {
	case $1 in
	100kbit) echo $((NSEC * 3)) ;;
	mixed) echo $((NSEC * 3 / 2)) ;;
	*) echo "$NSEC" ;;
	esac
}
# One row of table (b) from a run's summary: prefix "" or "slow_"/"fast_".
slow_row() {
	local d=$1 label=$2 k=$3 base=$4 path=$5
	awk -v l="$label" -v p="$path" -v tt="$(val "$d" "${k}target_time")" -v tb="$(val "$d" "${k}target_bytes")" \
		-v fm="$(val "$d" "${k}final_mean")" -v mn="$(val "$d" "${k}final_min")" \
		-v fr="$(val "$d" "${k}final_rounds")" -v ab="$(val "$d" "${k}final_aborted")" \
		-v un="$(val "$d" "${k}final_unformed")" \
		-v rmin="$(val "$d" "${k}rounds_per_node_min")" -v rmax="$(val "$d" "${k}rounds_per_node_max")" \
		-v up="$(val "$d" "${k}uplink_busy_mean")" -v ft="$(val "$d" final_time)" -v base="$base" 'BEGIN {
		if (tt == "-" || tt == "") { tt = sprintf("not in %.0f", ft); ratio = "-"; tb = "-" }
		else { ratio = (base != "" && base != "-") ? sprintf("%.2fx", tt / base) : "-"; tb = sprintf("%.2f", tb / 1e6) }
		share = (fr + ab) > 0 ? sprintf("%.0f%%", 100 * ab / (fr + ab)) : "-"
		# of which before a group formed (no vector sent) / of the formed rounds
		if (un == "") split_ = "-"
		else split_ = sprintf("%.0f%% / %.1f%%", (fr + ab) > 0 ? 100 * un / (fr + ab) : 0,
			(fr + ab - un) > 0 ? 100 * (ab - un) / (fr + ab - un) : 0)
		if (up == "") up = "-"; else up = sprintf("%.0f%%", 100 * up)
		printf "| %s | %s | %s | %s | %s | %.2f%% | %.2f%% | %.1f (%s-%s) | %.1f | %s | %s | %s |\n",
			l, p, tt, ratio, tb, 100 * fm, 100 * mn, fr, rmin, rmax, ab, share, split_, up }'
}
: >"$OUT/table-b.md"
if ! want b; then
	:
elif [ "$NETNS" = 1 ] && [ "$(id -u)" -eq 0 ] && command -v tc >/dev/null 2>&1; then
	echo "== (b) 16 nodes, default codec, LearningRate 0.1, in network namespaces behind tbf"
	{
		echo "| link | path | s to 93% | vs unlimited | MB/node to 93% | final mean | final min | rounds/node (min-max) | aborted/node | aborted share | no group formed / formed, then aborted | uplink busy |"
		echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
	} >"$OUT/table-b.md"
	for path in $PATHS; do
		base=-
		for s in "${SLOW_RUNS[@]}"; do
			name=${s%%|*}; opts=${s#*|}
			secs=$(slow_secs "$name")
			echo "   $name, $path, ${secs}s"
			d="$OUT/b-$name-$path"
			# shellcheck disable=SC2086 # opts is a list of options
			"$CL" -b "$S" -o "$d" -n 16 -s "$secs" -e "$NB_EPOCHS" -t "$TARGET" -q -l 0.1 \
				-g "DataPath = $path" $opts || echo "   $name, $path: run failed"
			[ -f "$d/summary.txt" ] || continue
			[ "$name" = unlimited ] && base=$(val "$d" target_time)
			if [ "$name" = mixed ]; then
				slow_row "$d" "mixed: 4 slow sites (100 kbit/s)" slow_ "$base" "$path" >>"$OUT/table-b.md"
				slow_row "$d" "mixed: 12 fast sites (3 Mbit/s)" fast_ "$base" "$path" >>"$OUT/table-b.md"
			else
				slow_row "$d" "$name" "" "$base" "$path" >>"$OUT/table-b.md"
			fi
		done
	done
	echo; cat "$OUT/table-b.md"
else
	echo "== (b) skipped: slow links need root (network namespaces and tc)" | tee "$OUT/table-b.md"
fi

# --- (c) 64 nodes ------------------------------------------------------------------
if want c; then
# 125 images per node: batch 8 and an average every 1-2 steps, lr 0.1 and drift
# correction (docs/benchmarks.md, issue 15); batch 32 at lr 0.05 ends near 89%.
echo "== (c) 64 node processes, default codec, batch 8, lr 0.1, ${SCALE_SECS}s"
"$CL" -b "$S" -o "$OUT/c-64" -n 64 -s "$SCALE_SECS" -e "$EPOCHS" -t "$TARGET" -q -g "" \
	-l 0.1 -L 'BatchSize = 8;LocalEpochs = 0.1;DriftCorrection = 0.05' ||
	echo "   64-node run failed (see $OUT/c-64/logs)"
d="$OUT/c-64"
{
	echo "| nodes | s to target | rounds/node to target | MB/node to target | final mean | final min | final max | spread | RSS/node |"
	echo "|---|---|---|---|---|---|---|---|---|"
	awk -v tt="$(val "$d" target_time)" -v tr="$(val "$d" target_rounds)" -v tb="$(val "$d" target_bytes)" \
		-v fm="$(val "$d" final_mean)" -v mn="$(val "$d" final_min)" -v mx="$(val "$d" final_max)" \
		-v rss="$(val "$d" rss_kb_per_node)" 'BEGIN {
		if (tb != "-" && tb != "") tb = sprintf("%.2f", tb / 1e6)
		printf "| 64 | %s | %s | %s | %.2f%% | %.2f%% | %.2f%% | %.2f | %.1f MB |\n", tt, tr, tb, 100 * fm, 100 * mn, 100 * mx, 100 * (mx - mn), rss / 1024 }'
} >"$OUT/table-c.md"
cat "$OUT/table-c.md"
fi

# --- (d) overhead -------------------------------------------------------------------
if want d; then
echo "== (d) secure round against a plain group average, same codec (in process)"
"$ROOT/$B/bench/bench_overhead" | tee "$OUT/overhead.txt"
fi

# --- (e) footprint --------------------------------------------------------------------
if want e; then
echo "== (e) footprint"
strip -o "$OUT/sotto.stripped" "$S" 2>/dev/null || cp "$S" "$OUT/sotto.stripped"
{
	echo "| figure | value |"
	echo "|---|---|"
	echo "| binary (as built, $B, RelWithDebInfo) | $(stat -c %s "$S" | awk '{printf "%.2f MB", $1 / 1e6}') |"
	echo "| binary stripped | $(stat -c %s "$OUT/sotto.stripped" | awk '{printf "%.2f MB", $1 / 1e6}') |"
	for d in "$OUT/a-default" "$OUT/a-float32" "$OUT/c-64"; do
		[ -f "$d/summary.txt" ] || continue
		echo "| peak RSS per node, $(basename "$d") | $(val "$d" rss_kb_per_node | awk '{printf "%.1f MB", $1 / 1024}') |"
		echo "| CPU per node per completed round (training included), $(basename "$d") | $(val "$d" cpu_ms_per_round) ms |"
	done
	awk -F'|' 'NR > 2 { name = substr($1, 1, 28); sub(/ +$/, "", name); n = split($3, b, " +")
		printf "| CPU of one secure round (4 members, one core), %s | %s ms |\n", name, b[n - 1] }' \
		"$OUT/overhead.txt"
} >"$OUT/table-e.md"
rm -f "$OUT/sotto.stripped"
cat "$OUT/table-e.md"
fi
echo "== tables and plots in $OUT/"
