#!/bin/sh
# man_pages.sh: sotto(8) and sotto.conf(5) are kept in step with the binary
# the way docs/sotto.conf.md is: every command of `sotto help` has an entry
# in sotto(8) and its usage line works with --help; every exit status is
# listed; every key of `sotto check --keys` has an entry under its section
# in sotto.conf(5) with the binary's default; both pages render without
# groff warnings where man(1) is installed.
set -eu
SOTTO=$1
SRC=$2
fail() { echo "FAIL: $*" >&2; exit 1; }
M8=$SRC/docs/man/sotto.8
M5=$SRC/docs/man/sotto.conf.5

cmds=$("$SOTTO" help | sed -n 's/^  \([a-z-]*\)  *[A-Z].*/\1/p')
[ -n "$cmds" ] || fail "no commands in sotto help"
# An entry: a .TP line, then ".B cmd..." or '.BI "cmd ...'.
entries=$(sed -n '/^\.SH COMMANDS/,/^\.SH EXIT/p' "$M8" | grep -A1 '^\.TP' | grep '^\.B')
for c in $cmds; do
	printf '%s\n' "$entries" | grep -Eq "^\.BI? \"?$c( |\"|$)" ||
		fail "sotto.8 has no entry for '$c'"
done
for s in 0 1 2; do
	grep -A1 '^\.SH EXIT STATUS' "$M8" >/dev/null || fail "sotto.8: no EXIT STATUS"
	sed -n '/^\.SH EXIT STATUS/,/^\.SH FILES/p' "$M8" | grep -q "^\.B $s\$" ||
		fail "sotto.8 lacks exit status $s"
done

keys=$("$SOTTO" check --keys) || fail "sotto check --keys"
n=0
while read -r sec key def _; do
	sec=${sec#[}
	sec=${sec%]}
	# The entry: ".B Key" after '.SH "[Section]"' and before the next .SH.
	body=$(sed -n "/^\.SH \"\[$sec\]\"/,/^\.SH /p" "$M5")
	[ -n "$body" ] || fail "sotto.conf.5 has no section [$sec]"
	printf "%s\n" "$body" | grep -qx "\.B $key" || fail "sotto.conf.5 lacks [$sec] $key"
	if [ "$def" != "-" ]; then
		printf "%s\n" "$body" | grep -A1 -x "\.B $key" | grep -q "Default: \\\\fB$def\\\\fR" ||
			fail "sotto.conf.5: [$sec] $key does not give the default $def"
	fi
	n=$((n + 1))
done <<KEYS
$keys
KEYS
[ "$n" -ge 30 ] || fail "only $n keys checked"

if command -v man >/dev/null 2>&1 && command -v groff >/dev/null 2>&1; then
	for p in "$M8" "$M5"; do
		w=$(MANWIDTH=80 man --warnings -l "$p" 2>&1 >/dev/null) || fail "man -l $p"
		[ -z "$w" ] || fail "$p: $w"
	done
fi
echo "ok: man pages in step with the binary"
