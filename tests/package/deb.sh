#!/bin/sh
# deb.sh: the Debian package. cpack makes sotto_VERSION_ARCH.deb with its
# Depends from the shared libraries; dpkg installs it into a fresh root
# (dpkg --root, maintainer scripts chrootless with DPKG_ROOT), where the
# scripts create the sotto user and /etc/sotto, /var/lib/sotto (0700, owned
# by it); the packaged binary answers --version and `check`s the packaged
# example; the unit passes `systemd-analyze verify` and scores "OK" or
# better in `systemd-analyze security`; an upgrade keeps the operator's
# config, a removal too, and only a purge deletes it and the user.
#
#   sh tests/package/deb.sh BUILD_DIR SOURCE_DIR     (as root: dpkg --root)
set -eu
B=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-deb-XXXXXX)
trap 'rm -rf "$T"' EXIT INT TERM
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ "$(id -u)" -ne 0 ]; then
	echo "deb: SKIPPED: installing into a root with dpkg --root needs root"
	exit 0
fi
for tool in cpack dpkg dpkg-deb dpkg-shlibdeps systemd-analyze useradd; do
	command -v "$tool" >/dev/null 2>&1 || fail "$tool is missing (scripts/setup.sh installs it)"
done

cpack --config "$B/CPackConfig.cmake" -B "$T/out" >"$T/cpack.log" 2>&1 ||
	{ cat "$T/cpack.log" >&2; fail "cpack"; }
ver=$(sed -n 's/^project(sotto VERSION \([0-9.]*\).*/\1/p' "$SRC/CMakeLists.txt")
deb="$T/out/sotto_${ver}_$(dpkg --print-architecture).deb"
[ -f "$deb" ] || fail "no $deb: $(ls "$T/out")"
deps=$(dpkg-deb -f "$deb" Depends)
for p in adduser libc6 libsodium23 libnng1 libmsgpackc2 libev4 libinih1 libopenblas0 libsystemd0; do
	echo "$deps" | grep -q "$p" || fail "Depends lacks $p: $deps"
done

# A fresh root: a dpkg database and the accounts Debian starts with.
R="$T/root"
mkdir -p "$R/var/lib/dpkg/info" "$R/var/lib/dpkg/updates" "$R/etc"
: >"$R/var/lib/dpkg/status"
grep '^root:' /etc/passwd >"$R/etc/passwd"
grep '^root:' /etc/group >"$R/etc/group"
grep '^root:' /etc/shadow >"$R/etc/shadow"
grep '^root:' /etc/gshadow >"$R/etc/gshadow"
chmod 0640 "$R/etc/shadow" "$R/etc/gshadow"
dpkgr() { dpkg --root="$R" --force-script-chrootless --force-depends "$@" >>"$T/dpkg.log" 2>&1 ||
	{ cat "$T/dpkg.log" >&2; fail "dpkg $*"; }; }
dpkgr -i "$deb"

"$R/usr/bin/sotto" --version | grep -qx "sotto $ver" || fail "sotto --version"
uid=$(awk -F: '$1 == "sotto" { print $3 }' "$R/etc/passwd")
[ -n "$uid" ] || fail "no sotto user"
for d in etc/sotto var/lib/sotto; do
	[ "$(stat -c '%a %u' "$R/$d")" = "700 $uid" ] || fail "/$d is $(stat -c '%a %u' "$R/$d")"
done
for f in usr/share/man/man8/sotto.8 usr/share/man/man5/sotto.conf.5 \
	usr/share/doc/sotto/examples/example.conf usr/lib/systemd/system/sotto@.service \
	usr/share/sotto/data/mnist-train.sdat.gz usr/share/doc/sotto/security.md; do
	[ -f "$R/$f" ] || fail "/$f not installed"
done

# The packaged example, its paths moved into the root, checks clean.
sed -e "s|/etc/sotto|$R/etc/sotto|" -e "s|/usr/share/sotto|$R/usr/share/sotto|" \
	-e "s|/var/lib/sotto|$R/var/lib/sotto|" "$R/usr/share/doc/sotto/examples/example.conf" \
	>"$R/etc/sotto/site-a.conf"
"$R/usr/bin/sotto" keygen "$R/etc/sotto/site-a.key" >/dev/null 2>&1 || fail "keygen"
"$R/usr/bin/sotto" check -c "$R/etc/sotto/site-a.conf" | grep -q "configuration OK" ||
	fail "check of the packaged example"

# The unit (its binary path moved into the root too).
sed "s|/usr/bin/sotto|$R/usr/bin/sotto|g" "$R/usr/lib/systemd/system/sotto@.service" \
	>"$T/sotto@.service"
systemd-analyze verify --man=no "$T/sotto@.service" || fail "systemd-analyze verify"
score=$(systemd-analyze security --offline=true "$T/sotto@.service" 2>/dev/null |
	sed -n 's/.*Overall exposure level for .*: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p')
case "$score" in
*" OK" | *" SAFE") ;;
*) fail "systemd-analyze security: '$score'" ;;
esac

# Upgrade (the same package again) and removal keep the operator's files.
dpkgr -i "$deb"
if [ ! -f "$R/etc/sotto/site-a.conf" ] || [ ! -f "$R/etc/sotto/site-a.key" ]; then
	fail "upgrade lost the config"
fi
dpkgr -r sotto
[ ! -e "$R/usr/bin/sotto" ] || fail "removal left the binary"
[ -f "$R/etc/sotto/site-a.conf" ] || fail "removal deleted the config"
mkdir -p "$R/etc/systemd/system/multi-user.target.wants"
ln -s /usr/lib/systemd/system/sotto@.service \
	"$R/etc/systemd/system/multi-user.target.wants/sotto@site-a.service"
dpkgr -P sotto
[ ! -L "$R/etc/systemd/system/multi-user.target.wants/sotto@site-a.service" ] ||
	fail "purge left an enabled instance's link"
if [ -e "$R/etc/sotto" ] || [ -e "$R/var/lib/sotto" ]; then
	fail "purge left /etc/sotto or /var/lib/sotto"
fi
! grep -q '^sotto:' "$R/etc/passwd" || fail "purge left the sotto user"
echo "deb: $(basename "$deb"), Depends from the libraries, fresh-root install, check, unit verify, security $score, upgrade, remove, purge: OK"
