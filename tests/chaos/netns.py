"""netns.py: a private switched network of Linux network namespaces, and partitions of it.

What it is: a hub namespace holding two bridges (side A and side B) and one
namespace per node, each joined to the hub by a veth pair whose node end
is `eth0` with an address from 10.213.0.0/24 (a private range that exists
only inside these namespaces: the host's own interfaces, routes and
firewall are never touched). Every hub-side veth starts on bridge A, so all
nodes see each other. partition(group) moves the veths of `group` to
bridge B, so the two sides cannot reach each other but each side still
reaches itself; heal() moves them back. Nodes are started with
`ip netns exec NS sotto run ...`; their control sockets are path-based Unix
sockets and stay reachable from the host namespace.

Names carry the harness's pid (chx<pid>-...), and cleanup() deletes
every namespace this object made; stale_cleanup() removes namespaces of
earlier harness runs whose process no longer exists (only names of this
exact pattern).

What it is not: traffic shaping (delay, loss: SOTTO_TEST_FAULT does that
inside the node). Needs root and iproute2; available() says whether this
process may create namespaces.
"""

import os
import re
import subprocess

SUBNET = "10.213.0"
RE_OURS = re.compile(r"^chx(\d+)-")


def _ip(*args, check=True):
    p = subprocess.run(["ip"] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30)
    if check and p.returncode != 0:
        raise RuntimeError("ip %s: %s" % (" ".join(args), p.stdout.decode(errors="replace").strip()))
    return p.stdout.decode(errors="replace")


def available():
    """(True, "") if namespaces can be made here, else (False, why)."""
    if os.geteuid() != 0:
        return False, "not running as root"
    try:
        _ip("-V")
    except (OSError, RuntimeError) as e:
        return False, "iproute2 not usable: %s" % e
    probe = "chx%d-probe" % os.getpid()
    try:
        _ip("netns", "add", probe)
    except RuntimeError as e:
        return False, "cannot create a network namespace: %s" % e
    finally:
        _ip("netns", "del", probe, check=False)
    return True, ""


def stale_cleanup():
    """Deletes namespaces left by earlier harness runs that no longer exist."""
    out = _ip("netns", "list", check=False)
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = RE_OURS.match(name)
        if m and not os.path.exists("/proc/%s" % m.group(1)):
            _ip("netns", "del", name, check=False)


class Net:
    def __init__(self, n):
        self.n = n
        self.tag = "chx%d" % os.getpid()
        self.hub = self.tag + "-hub"
        self.ns = ["%s-n%d" % (self.tag, i) for i in range(n)]
        self.created = []
        self.side_b = set()

    def addr(self, i):
        return "%s.%d" % (SUBNET, i + 1)

    def hub_if(self, i):
        return "h%d-%d" % (os.getpid() % 100000, i)  # <= 15 characters

    def setup(self):
        _ip("netns", "add", self.hub)
        self.created.append(self.hub)
        for br in ("bra", "brb"):
            _ip("-n", self.hub, "link", "add", br, "type", "bridge")
            _ip("-n", self.hub, "link", "set", br, "up")
        _ip("-n", self.hub, "link", "set", "lo", "up")
        for i in range(self.n):
            ns = self.ns[i]
            _ip("netns", "add", ns)
            self.created.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            # Made in the node's namespace, then one end moved to the hub.
            _ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", self.hub_if(i))
            _ip("-n", ns, "link", "set", self.hub_if(i), "netns", self.hub)
            _ip("-n", ns, "addr", "add", self.addr(i) + "/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", self.hub, "link", "set", self.hub_if(i), "master", "bra")
            _ip("-n", self.hub, "link", "set", self.hub_if(i), "up")

    def partition(self, group):
        """Nodes in `group` move to bridge B: cut off from the others, not from each other."""
        for i in group:
            _ip("-n", self.hub, "link", "set", self.hub_if(i), "master", "brb")
            self.side_b.add(i)

    def heal(self):
        for i in sorted(self.side_b):
            _ip("-n", self.hub, "link", "set", self.hub_if(i), "master", "bra")
        self.side_b.clear()

    def cleanup(self):
        for ns in reversed(self.created):
            _ip("netns", "del", ns, check=False)
        self.created = []
