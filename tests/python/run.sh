#!/bin/sh
# run.sh: the Python package's tests (python/tests, pytest) with Debian's
# python3 against this build's sotto binary. Skipped (77) with a message
# when python3-pytest or python3-numpy is missing (scripts/setup.sh
# installs both, and python3-torch for the PyTorch tests).
set -eu
SOTTO=$1
SRC=$2
if ! /usr/bin/python3 -c 'import pytest, numpy' 2>/dev/null; then
	echo "python_package: skipped (python3-pytest or python3-numpy missing; scripts/setup.sh installs them)"
	exit 77
fi
T=$(mktemp -d /tmp/sotto-python-XXXXXX)
trap 'rm -rf "$T"' EXIT
cd "$SRC/python"
SOTTO_BIN=$SOTTO PYTHONPATH="$SRC/python" exec /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	--basetemp "$T/pytest" tests
