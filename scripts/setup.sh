#!/bin/sh
# setup.sh: install the Debian packages sotto needs to build, test and demo.
#
# Idempotent: asks dpkg which packages are already present and only calls
# apt-get for the missing ones, so a second run does nothing and needs no
# network. Not a general provisioning tool: it knows this project's list.
set -eu

PKGS="build-essential cmake pkg-config clang clang-format libclang-rt-14-dev
libsodium-dev libnng-dev libmsgpack-dev libev-dev libinih-dev
libopenblas-dev libcmocka-dev libsystemd-dev zlib1g-dev python3 python3-nacl python3-msgpack
python3-numpy python3-pytest python3-torch python3-pip python3-wheel gnuplot-nox iproute2 procps dpkg-dev systemd passwd adduser"

missing=""
for p in $PKGS; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
		missing="$missing $p"
	fi
done

if [ -z "$missing" ]; then
	echo "setup: all build packages present"
	exit 0
fi

echo "setup: installing:$missing"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "setup: done"
