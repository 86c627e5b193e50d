#!/bin/sh
# node_init.sh: `sotto init` writes one key (0600) and one config per site,
# each listing every other site as a peer, and every config checks OK; with
# --pubkeys it takes each site's public key and writes no private key.
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
# --pubkeys, the path for real sites: each site made its own key; init gets
# public keys only and writes no private key.
mkdir "$T/keys"
args=""
port=7401
for s in a b c; do
	"$SOTTO" keygen "$T/keys/$s.key" >/dev/null 2>&1
	args="$args $s=127.0.0.1:$port=$("$SOTTO" pubkey <"$T/keys/$s.key")"
	port=$((port + 1))
done
# shellcheck disable=SC2086 # one word per site
"$SOTTO" init --pubkeys -o "$T/pk" -t "$T/tpl.ini" $args >"$T/log" || fail "init --pubkeys"
for s in a b c; do
	[ ! -e "$T/pk/$s/$s.key" ] || fail "init --pubkeys wrote a private key for $s"
	cp "$T/keys/$s.key" "$T/pk/$s/"
	out=$("$SOTTO" check -c "$T/pk/$s/$s.conf" 2>&1) || fail "--pubkeys $s: $out"
	pub=$("$SOTTO" pubkey <"$T/keys/$s.key")
	for o in a b c; do
		[ "$o" = "$s" ] && continue
		grep -qF "PublicKey = $pub" "$T/pk/$o/$o.conf" || fail "--pubkeys: $o does not pin $s"
	done
done
if "$SOTTO" init --pubkeys -o "$T/pkbad" a=127.0.0.1:1=notakey b=127.0.0.1:2=x c=h:3=y 2>"$T/err"; then
	fail "init --pubkeys accepted bad keys"
fi
grep -q "NAME=HOST:PORT=PUBKEY" "$T/err" || fail "init --pubkeys bad key said: $(cat "$T/err")"
echo "node_init: 4 sites written and checked; --pubkeys; wildcards refused"
