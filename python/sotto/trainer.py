"""Attach a training loop of your own to a sotto node ([Model] Type = external).

The node runs the secure rounds; this process trains. It connects to the
node's trainer socket (DataDir/trainer.sock, which only the node's user can
reach), declares its parameter layout, and then, every time you call
``sync``, pushes its current parameters and adds in the results of the
rounds the node completed since (as deltas, so the steps you took meanwhile
are kept)::

    import sotto
    trainer = sotto.Trainer("site.conf", rows=len(train_set))
    for step, (x, y) in enumerate(loader):
        ...                                   # forward, backward, optimizer.step()
        if step % 50 == 0:
            trainer.sync(model, epochs=epoch)
    trainer.sync(model, done=True)            # training over: the node only averages

or in the background (a thread syncs every ``every`` seconds; hold
``trainer.lock`` around each optimizer step so a result is never added in the
middle of one)::

    trainer.start(model, every=1.0)
    for x, y in loader:
        with trainer.lock:
            optimizer.zero_grad(); loss_fn(model(x), y).backward(); optimizer.step()
    trainer.stop(done=True)

``model`` is a torch ``nn.Module`` (flattened once with ``FlatModule``: its
parameters and floating buffers, BatchNorm statistics included, become views
into one float32 vector, so nothing is copied twice) or a ``FlatModule``, or
a 1-D float32 numpy array together with ``layout=[(name, shape), ...]``.

Wire format (docs/external.md): 4-byte big-endian length, then one msgpack
map; float32 values little endian. Pure Python on python3-msgpack and numpy.
"""
import os
import re
import select
import socket
import struct
import sys
import threading
import time

import msgpack
import numpy as np

PROTOCOL = 1


class TrainerError(RuntimeError):
    """The node refused something (the message says what), or went away."""


def _node_key(config, key):
    """A [Node] path of a sotto config file (relative to the file's directory), or None."""
    section = None
    found = None
    with open(config, encoding="utf-8") as f:
        for line in f:
            s = line.strip()
            if not s or s[0] in "#;":
                continue
            if s.startswith("[") and s.endswith("]"):
                section = s[1:-1].strip()
                continue
            if section == "Node" and "=" in s:
                k, v = s.split("=", 1)
                if k.strip() == key:
                    found = re.split(r"\s[;#]", v, maxsplit=1)[0].strip()
    if found and not os.path.isabs(found):
        found = os.path.join(os.path.dirname(os.path.abspath(config)), found)
    return found


def data_dir(config):
    """[Node] DataDir of a sotto config file (relative to the file's directory)."""
    found = _node_key(config, "DataDir")
    if not found:
        raise TrainerError("%s has no [Node] DataDir" % config)
    return found


