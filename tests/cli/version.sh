#!/bin/sh
# version.sh: `sotto --version` and `sotto version` print exactly
# "sotto X.Y.Z", where X.Y.Z is project(sotto VERSION X.Y.Z) in the top
# CMakeLists.txt, the one place the version is written.
set -eu
SOTTO=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }

want=$(sed -n 's/^project(sotto VERSION \([0-9][0-9.]*\)[ )].*/\1/p' "$SRC/CMakeLists.txt")
[ -n "$want" ] || fail "no project(sotto VERSION ...) in $SRC/CMakeLists.txt"
for arg in --version version; do
	got=$("$SOTTO" $arg) || fail "sotto $arg exited with $?"
	[ "$got" = "sotto $want" ] || fail "sotto $arg printed '$got', want 'sotto $want'"
done
echo "ok: sotto $want"
