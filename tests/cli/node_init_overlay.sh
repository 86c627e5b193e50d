#!/bin/sh
# node_init_overlay.sh: `sotto init --degree D` puts every site in two
# circles of D/2 + 1 and lists the other members of its circles, each
# [Peer] tagged with the circles it shares. Checked: a lists b iff b lists
# a, every circle is a clique (every member lists every other with that
# circle's name), the sites are connected, every config checks OK, the same
# --overlay-seed gives the same overlay; a bad --degree, a GroupSize no
# circle can hold and a broken template are refused before anything is
# written.
set -eu
SOTTO=$1
T=$(mktemp -d /tmp/sotto-init-overlay-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

NAMES="s1 s2 s3 s4 s5 s6 s7 s8 s9 s10 s11 s12"
SITES=""
p=7500
for s in $NAMES; do
	p=$((p + 1))
	SITES="$SITES $s=127.0.0.1:$p"
done
printf 'x1,x2,y\n0,1,0\n1,0,1\n' >"$T/shared.csv"
"$SOTTO" data import-csv "$T/shared.csv" "$T/shared.dat" --header >/dev/null # check loads it
cat >"$T/tpl.ini" <<'TPL'
[Model]
Type = logreg
[Training]
Dataset = ../../shared.dat ; {site}
TPL

# peers NAME DIR: the names site NAME lists, one a line, sorted.
peers() { sed -n 's/^Name = //p' "$2/$1/$1.conf" | grep -vx "$1" | sort; }
# circle NAME DIR C: NAME and the peers it tags with circle C, sorted.
circle() {
	awk -v me="$1" -v c="$3" '
		/^Name = / { name = $3 }
		/^Circles = / { n = split($3, cs, ","); for (i = 1; i <= n; i++) if (cs[i] == c) print name }
		END { print me }' "$2/$1/$1.conf" | sort
}

# shellcheck disable=SC2086 # SITES is a list of words
"$SOTTO" init -o "$T/a" -t "$T/tpl.ini" --degree 4 --overlay-seed 7 $SITES >"$T/log" \
	2>"$T/err" || fail "init --degree 4 failed: $(cat "$T/err")"
grep -q '^overlay: 8 circles of 3 sites, each site in 2; each lists 4 of the 11 others, 24 links, connected' "$T/log" ||
	fail "no overlay summary: $(cat "$T/log")"
[ ! -s "$T/err" ] || fail "init wrote to stderr: $(cat "$T/err")"
for s in $NAMES; do
	conf="$T/a/$s/$s.conf"
	[ "$(grep -c '^\[Peer\]' "$conf")" = 4 ] || fail "$s does not list 4 peers"
	[ "$(grep -c '^Circles = ' "$conf")" = 4 ] || fail "$s has a peer without Circles"
	grep -q '^GroupSize = 3$' "$conf" || fail "$s: circles of 3 need GroupSize 3"
	[ "$(peers "$s" "$T/a" | uniq | wc -l)" = 4 ] || fail "$s lists a peer twice"
	out=$("$SOTTO" check -c "$conf" 2>&1) || fail "$s: $out"
	for o in $(peers "$s" "$T/a"); do
		peers "$o" "$T/a" | grep -qx "$s" || fail "$s lists $o but $o does not list $s"
	done
	for c in $(sed -n 's/^Circles = //p' "$conf" | tr ',' '\n' | sort -u); do
		want=$(circle "$s" "$T/a" "$c")
		[ "$(echo "$want" | wc -l)" = 3 ] || fail "$s: circle $c is not 3 sites: $want"
		for o in $want; do
			[ "$(circle "$o" "$T/a" "$c")" = "$want" ] ||
				fail "circle $c: $s sees $(echo $want), $o sees $(circle "$o" "$T/a" "$c" | tr '\n' ' ')"
		done
	done
done

# Connected: a search from s1 over the lists reaches all 12.
seen=s1
todo=s1
while [ -n "$todo" ]; do
	next=""
	for s in $todo; do
		for o in $(peers "$s" "$T/a"); do
			case " $seen " in *" $o "*) ;; *) seen="$seen $o"; next="$next $o" ;; esac
		done
	done
	todo=$next
done
[ "$(echo "$seen" | wc -w)" = 12 ] || fail "overlay not connected: from s1 only $seen"

# The same seed, the same overlay; another seed, (almost surely) another.
# shellcheck disable=SC2086
"$SOTTO" init -o "$T/b" -t "$T/tpl.ini" --degree 4 --overlay-seed 7 $SITES >/dev/null 2>&1 ||
	fail "second init failed"
# shellcheck disable=SC2086
"$SOTTO" init -o "$T/c" -t "$T/tpl.ini" --degree 4 --overlay-seed 8 $SITES >/dev/null 2>&1 ||
	fail "third init failed"
same=yes
for s in $NAMES; do
	[ "$(peers "$s" "$T/a")" = "$(peers "$s" "$T/b")" ] || fail "seed 7 gave another overlay"
	[ "$(peers "$s" "$T/a")" = "$(peers "$s" "$T/c")" ] || same=no
done
[ "$same" = no ] || fail "seeds 7 and 8 gave the same overlay"

# Refused, with a message and nothing written.
refuse() { # refuse WHAT EXPECTED-MESSAGE ARGS...
	what=$1 msg=$2
	shift 2
	rm -rf "$T/bad"
	if "$SOTTO" init -o "$T/bad" "$@" >"$T/out" 2>"$T/err"; then
		fail "init accepted $what"
	fi
	grep -q -e "$msg" "$T/err" || fail "$what: no message '$msg': $(cat "$T/err")"
	[ ! -e "$T/bad" ] || fail "$what: init wrote $T/bad"
}
# shellcheck disable=SC2086
{
	refuse "--degree 3" "each site needs at least 4 peers" --degree 3 $SITES
	refuse "--degree 0" "each site needs at least 4 peers" --degree 0 $SITES
	refuse "--degree -3" "a number in 0..2^63-1, not '-3'" --degree -3 $SITES
	refuse "--degree four" "a number in 0..2^63-1, not 'four'" --degree four $SITES
	refuse "--overlay-seed alone" "--overlay-seed needs --degree" --overlay-seed 3 $SITES
	printf '[Gossip]\nGroupSize = 6\n' >"$T/big.ini"
	refuse "GroupSize 6 with --degree 4" \
		"GroupSize 6 needs circles of 6 sites, but with --degree 4 the smallest circle holds 3" \
		-t "$T/big.ini" --degree 4 $SITES
	printf '[Training]\nDataset = x\nBatchSize = 0\n' >"$T/broken.ini"
	refuse "a broken template" "broken.ini:3: \[Training\] BatchSize" \
		-t "$T/broken.ini" --degree 4 $SITES
}
refuse "GroupSize 6 with 4 sites" "but 4 sites list only 3 each" -t "$T/big.ini" \
	a=h:1 b=h:2 c=h:3 d=h:4

# >= sites - 1 is everyone, with a note, and no Circles.
# shellcheck disable=SC2086
"$SOTTO" init -o "$T/all" --degree 40 $SITES >/dev/null 2>"$T/err" || fail "--degree 40 failed"
grep -q 'note: --degree 40 with 12 sites: every site lists every other site' "$T/err" ||
	fail "no note for --degree 40"
[ "$(grep -c '^\[Peer\]' "$T/all/s5/s5.conf")" = 11 ] || fail "--degree 40 is not everyone"
! grep -q '^Circles' "$T/all/s5/s5.conf" || fail "--degree 40 wrote Circles"
echo "node_init_overlay: 12 sites in 8 circles of 3, 4 peers each, cliques, connected, checked"
