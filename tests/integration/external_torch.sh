#!/bin/sh
# external_torch.sh: real PyTorch trainers attached to real nodes
# ([Model] Type = external). Runs the example (examples/pytorch/run_cnn.sh,
# four sites, a CNN with BatchNorm of the example's own definition, 5
# epochs) with the nodes keeping verification records, and passes when:
#   - every round any node applied verifies exactly: every member applied
#     the same sum of exactly the inputs counted (tests/chaos/verify.py);
#   - every trainer's node reaches phase "done" and the four final models
#     are within 1e-3 of each other (relative L2: the node's consensus rule);
#   - the mean test accuracy through sotto beats each site alone on the
#     same steps by at least 3 points.
# Skipped (77) without python3-torch (scripts/setup.sh installs it).
set -eu
SOTTO=$1
SRC=$2
if [ -n "${SOTTO_SANITIZED:-}" ]; then
	# Accuracy and exact sums are the plain run's; under the sanitizers the
	# trainer socket is exercised by python_package (tests/test_trainer.py).
	echo "external_torch: skipped under the sanitizers (the plain run has it)"
	exit 77
fi
if ! /usr/bin/python3 -c 'import torch, msgpack, numpy' 2>/dev/null; then
	echo "external_torch: skipped (python3-torch, -msgpack or -numpy missing)"
	exit 77
fi
T=$(mktemp -d /tmp/sotto-ext-XXXXXX)
trap 'rm -rf "$T"' EXIT
SOTTO_TEST_VERIFY=1 SOTTO="$SOTTO" sh "$SRC/examples/pytorch/run_cnn.sh" -e 5 -u -o "$T" |
	tee "$T/out.txt"
/usr/bin/python3 "$SRC/tests/chaos/verify.py" "$T"/sites/*/state
/usr/bin/python3 - "$T" <<'PY'
import json, sys
t = sys.argv[1]
g = [json.load(open("%s/gossip-%d.json" % (t, i))) for i in range(4)]
a = [json.load(open("%s/alone-%d.json" % (t, i))) for i in range(4)]
import numpy as np
v = [np.load("%s/gossip-%d.npy" % (t, i)).astype(np.float64) for i in range(4)]
spread = max(np.linalg.norm(v[i] - v[0]) / np.linalg.norm(v[0]) for i in range(4))
assert all(x["results"] > 0 for x in g), "a trainer got no result"
# The node's own consensus rule: its last results moved it by < 1e-3 (phase done).
assert spread < 1e-3, "the trainers' final models differ by %.3g (relative L2)" % spread
mg = sum(x["accuracy"] for x in g) / 4
ma = sum(x["accuracy"] for x in a) / 4
print("external_torch: %d-%d results per trainer, final models within %.2g of each other "
      "(phases %s); mean accuracy %.2f%% through sotto, %.2f%% alone" % (
          min(x["results"] for x in g), max(x["results"] for x in g), spread,
          [x["phase"] for x in g], 100 * mg, 100 * ma))
assert mg > ma + 0.03, "gossip does not beat local-only by 3 points"
PY