def node_status(control_socket, timeout=5.0):
    """`sotto status` of a running node, as a dict of its "key value" lines."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(control_socket)
        s.sendall(b"status\n")
        chunks = []
        while True:
            b = s.recv(65536)
            if not b:
                break
            chunks.append(b)
    finally:
        s.close()
    out = {}
    for line in b"".join(chunks).decode("utf-8", "replace").splitlines():
        k, _, v = line.partition(" ")
        out[k] = v
    return out


def _bin_header(n):
    if n < 1 << 8:
        return b"\xc4" + struct.pack(">B", n)
    if n < 1 << 16:
        return b"\xc5" + struct.pack(">H", n)
    return b"\xc6" + struct.pack(">I", n)


class _Vector:
    """The flat float32 vector a trainer syncs, whatever the model is."""

    def __init__(self, model, layout):
        self.flat = None
        if isinstance(model, np.ndarray):
            if layout is None:
                raise TypeError("a numpy vector needs layout=[(name, shape), ...]")
            if model.dtype != np.float32 or model.ndim != 1 or not model.flags.c_contiguous:
                raise TypeError("the vector must be 1-D, contiguous float32")
            self.np = model
            self.layout = [(str(n), tuple(int(d) for d in s)) for n, s in layout]
            if sum(int(np.prod(s, dtype=np.int64)) for _, s in self.layout) != model.size:
                raise ValueError("layout does not add up to the vector's %d values" % model.size)
            return
        from .torchflat import FlatModule

        self.flat = model if isinstance(model, FlatModule) else FlatModule(model)
        self.np = self.flat.numpy()
        self.layout = self.flat.layout

    def _variances(self):
        """Slices of variance buffers (BatchNorm's running_var): never below 0."""
        out, off = [], 0
        for name, shape in self.layout:
            n = int(np.prod(shape, dtype=np.int64))
            if name.endswith("running_var"):
                out.append(slice(off, off + n))
            off += n
        return out

    def add(self, delta):
        # In place: a torch module's tensors are views into this very array.
        np.add(self.np, delta, out=self.np)
        # A delta is the group's average minus what this site pushed. A running
        # variance that fell since that push (it does, early in training) can
        # then go below zero, and BatchNorm would turn it into NaN: keep it at
        # zero or above (the group's average of variances is itself >= 0).
        if not hasattr(self, "var_slices"):
            self.var_slices = self._variances()
        for s in self.var_slices:
            np.maximum(self.np[s], 0.0, out=self.np[s])

    def load(self, values):
        self.np[...] = values


class Trainer:
    """A training process attached to one sotto node (see the module's doc)."""

    def __init__(self, config=None, rows=1000, socket_path=None, timeout=30.0):
        """config: the node's config file (its DataDir holds the sockets);
        rows: this site's number of training rows, its weight in the averages
        (sites that give none weigh alike); timeout: seconds to wait for the
        node (it may still be starting) and for each answer."""
        self.control_socket = None
        if config is not None:
            self.control_socket = (_node_key(config, "ControlSocket") or
                                   os.path.join(data_dir(config), "control.sock"))
        if socket_path is None:
            if config is None:
                raise TypeError("give the node's config file or socket_path")
            socket_path = os.path.join(data_dir(config), "trainer.sock")
        if int(rows) < 1 or int(rows) >= 1 << 32:
            raise ValueError("rows: the number of training rows at this site (its weight), "
                             "1..2^32-1")
        self.socket_path = socket_path
        self.rows = int(rows)
        self.timeout = timeout
        self.sock = None
        self.vec = None
        self.applied = 0          # the last result seq added into the model
        self.results = 0          # results added since attaching
        self.finished = False     # the node said training is over (it settled)
        self.welcome = None       # the node's welcome: n_params, layout hash, node, rounds
        self.last = None          # the node's last averaged model (numpy), if it had one
        self.bytes_out = 0
        self.bytes_in = 0
        self.lock = threading.RLock()
        self._thread = None
        self._stop = threading.Event()
        self._epochs = 0.0

    # --- connection -------------------------------------------------------------

    def attach(self, model, layout=None, resume=False):
        """Connects and declares the layout; blocks until the node's welcome.

        resume=True loads the node's last averaged model into the model (a
        trainer restarted without a checkpoint of its own then starts from
        the group's model instead of from scratch).
        """
        if self.sock is not None:
            return self
        if self.vec is None or getattr(self, "_model", None) is not model:
            self.vec = _Vector(model, layout)  # once per model: its tensors then view the vector
        # The node may still be starting: try for up to `timeout` seconds.
        deadline = time.monotonic() + self.timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(self.timeout)
            try:
                s.connect(self.socket_path)
                break
            except (FileNotFoundError, ConnectionRefusedError) as e:
                s.close()
                if time.monotonic() >= deadline:
                    raise TrainerError("cannot reach the node's trainer socket %s: %s (is `sotto "
                                       "run` running with [Model] Type = external?)"
                                       % (self.socket_path, e))
                time.sleep(0.2)
            except OSError as e:
                s.close()
                raise TrainerError("cannot reach the node's trainer socket %s: %s"
                                   % (self.socket_path, e))
        self.sock = s
        self._model, self._layout = model, layout
        try:
            self._send(msgpack.packb({
                "t": "hello", "v": PROTOCOL,
                "layout": [[name, list(shape)] for name, shape in self.vec.layout],
                "dtype": "float32", "rows": self.rows}))
            msg = self._recv()
        except Exception:
            self.close()  # refused (the reason is in the error): no half-attached socket
            raise
        if msg.get("t") != "welcome":
            self.close()
            raise TrainerError("the node answered %r instead of a welcome" % msg.get("t"))
        self.welcome = {k: v for k, v in msg.items() if k != "last"}
        if msg.get("last") is not None:
            self.last = np.frombuffer(msg["last"], dtype="<f4").astype(np.float32)
            if resume:
                self.vec.load(self.last)
        self.applied = 0
        return self

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
        self.close()

    # --- the loop -----------------------------------------------------------------

    def sync(self, model=None, epochs=None, done=False, accuracy=None, loss=None):
        """Adds in the results that arrived, then pushes the parameters.

        epochs: how much this site has trained (for `sotto status`); done:
        training is over at this site; accuracy and loss: a test evaluation
        to show in `sotto status` (both or neither). Returns how many
        results were added.
        """
        with self.lock:
            if self.sock is None:
                if model is None:
                    model = getattr(self, "_model", None)  # attach again after a node restart
                if model is None:
                    raise TrainerError("the first sync needs the model")
                self.attach(model, layout=getattr(self, "_layout", None))
            if epochs is not None:
                self._epochs = float(epochs)
            got = self._drain(0.0)
            fields = {"t": "params", "applied": self.applied, "epochs": self._epochs,
                      "done": bool(done)}
            if (accuracy is None) != (loss is None):
                raise ValueError("accuracy and loss go together")
            if accuracy is not None:
                fields["accuracy"] = float(accuracy)
                fields["loss"] = float(loss)
            head = bytearray()
            head += msgpack.packb(fields)
            # The map grows by one key, "x", whose bytes are sent from the vector itself.
            head = self._map_plus_one(head)
            head += msgpack.packb("x")
            n = self.vec.np.nbytes
            head += _bin_header(n)
            self._send_parts(head, memoryview(self.vec.np.view(np.uint8)))
            return got

    def status(self):
        """The node's `sotto status` as a dict (needs the config file)."""
        if self.control_socket is None:
            raise TrainerError("status needs the node's config file")
        return node_status(self.control_socket)

    def settle(self, model=None, timeout=60.0, linger=5.0):
        """After training (sync(done=True)): keeps adding the rounds' results in
        until the node reports the group agreed (phase "done": the last
        results moved the model by less than 1e-3) or timeout seconds pass,
        then stays linger seconds more, so that a site still settling finds
        peers for its rounds. Returns the phase reached."""
        end = time.monotonic() + timeout
        phase = "?"
        while time.monotonic() < end:
            self.wait_result(timeout=0.5)
            self.sync(model, done=True)
            phase = self.status().get("phase", "?")
            if phase == "done":
                end = min(end, time.monotonic() + linger)
        return phase

    def wait_result(self, timeout=None):
        """Blocks until a result arrives (or timeout): adds it in. True if one came."""
        with self.lock:
            return self._drain(self.timeout if timeout is None else timeout, stop_after=1) > 0

    def start(self, model, every=1.0, layout=None):
        """Syncs from a background thread every `every` seconds (see trainer.lock)."""
        with self.lock:
            self.attach(model, layout=layout)
        self._stop.clear()

        def run():
            # A refused push or a node restart does not end the thread: it
            # reports the error (trainer.error, and once on stderr) and the
            # next sync attaches again if the node went away.
            while not self._stop.wait(every):
                try:
                    self.sync()
                except (TrainerError, OSError) as e:
                    if self.error is None or str(e) != str(self.error):
                        sys.stderr.write("sotto.Trainer: %s\n" % e)
                    self.error = e

        self.error = None
        self._thread = threading.Thread(target=run, name="sotto-trainer", daemon=True)
        self._thread.start()
        return self

    def stop(self, done=False):
        """Stops the background thread; with done, tells the node training is over."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        if done and self.sock is not None:
            self.sync(done=True)

    # --- frames ---------------------------------------------------------------------

    @staticmethod
    def _map_plus_one(packed):
        b = packed[0]
        if 0x80 <= b <= 0x8e:
            packed[0] = b + 1
            return packed
        raise AssertionError("a params map has fewer than 15 keys")

    def _send(self, body):
        self._send_parts(body)

    def _send_parts(self, *parts):
        n = sum(len(p) for p in parts)
        try:
            self.sock.sendall(struct.pack(">I", n))
            for p in parts:
                self.sock.sendall(p)
        except OSError as e:
            self.close()
            raise TrainerError("the node went away: %s" % e)
        self.bytes_out += 4 + n

    def _recv_exact(self, n):
        buf = bytearray(n)
        view = memoryview(buf)
        got = 0
        while got < n:
            k = self.sock.recv_into(view[got:])
            if k == 0:
                self.close()
                raise TrainerError("the node closed the trainer socket")
            got += k
        return buf

    def _recv(self):
        (n,) = struct.unpack(">I", self._recv_exact(4))
        body = self._recv_exact(n)
        self.bytes_in += 4 + n
        msg = msgpack.unpackb(bytes(body), raw=False)
        if not isinstance(msg, dict):
            raise TrainerError("a frame from the node is not a map")
        if msg.get("t") == "error":
            raise TrainerError("the node refused: %s" % msg.get("msg"))
        return msg

    def _drain(self, timeout, stop_after=None):
        got = 0
        while self.sock is not None:
            r, _, _ = select.select([self.sock], [], [], timeout)
            if not r:
                break
            msg = self._recv()
            t = msg.get("t")
            if t == "result":
                delta = np.frombuffer(msg["delta"], dtype="<f4")
                self.vec.add(delta)
                self.applied = int(msg["seq"])
                self.results += 1
                got += 1
            elif t == "finish":
                self.finished = True
            if stop_after is not None and got >= stop_after:
                break
            timeout = 0.0
        return got
