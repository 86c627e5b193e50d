"""cluster.py: a cluster of real `sotto run` processes for the chaos harness.

What it is: setting up shards, keys and configs with the sotto CLI itself
(`sotto data split`, `sotto init`), starting, killing, stopping and
restarting node processes, asking them for their status over the control
socket, sampling their resident memory, and cutting their logs into one
piece per process lifetime ("incarnation").

What it is not: the chaos schedule (chaos.py), the checks of the
verification files (verify.py), bad peers (badpeer.py) or network
namespaces (netns.py). Standard library only; run by /usr/bin/python3.
"""

import ctypes
import os
import re
import signal
import socket
import subprocess
import time

# Logged by `sotto run` (node/daemon.c); the harness keys on these.
RE_RESUMED = re.compile(r"resumed from (\S+): (\d+) rounds, ([0-9.]+) epochs")
RE_NEW_MODEL = re.compile(r"new model: ")
RE_TEST_KILL = re.compile(r"TEST: SIGKILL at (\w+)")
RE_TEST_MODE = re.compile(r"TEST MODE")
RE_ROUND_DONE = re.compile(r"round=([0-9a-f]{16}) round done in")
RE_ROUND_STARTED = re.compile(r"round=([0-9a-f]{16}) round started as initiator")
RE_ROUND_ABORTED = re.compile(r"round=([0-9a-f]{16}) round aborted \(([^)]*)\)")
RE_SANITIZER = re.compile(r"(ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|"
                          r"SUMMARY: UndefinedBehaviorSanitizer|Assertion .* failed|"
                          r"SOTTO_ASSERT|assertion failed)")
MARK = "=== chaos: "

PHASES = ("invited", "keys", "shares", "masked", "split", "unmask", "initiated", "splitting",
          "collect", "result", "apply", "checkpoint", "parts", "partsum")


def now():
    return time.monotonic()


def status_query(sock_path, timeout=5.0, cmd="status"):
    """Asks a node's control socket (one line in, the answer until EOF).

    Returns the answer as a dict of "key value" lines plus a 'peers' list,
    or None when the node does not answer within timeout (dead or stopped).
    """
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    deadline = now() + timeout
    data = b""
    try:
        s.connect(sock_path)
        s.sendall(cmd.encode() + b"\n")
        while True:
            left = deadline - now()
            if left <= 0:
                return None
            s.settimeout(left)
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
            if len(data) > (1 << 20):
                return None
    except OSError:
        return None
    finally:
        s.close()
    return parse_status(data.decode("utf-8", "replace"))


def parse_status(text):
    st = {"peers": []}
    for line in text.splitlines():
        parts = line.split(None, 1)
        if not parts:
            continue
        if parts[0] == "peer":
            st["peers"].append(parts[1] if len(parts) > 1 else "")
            continue
        st[parts[0]] = parts[1] if len(parts) > 1 else ""
    return st


def st_num(st, key, default=None):
    """A numeric status field, or default when missing or '-'."""
    if st is None or key not in st:
        return default
    try:
        return float(st[key])
    except ValueError:
        return default


def rss_kib(pid):
    """VmRSS of a process in KiB, or None."""
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


_PR_SET_PDEATHSIG = 1


def _die_with_parent():
    """In the child before exec: SIGKILL when the harness dies (even by SIGKILL, e.g. a
    ctest timeout), so no node outlives it. Kept across exec (also by `ip netns exec`)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def binary_has_asan(path):
    """True if the sotto binary was built with AddressSanitizer."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return False
    return b"__asan_init" in data or b"AddressSanitizer" in data


class Incarnation:
    """One process lifetime of a node."""

    def __init__(self, node, popen, env_extra, had_checkpoint, log_start):
        self.node = node
        self.popen = popen
        self.pid = popen.pid
        self.env_extra = dict(env_extra)
        self.had_checkpoint = had_checkpoint
        self.log_start = log_start  # byte offset of this incarnation in the node's log
        self.log_end = None
        self.started = now()
        self.ended = None
        self.returncode = None
        self.killed_by_harness = None  # "kill9" or "term" when we sent it
        self.stopped = False  # SIGSTOPped by the harness right now
        self.rss = []  # (t, KiB)
        self._resumed = None  # (rounds, epochs) from the "resumed from" line, once seen
        self._resumed_looked = 0

    def resumed(self):
        """(rounds, epochs) this process logged on resuming, or None (not yet, or fresh)."""
        if self._resumed is None and self._resumed_looked < 20:
            self._resumed_looked += 1
            try:
                with open(self.node.log_path, "rb") as f:
                    f.seek(self.log_start)
                    head = f.read(16384).decode("utf-8", "replace")
            except OSError:
                head = ""
            m = RE_RESUMED.search(head)
            if m:
                self._resumed = (int(m.group(2)), float(m.group(3)))
        return self._resumed

    @property
    def alive(self):
        return self.ended is None

    @property
    def armed_phases(self):
        v = self.env_extra.get("SOTTO_TEST_KILL_AT", "")
        return [p for p in v.split(",") if p]


