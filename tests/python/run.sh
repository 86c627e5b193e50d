#!/bin/sh
# run.sh: the Python package's tests (python/tests, pytest) with Debian's
# python3 against this build's sotto binary. Skipped (77) with a message
# when python3-pytest or python3-numpy is missing (scripts/setup.sh
# installs both, python3-torch for the PyTorch tests and python3-pip for
# the install check).
set -eu
SOTTO=$1
SRC=$2
if ! /usr/bin/python3 -c 'import pytest, numpy' 2>/dev/null; then
	echo "python_package: skipped (python3-pytest or python3-numpy missing; scripts/setup.sh installs them)"
	exit 77
fi
T=$(mktemp -d /tmp/sotto-python-XXXXXX)
trap 'rm -rf "$T"' EXIT
# Installable with pip from the repo path (from a copy: the build leaves files).
if /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
	cp -r "$SRC/python" "$T/src"
	/usr/bin/python3 -m pip install -q --no-deps --no-build-isolation --disable-pip-version-check \
		--target "$T/site" "$T/src" >"$T/pip.log" 2>&1 || { cat "$T/pip.log"; exit 1; }
	(cd "$T" && PYTHONPATH="$T/site" /usr/bin/python3 -c 'import sotto; sotto.load_export; sotto.FlatModule; sotto.Trainer; sotto.load_dataset') ||
		exit 1
	echo "python_package: pip install of python/ works"
fi
cd "$SRC/python"
SOTTO_BIN=$SOTTO PYTHONPATH="$SRC/python" /usr/bin/python3 -m pytest -q -p no:cacheprovider \
	--basetemp "$T/pytest" tests
