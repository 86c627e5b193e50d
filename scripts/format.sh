#!/bin/sh
# format.sh: the C style (.clang-format) over every tracked .c and .h.
#
#   scripts/format.sh           rewrite the files that differ
#   scripts/format.sh --check   list them and fail (CI: scripts/test.sh)
set -eu
cd "$(dirname "$0")/.."
mode=${1:-fix}
case "$mode" in
fix | --check) ;;
*)
	echo "usage: scripts/format.sh [--check]" >&2
	exit 2
	;;
esac
bad=0
for f in $(git ls-files '*.c' '*.h'); do
	if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
		if [ "$mode" = --check ]; then
			echo "format: $f differs from .clang-format (scripts/format.sh fixes it)" >&2
			bad=$((bad + 1))
		else
			clang-format -i "$f"
			echo "format: rewrote $f"
		fi
	fi
done
[ "$bad" = 0 ] || { echo "format: $bad file(s) to reformat" >&2; exit 1; }