class Node:
    def __init__(self, cluster, index, name, site_dir, conf, data_dir, netns=None):
        self.cluster = cluster
        self.index = index
        self.name = name
        self.site_dir = site_dir
        self.conf = conf
        self.data_dir = data_dir
        self.log_path = os.path.join(cluster.workdir, "node-%s.log" % name)
        self.netns = netns
        self.env = {}  # extra environment for every incarnation
        self.incarnations = []
        self.key_hex = None

    @property
    def cur(self):
        return self.incarnations[-1] if self.incarnations else None

    @property
    def alive(self):
        return self.cur is not None and self.cur.alive

    @property
    def control_socket(self):
        return os.path.join(self.data_dir, "control.sock")

    def log_mark(self, text):
        with open(self.log_path, "a") as f:
            f.write("%s%s\n" % (MARK, text))

    def start(self, env_extra=None):
        assert not self.alive, "node %s already running" % self.name
        env = dict(os.environ)
        env.update(self.env)
        extra = dict(env_extra or {})
        env.update(extra)
        had_ckpt = os.path.exists(os.path.join(self.data_dir, "checkpoint"))
        desc = " ".join("%s=%s" % kv for kv in sorted(extra.items()))
        self.log_mark("start #%d%s%s" % (len(self.incarnations), " " if desc else "", desc))
        start_off = os.path.getsize(self.log_path)
        argv = [self.cluster.run_binary, "run", "-c", os.path.basename(self.conf)]
        if self.netns:
            argv = ["ip", "netns", "exec", self.netns] + argv
        logf = open(self.log_path, "ab")
        try:
            p = subprocess.Popen(argv, cwd=self.site_dir, env=env, stdin=subprocess.DEVNULL,
                                 stdout=logf, stderr=subprocess.STDOUT, start_new_session=True,
                                 preexec_fn=_die_with_parent)
        finally:
            logf.close()
        inc = Incarnation(self, p, {**self.env, **extra}, had_ckpt, start_off)
        self.incarnations.append(inc)
        return inc

    def reap(self):
        """Notices the end of the current incarnation; returns it if it just ended."""
        inc = self.cur
        if inc is None or not inc.alive:
            return None
        rc = inc.popen.poll()
        if rc is None:
            return None
        inc.ended = now()
        inc.returncode = rc
        inc.log_end = os.path.getsize(self.log_path)
        self.log_mark("exit #%d status %s%s" % (len(self.incarnations) - 1, rc,
                                                " (%s by the harness)" % inc.killed_by_harness
                                                if inc.killed_by_harness else ""))
        return inc

    def signal(self, sig):
        inc = self.cur
        if inc is None or not inc.alive:
            return False
        try:
            os.kill(inc.pid, sig)
        except ProcessLookupError:
            return False
        return True

    def kill9(self):
        inc = self.cur
        if inc is None or not inc.alive:
            return False
        if inc.stopped:
            inc.stopped = False
        inc.killed_by_harness = "kill9"
        return self.signal(signal.SIGKILL)

    def stop(self):
        if self.cur is None or not self.alive:
            return False
        if self.signal(signal.SIGSTOP):
            self.cur.stopped = True
            return True
        return False

    def cont(self):
        if self.cur is None:
            return False
        self.cur.stopped = False
        return self.signal(signal.SIGCONT)

    def terminate(self, timeout=30.0):
        """SIGTERM and wait; returns the exit status or None if it hung."""
        inc = self.cur
        if inc is None or not inc.alive:
            return inc.returncode if inc else None
        inc.killed_by_harness = inc.killed_by_harness or "term"
        self.cont()
        self.signal(signal.SIGTERM)
        try:
            inc.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
        self.reap()
        return inc.returncode

    def reload(self, timeout=10.0):
        """`sotto reload -c CONF`: (exit status, answer); (None, why) if it did not answer."""
        try:
            p = subprocess.run([self.cluster.sotto, "reload", "-c", self.conf],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None, "timed out"
        return p.returncode, p.stdout.decode(errors="replace")

    def status(self, timeout=5.0):
        return status_query(self.control_socket, timeout)

    def dump_stacks(self, why):
        """Appends the stacks of a hung process's threads to its log (gdb if present,
        else the kernel's view from /proc), so a hang can be diagnosed afterwards."""
        inc = self.cur
        if inc is None or not inc.alive:
            return
        lines = ["%sstacks of pid %d (%s)" % (MARK, inc.pid, why)]
        try:
            p = subprocess.run(["gdb", "-p", str(inc.pid), "-batch", "-nx", "-ex",
                                "thread apply all bt"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=60)
            lines.append(p.stdout.decode("utf-8", "replace"))
        except (OSError, subprocess.TimeoutExpired):
            task = "/proc/%d/task" % inc.pid
            try:
                for tid in sorted(os.listdir(task)):
                    for f in ("comm", "wchan", "syscall"):
                        try:
                            with open(os.path.join(task, tid, f)) as fh:
                                lines.append("%s %s: %s" % (tid, f, fh.read().strip()))
                        except OSError:
                            pass
            except OSError:
                pass
        with open(self.log_path, "a") as f:
            f.write("\n".join(lines) + "\n")

    def log_text(self, inc=None):
        try:
            with open(self.log_path, "rb") as f:
                if inc is not None:
                    f.seek(inc.log_start)
                    end = inc.log_end if inc.log_end is not None else None
                    data = f.read() if end is None else f.read(end - inc.log_start)
                else:
                    data = f.read()
        except OSError:
            return ""
        return data.decode("utf-8", "replace")

    def log_tail(self, n=15):
        lines = self.log_text().splitlines()
        return "\n".join(lines[-n:])


ALL_CLUSTERS = []  # every Cluster made, so the harness can kill what is left at exit


class Cluster:
    """N sites made with `sotto init`, run as real processes.

    transport: "ipc" (Unix sockets under workdir) or "tcp" (addresses from
    `addrs`, a list of (host, port) per site, or 127.0.0.1 and free ports).
    """

    def __init__(self, sotto, src, workdir, n, template, transport="ipc", addrs=None,
                 shard_seed=11, alpha=0.5, extra_sites=0, netns=None, run_binary=None):
        self.sotto = sotto
        # What `run` executes: the same binary, possibly a copy under another name
        # (see chaos.py: stray `pkill sotto` on shared machines).
        self.run_binary = run_binary or sotto
        self.src = src
        self.workdir = workdir
        self.n = n
        self.template = template
        self.transport = transport
        self.addrs = addrs
        self.shard_seed = shard_seed
        self.alpha = alpha
        self.extra_sites = extra_sites  # sites made with keys but left out of the others' configs
        self.netns = netns or [None] * (n + extra_sites)
        self.nodes = []
        self.outsiders = []
        ALL_CLUSTERS.append(self)

    def run_cli(self, *args, cwd=None):
        p = subprocess.run([self.sotto] + list(args), cwd=cwd or self.workdir,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        if p.returncode != 0:
            raise RuntimeError("sotto %s failed (%d):\n%s" % (" ".join(args), p.returncode,
                                                              p.stdout.decode(errors="replace")))
        return p.stdout.decode(errors="replace")

    def endpoint(self, i):
        if self.transport == "ipc":
            return "ipc://%s/s%d.sock" % (self.workdir, i)
        host, port = self.addrs[i]
        return "%s:%d" % (host, port)

    def setup(self):
        os.makedirs(self.workdir, exist_ok=True)
        total = self.n + self.extra_sites
        self.run_cli("data", "split", os.path.join(self.src, "data", "mnist-train.sdat.gz"),
                     "shard", "--nodes", str(total), "--mode", "dirichlet", "--alpha",
                     str(self.alpha), "--seed", str(self.shard_seed))
        tpl = os.path.join(self.workdir, "template.ini")
        with open(tpl, "w") as f:
            f.write(self.template)
        sites = ["%d=%s" % (i, self.endpoint(i)) for i in range(total)]
        self.run_cli("init", "-o", "sites", "-t", tpl, *sites)
        names = [str(i) for i in range(total)]
        for i, name in enumerate(names):
            site = os.path.join(self.workdir, "sites", name)
            conf = os.path.join(site, name + ".conf")
            node = Node(self, i, name, site, conf, os.path.join(site, "state"),
                        self.netns[i] if i < len(self.netns) else None)
            (self.nodes if i < self.n else self.outsiders).append(node)
        # Outsiders know the cluster, the cluster does not know them.
        for i in range(self.n, total):
            for node in self.nodes:
                self.drop_peer(node.conf, str(i))

    @staticmethod
    def drop_peer(conf, name):
        """Removes the [Peer] section named `name` from a config file."""
        with open(conf) as f:
            text = f.read()
        parts = re.split(r"(?m)^(?=\[)", text)
        keep = [p for p in parts
                if not (p.startswith("[Peer]") and re.search(r"(?m)^Name = %s$" % re.escape(name), p))]
        tmp = conf + ".new"  # a node (re)starting or reloading never reads half a file
        with open(tmp, "w") as f:
            f.write("".join(keep))
        os.replace(tmp, conf)

    @staticmethod
    def set_peer_endpoint(conf, name, endpoint):
        """Points the [Peer] `name` of a config at another endpoint (a proxy)."""
        with open(conf) as f:
            text = f.read()
        parts = re.split(r"(?m)^(?=\[)", text)
        for j, p in enumerate(parts):
            if p.startswith("[Peer]") and re.search(r"(?m)^Name = %s$" % re.escape(name), p):
                parts[j] = re.sub(r"(?m)^Endpoint = .*$", "Endpoint = " + endpoint, p)
        with open(conf, "w") as f:
            f.write("".join(parts))

    @staticmethod
    def take_peer(conf, name):
        """Removes the [Peer] `name` from a config file; returns its section text."""
        with open(conf) as f:
            text = f.read()
        parts = re.split(r"(?m)^(?=\[)", text)
        took = [p for p in parts
                if p.startswith("[Peer]") and re.search(r"(?m)^Name = %s$" % re.escape(name), p)]
        Cluster.drop_peer(conf, name)
        return "".join(took)

    @staticmethod
    def put_peer(conf, section):
        """Appends a [Peer] section (from take_peer) to a config file, atomically."""
        with open(conf) as f:
            text = f.read()
        if not text.endswith("\n"):
            text += "\n"
        tmp = conf + ".new"
        with open(tmp, "w") as f:
            f.write(text + section)
        os.replace(tmp, conf)

    def all_nodes(self):
        return self.nodes + self.outsiders

    def reap_all(self):
        ended = []
        for node in self.all_nodes():
            inc = node.reap()
            if inc is not None:
                ended.append(inc)
        return ended

    def sample_rss(self):
        t = now()
        for node in self.all_nodes():
            inc = node.cur
            if inc is not None and inc.alive:
                r = rss_kib(inc.pid)
                if r is not None:
                    inc.rss.append((t, r))

    def statuses(self, timeout=5.0):
        return [node.status(timeout) if node.alive else None for node in self.nodes]

    def stop_all(self, timeout=30.0):
        """SIGTERM every live process; returns the nodes that did not exit (hung)."""
        hung = []
        for node in self.all_nodes():
            if node.alive:
                node.cont()
                node.cur.killed_by_harness = node.cur.killed_by_harness or "term"
                node.signal(signal.SIGTERM)
        deadline = now() + timeout
        for node in self.all_nodes():
            inc = node.cur
            if inc is None or not inc.alive:
                continue
            try:
                inc.popen.wait(max(0.1, deadline - now()))
            except subprocess.TimeoutExpired:
                hung.append(node)
                node.dump_stacks("did not exit within %.0f s of SIGTERM" % timeout)
                node.signal(signal.SIGKILL)
                try:
                    inc.popen.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            node.reap()
        return hung

    def kill_all(self):
        """Last-resort cleanup: SIGKILL whatever is still running (our own processes only)."""
        for node in self.all_nodes():
            inc = node.cur
            if inc is not None and inc.alive:
                try:
                    os.kill(inc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                try:
                    inc.popen.wait(10)
                except subprocess.TimeoutExpired:
                    pass
                node.reap()


def free_tcp_ports(count, host="127.0.0.1"):
    """Ports free just now, drawn from 20000-32767: below Linux's ephemeral range
    (32768 and up), where the kernel hands ports to outgoing connections (NNG's
    dialers among them) that could take a listener's port before it binds."""
    import random
    socks, ports = [], []
    rng = random.Random(os.getpid() ^ int(time.time() * 1000))
    try:
        while len(ports) < count:
            port = rng.randrange(20000, 32768)
            if port in ports:
                continue
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                s.bind((host, port))
            except OSError:
                s.close()
                continue
            socks.append(s)
            ports.append(port)
    finally:
        for s in socks:
            s.close()
    return ports
