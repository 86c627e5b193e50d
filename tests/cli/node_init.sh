#!/bin/sh
# node_init.sh: `sotto init` writes one key (0600) and one config per site,
# each listing every other site as a peer, and every config checks OK.
set -eu
SOTTO=$1
T=$(mktemp -d /tmp/sotto-init-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

printf 'x1,x2,y\n0,1,0\n1,0,1\n' >"$T/shared.csv"
"$SOTTO" data import-csv "$T/shared.csv" "$T/shared.dat" --header >/dev/null # check loads it
cat >"$T/tpl.ini" <<'TPL'
[Model]
Type = logreg
Seed = 7
[Training]
Dataset = ../../shared.dat ; {site}
TPL
"$SOTTO" init -o "$T/out" -t "$T/tpl.ini" a=127.0.0.1:7301 b=127.0.0.1:7302 \
	c=127.0.0.1:7303 d=127.0.0.1:7304 >"$T/log" || fail "init failed"
for s in a b c d; do
	[ "$(stat -c %a "$T/out/$s/$s.key")" = 600 ] || fail "$s.key is not 0600"
	out=$("$SOTTO" check -c "$T/out/$s/$s.conf" 2>&1) || fail "$s: $out"
	[ "$(grep -c '^\[Peer\]' "$T/out/$s/$s.conf")" = 3 ] || fail "$s does not list 3 peers"
	grep -q "; $s\$" "$T/out/$s/$s.conf" || fail "{site} not substituted for $s"
	pub=$("$SOTTO" pubkey <"$T/out/$s/$s.key")
	for o in a b c d; do
		[ "$o" = "$s" ] && continue
		grep -qF "PublicKey = $pub" "$T/out/$o/$o.conf" || fail "$o does not pin $s"
	done
done
if "$SOTTO" init -o "$T/out" a=127.0.0.1:1 b=127.0.0.1:2 c=127.0.0.1:3 2>/dev/null; then
	fail "init overwrote existing sites"
fi
if "$SOTTO" init -o "$T/two" a=127.0.0.1:1 b=127.0.0.1:2 2>/dev/null; then
	fail "init accepted 2 sites"
fi
if "$SOTTO" init -o "$T/bad" a=127.0.0.1:1 a=127.0.0.1:2 c=h:3 2>/dev/null; then
	fail "init accepted a repeated name"
fi
# A wildcard as a site's address: every other site's check would refuse it
# as an Endpoint, so init refuses it before writing anything.
for ep in '*:3' ':3' '0.0.0.0:3' 'tcp://*:3' '[::]:3'; do
	if "$SOTTO" init -o "$T/wild" a="$ep" b=127.0.0.1:2 c=127.0.0.1:3 2>"$T/err"; then
		fail "init accepted the wildcard endpoint $ep"
	fi
	grep -q "endpoint needs a host to connect to, not a wildcard" "$T/err" ||
		fail "init on $ep said: $(cat "$T/err")"
	[ ! -e "$T/wild" ] || fail "init wrote $T/wild for $ep"
done
echo "node_init: 4 sites written and checked"
