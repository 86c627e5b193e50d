#!/bin/sh
# test.sh: the README's test command. Installs what is missing, builds with
# warnings as errors, and runs the whole suite through ctest: unit tests,
# command-line tests, interop, loopback and the short chaos run. When clang
# is present it also builds the libFuzzer harnesses and runs each for a
# bounded time.
#
#   scripts/test.sh              # the suite (as in the README)
#   scripts/test.sh --sanitize   # the same under ASan + UBSan (build-asan/)
#   SOTTO_FUZZ_SECONDS=60 scripts/test.sh   # longer fuzzing
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh

jobs=$(nproc 2>/dev/null || echo 2)
build=build
opts=""
fuzz=1
case "${1:-}" in
--sanitize)
	build=build-asan
	opts="-DSOTTO_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug"
	fuzz=0
	export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1"
	export LSAN_OPTIONS="suppressions=$(pwd)/tests/lsan.supp:print_suppressions=0"
	export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
	# The simulator's validation checks figures, not memory: the plain run has it.
	export SOTTO_SANITIZED=1
	;;
"") ;;
*)
	echo "usage: scripts/test.sh [--sanitize]" >&2
	exit 2
	;;
esac

if [ "$build" = build ]; then
	echo "== format (.clang-format)"
	scripts/format.sh --check
fi

echo "== build ($build)"
# shellcheck disable=SC2086
cmake -S . -B "$build" -DSOTTO_WERROR=ON $opts >/dev/null
cmake --build "$build" -j"$jobs"

echo "== tests ($build)"
ctest --test-dir "$build" --output-on-failure -j"$jobs" --timeout 900

if [ "$fuzz" = 1 ]; then
	if command -v clang >/dev/null 2>&1; then
		echo "== fuzz (build-fuzz, ${SOTTO_FUZZ_SECONDS:-20} s per harness)"
		CC=clang cmake -S . -B build-fuzz -DSOTTO_FUZZ=ON -DSOTTO_TESTS=OFF \
			-DSOTTO_FUZZ_SECONDS="${SOTTO_FUZZ_SECONDS:-20}" >/dev/null
		cmake --build build-fuzz -j"$jobs"
		ctest --test-dir build-fuzz --output-on-failure -L fuzz -j"$jobs"
	else
		echo "== fuzz: skipped (clang not installed)"
	fi
fi
