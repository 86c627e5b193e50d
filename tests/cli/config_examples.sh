#!/bin/sh
# config_examples.sh: every docs/examples/*.conf passes `sotto check` once
# the key files it names exist; a broken config lists each error with its
# line and exits 2; keygen/pubkey behave as documented.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-cli-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- keygen / pubkey -----------------------------------------------------
(umask 022 && "$SOTTO" keygen "$T/k") || fail "keygen"
[ "$(stat -c %a "$T/k")" = 600 ] || fail "key mode is $(stat -c %a "$T/k"), want 600"
[ "$(wc -c <"$T/k")" -eq 45 ] || fail "key file is not one 44-char line"
pub=$("$SOTTO" pubkey <"$T/k") || fail "pubkey"
[ "${#pub}" -eq 44 ] || fail "public key '$pub' is not 44 chars"
[ "$("$SOTTO" pubkey <"$T/k")" = "$pub" ] || fail "pubkey not deterministic"
if "$SOTTO" keygen "$T/k" 2>"$T/err"; then fail "keygen overwrote a key"; fi
grep -q "refusing to overwrite" "$T/err" || fail "no overwrite message"
[ "$("$SOTTO" pubkey <"$T/k")" = "$pub" ] || fail "key changed after refused keygen"
(umask 022 && "$SOTTO" keygen >"$T/stdout.key" 2>"$T/err") || fail "keygen to stdout"
grep -q "Warning" "$T/err" || fail "no umask warning for a readable file"
(umask 077 && "$SOTTO" keygen >"$T/stdout2.key" 2>"$T/err") || fail "keygen to stdout"
[ ! -s "$T/err" ] || fail "warned although umask 077"
if echo "garbage" | "$SOTTO" pubkey >/dev/null 2>&1; then fail "pubkey accepted garbage"; fi
if "$SOTTO" pubkey </dev/null >/dev/null 2>&1; then fail "pubkey accepted empty input"; fi
if "$SOTTO" keygen a b >/dev/null 2>&1; then fail "keygen accepted two arguments"; fi

# --- the documented examples -----------------------------------------------
mkdir -p "$T/docs/examples" "$T/data"
cp "$SRC"/docs/examples/*.conf "$T/docs/examples/"
for f in "$SRC"/data/*; do [ -e "$f" ] && cp "$f" "$T/data/"; done
n=0
for conf in "$T"/docs/examples/*.conf; do
	key=$(sed -n 's/^PrivateKeyFile *= *\([^ ;]*\).*/\1/p' "$conf")
	if [ -n "$key" ]; then
		(cd "$T/docs/examples" && "$SOTTO" keygen "$key")
	fi
	out=$("$SOTTO" check -c "$conf" 2>&1) || fail "$(basename "$conf"): $out"
	[ "$out" = "configuration OK" ] || fail "$(basename "$conf") printed: $out"
	n=$((n + 1))
done
[ "$n" -ge 1 ] || fail "no examples found"

# --- a broken file: every error, with its line, exit status 2 --------------
cat >"$T/broken.conf" <<CONF
[Node]
Name = bad name
PrivateKeyFile = k
Listen = 127.0.0.1
DataDir = d
[Training]
Dataset = k
BatchSize = -3
[Weird]
CONF
chmod 644 "$T/k"
status=0
"$SOTTO" check -c "$T/broken.conf" 2>"$T/err" || status=$?
[ "$status" -eq 2 ] || fail "broken config exited $status, want 2"
for want in ":2: [Node] Name must be" ":3: PrivateKeyFile is accessible by group or others" \
	":4: [Node] Listen missing :port" ":8: [Training] BatchSize must be an integer in" \
	":9: unknown section" "GroupSize 4 needs at least 3 peers" ": 6 errors"; do
	grep -qF "$want" "$T/err" || { cat "$T/err" >&2; fail "missing error '$want'"; }
done
if "$SOTTO" check >/dev/null 2>&1; then fail "check without -c succeeded"; fi
echo "config_examples: $n examples OK, broken file reported"
