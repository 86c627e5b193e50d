#!/bin/sh
# operator_mistakes.sh: the operator mistakes of issue 17, item 5, each
# diagnosed by name instead of silently: FIFOs given as the config, the key
# file or a dataset are refused at once (never waited on); a symlinked key
# file (a Kubernetes secret) is accepted when its target is safe and
# refused, saying why, when it is not; imported and split data are written
# 0600 whatever the umask; subcommand help goes to stdout and exits 0, an
# unknown one exits non-zero; a truncated dataset, a CNN on tabular data,
# a test set of another shape, MetricsListen on Listen's port and a Listen
# address the host does not have are refused by check and run alike.
set -eu
SOTTO=$1
SRC=$2
T=$(mktemp -d /tmp/sotto-mistakes-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# A command that must finish within 10 s (a FIFO must never block it).
bounded() { timeout 10 "$@"; }

# --- help -----------------------------------------------------------------
for c in keygen pubkey check run status init train data; do
	out=$("$SOTTO" "$c" --help) || fail "sotto $c --help exited $?"
	echo "$out" | grep -q "^usage: sotto $c" || fail "sotto $c --help printed: $out"
	[ "$("$SOTTO" help "$c")" = "$out" ] || fail "sotto help $c differs from --help"
	[ "$("$SOTTO" "$c" -h)" = "$out" ] || fail "sotto $c -h differs from --help"
done
"$SOTTO" help | grep -q "^usage: sotto COMMAND" || fail "sotto help"
if "$SOTTO" help frob >"$T/out" 2>"$T/err"; then fail "sotto help frob exited 0"; fi
[ ! -s "$T/out" ] || fail "sotto help frob wrote to stdout"
grep -q "no command 'frob'" "$T/err" || fail "sotto help frob: $(cat "$T/err")"
if "$SOTTO" frob >/dev/null 2>&1; then fail "sotto frob exited 0"; fi

# --- a valid site to break -------------------------------------------------
printf 'x1,x2,y\n0,1,0\n1,0,1\n2,2,1\n1,1,0\n' >"$T/a.csv"
(umask 022 && "$SOTTO" data import-csv "$T/a.csv" "$T/a.sdat" --header >/dev/null) ||
	fail "import-csv"
[ "$(stat -c %a "$T/a.sdat")" = 600 ] || fail "import-csv wrote mode $(stat -c %a "$T/a.sdat")"
(umask 000 && "$SOTTO" data split "$T/a.sdat" "$T/sh" --nodes 2 --seed 1 >/dev/null) ||
	fail "split"
for f in "$T"/sh-*.sdat.gz; do
	[ "$(stat -c %a "$f")" = 600 ] || fail "split wrote $f mode $(stat -c %a "$f")"
done
"$SOTTO" keygen "$T/site.key"
"$SOTTO" keygen "$T/p1.key"
"$SOTTO" keygen "$T/p2.key"
p1=$("$SOTTO" pubkey <"$T/p1.key")
p2=$("$SOTTO" pubkey <"$T/p2.key")
site() { # site KEYFILE DATASET
	cat <<CONF
[Node]
Name = site
PrivateKeyFile = $1
Listen = 127.0.0.1:7990
DataDir = $T/data
[Model]
Type = logreg
[Training]
Dataset = $2
[Gossip]
GroupSize = 3
[Peer]
Name = p1
PublicKey = $p1
Endpoint = 127.0.0.1:7991
[Peer]
Name = p2
PublicKey = $p2
Endpoint = 127.0.0.1:7992
CONF
}
site "$T/site.key" "$T/a.sdat" >"$T/ok.conf"
out=$(bounded "$SOTTO" check -c "$T/ok.conf" 2>&1) || fail "valid site: $out"

# --- FIFOs: refused at once, by name --------------------------------------
mkfifo "$T/fifo.conf" "$T/fifo.key" "$T/fifo.sdat"
status=0
bounded "$SOTTO" check -c "$T/fifo.conf" 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "check on a FIFO config: status $status (124: it blocked)"
grep -q "not a regular file" "$T/err" || fail "FIFO config: $(cat "$T/err")"
status=0
bounded "$SOTTO" run -c "$T/fifo.conf" 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "run on a FIFO config: status $status"
site "$T/fifo.key" "$T/a.sdat" >"$T/k.conf"
status=0
bounded "$SOTTO" check -c "$T/k.conf" 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "check with a FIFO key: status $status"
grep -q "PrivateKeyFile is not a regular file" "$T/err" || fail "FIFO key: $(cat "$T/err")"
site "$T/site.key" "$T/fifo.sdat" >"$T/d.conf"
status=0
bounded "$SOTTO" check -c "$T/d.conf" 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "check with a FIFO dataset: status $status"
grep -q "Dataset is not a regular file" "$T/err" || fail "FIFO dataset: $(cat "$T/err")"
status=0
bounded "$SOTTO" data info "$T/fifo.sdat" 2>"$T/err" || status=$?
[ "$status" = 1 ] || fail "data info on a FIFO: status $status"
grep -q "not a regular file" "$T/err" || fail "data info FIFO: $(cat "$T/err")"

# --- symlinked key files ---------------------------------------------------
# A Kubernetes secret: DIR/key -> ..data/key -> the real 0600 file.
mkdir -p "$T/secret/..2026" && cp "$T/site.key" "$T/secret/..2026/key"
chmod 600 "$T/secret/..2026/key"
ln -s ..2026 "$T/secret/..data" && ln -s ..data/key "$T/secret/key"
site "$T/secret/key" "$T/a.sdat" >"$T/link.conf"
out=$(bounded "$SOTTO" check -c "$T/link.conf" 2>&1) || fail "symlinked key refused: $out"
# The target readable by others: refused, saying why.
chmod 644 "$T/secret/..2026/key"
status=0
bounded "$SOTTO" check -c "$T/link.conf" 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "symlink to a 0644 key: status $status"
grep -q "accessible by group or others" "$T/err" || fail "symlink 0644: $(cat "$T/err")"
# A target owned by another user (only testable as root).
if [ "$(id -u)" = 0 ]; then
	chmod 600 "$T/secret/..2026/key"
	chown 65534 "$T/secret/..2026/key"
	status=0
	bounded "$SOTTO" check -c "$T/link.conf" 2>"$T/err" || status=$?
	[ "$status" = 2 ] || fail "key owned by nobody: status $status"
	grep -q "owned by another user" "$T/err" || fail "key owner: $(cat "$T/err")"
fi

# --- what run would refuse, check refuses too (and run the same way) ------
# check_both NAME CONF MESSAGE: check and run both exit 2 saying MESSAGE.
check_both() {
	for cmd in check run; do
		status=0
		bounded "$SOTTO" "$cmd" -c "$2" >/dev/null 2>"$T/err" || status=$?
		[ "$status" = 2 ] || fail "$1: $cmd exited $status: $(cat "$T/err")"
		grep -q "$3" "$T/err" || fail "$1: $cmd said: $(cat "$T/err")"
	done
}
head -c 60 "$T/a.sdat" >"$T/trunc.sdat"
site "$T/site.key" "$T/trunc.sdat" >"$T/trunc.conf"
check_both "truncated dataset" "$T/trunc.conf" "Dataset does not load"
site "$T/site.key" "$T/a.sdat" | sed 's/^Type = logreg/Type = cnn/' >"$T/cnn.conf"
check_both "cnn on tabular data" "$T/cnn.conf" "\[Model\] does not fit Dataset (2 features, not images"
printf 'x1,x2,x3,y\n0,1,2,0\n1,0,2,1\n' >"$T/b.csv"
"$SOTTO" data import-csv "$T/b.csv" "$T/b.sdat" --header >/dev/null || fail "import b"
site "$T/site.key" "$T/a.sdat" | sed "/^Dataset/a TestSet = $T/b.sdat" >"$T/test.conf"
check_both "test set of another shape" "$T/test.conf" "TestSet has 3 features and 2 classes, Dataset 2 and 2"
# A CSV where a sotto dataset belongs.
site "$T/site.key" "$T/a.csv" >"$T/csv.conf"
check_both "a CSV as Dataset" "$T/csv.conf" "Dataset does not load"
site "$T/site.key" "$T/a.sdat" | sed "/^Dataset/a TestSet = $T/a.csv" >"$T/csvtest.conf"
check_both "a CSV as TestSet" "$T/csvtest.conf" "TestSet does not load"
# A test set standardised with its own statistics (imported without --stats).
printf 'x1,x2,y\n5,1,0\n1,9,1\n2,2,1\n' >"$T/t.csv"
"$SOTTO" data import-csv "$T/t.csv" "$T/t-own.sdat" --header >/dev/null 2>"$T/err" || fail "import t"
grep -q "standardised with .*own mean and deviation.*--stats" "$T/err" ||
	fail "no note about --stats: $(cat "$T/err")"
"$SOTTO" data import-csv "$T/t.csv" "$T/t-ok.sdat" --header --stats "$T/a.sdat" >/dev/null 2>"$T/err" ||
	fail "import t --stats"
[ ! -s "$T/err" ] || fail "a note although --stats was given: $(cat "$T/err")"
site "$T/site.key" "$T/a.sdat" | sed "/^Dataset/a TestSet = $T/t-own.sdat" >"$T/own.conf"
check_both "test set with its own statistics" "$T/own.conf" "TestSet was standardised with other statistics than Dataset"
site "$T/site.key" "$T/a.sdat" | sed "/^Dataset/a TestSet = $T/t-ok.sdat" >"$T/ok.conf"
"$SOTTO" check -c "$T/ok.conf" >/dev/null 2>"$T/err" || fail "test set with --stats: $(cat "$T/err")"

# --- the CSV importer: unknown options, a header, column numbers ---------------
status=0
"$SOTTO" data import-csv "$T/a.csv" "$T/x.sdat" --header --standardize >/dev/null 2>"$T/err" || status=$?
[ "$status" = 2 ] || fail "--standardize: exit $status"
grep -q "unknown option --standardize" "$T/err" || fail "--standardize: $(cat "$T/err")"
[ ! -e "$T/x.sdat" ] || fail "--standardize: a file was written"
status=0
"$SOTTO" data split "$T/a.sdat" "$T/x" --nodes 2 --headers >/dev/null 2>"$T/err" || status=$?
[ "$status" = 2 ] && grep -q "unknown option --headers" "$T/err" || fail "split --headers: $status"
if "$SOTTO" data import-csv "$T/a.csv" "$T/x.sdat" >/dev/null 2>"$T/err"; then
	fail "a header row was taken for data"
fi
grep -q "a.csv:1: column 0 is not a number (looks like a header: pass --header)" "$T/err" ||
	fail "no header hint: $(cat "$T/err")"
printf 'x1,x2,y\n0,abc,1\n' >"$T/c.csv"
if "$SOTTO" data import-csv "$T/c.csv" "$T/x.sdat" --header >/dev/null 2>"$T/err"; then
	fail "a text value was imported"
fi
grep -q "c.csv:2: column 1 is not a number$" "$T/err" || fail "column numbers: $(cat "$T/err")"
site "$T/site.key" "$T/a.sdat" | sed "/^DataDir/a MetricsListen = 127.0.0.1:7990" >"$T/metrics.conf"
check_both "MetricsListen = Listen" "$T/metrics.conf" "MetricsListen is the same port as Listen"
site "$T/site.key" "$T/a.sdat" | sed "s/^Listen = .*/Listen = 203.0.113.9:7990/" >"$T/addr.conf"
check_both "an address the host does not have" "$T/addr.conf" "Listen's address is not one of this host's"
echo "ok: operator mistakes diagnosed"
