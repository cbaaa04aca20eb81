"""The harness of the Python interop suite: build the ecb binary, run a real
`ecb demo` on random ports, log users in through the reference backend, and
connect Debian's python3-socketio client (the official Python Socket.IO
client, python-socketio >= 5: Socket.IO protocol v5 over Engine.IO v4).

Only the standard library besides socketio (which brings engineio, and uses
requests for long-polling and websocket-client for WebSocket).
"""

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request
from importlib.metadata import version

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
TIMEOUT = 15  # seconds any one step may take

try:
    import socketio  # noqa: F401  (Debian: python3-socketio)
    import requests  # noqa: F401  (python3-requests: long-polling)
    import websocket  # noqa: F401  (python3-websocket: WebSocket)

    MISSING = None
except ImportError as e:  # reported by the test module: a skip, or under CI a failure
    socketio = None
    MISSING = e


def client_versions():
    """The installed python-socketio and python-engineio versions."""
    return version("python-socketio"), version("python-engineio")


def major(v):
    return int(v.split(".")[0])


class Demo:
    """One `ecb demo` process on random loopback ports, with its data in a
    temporary directory."""

    READY = re.compile(r"ECB client API:\s+(http://\S+)")
    BACKEND = re.compile(r"reference backend:\s+(http://\S+)")

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="ecb-interop-python-")
        self.bin = os.path.join(self.tmp, "ecb")
        self.proc = None
        self.url = ""
        self.backend = ""
        self.output = []

    def start(self):
        subprocess.run(["go", "build", "-o", self.bin, "./cmd/ecb"], cwd=REPO, check=True)
        self.proc = subprocess.Popen(
            [self.bin, "demo", "--data", os.path.join(self.tmp, "data"),
             "--listen", "127.0.0.1:0", "--backend-listen", "127.0.0.1:0"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        lines = queue.Queue()

        def read():  # owns the pipe until the process ends
            for line in self.proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        deadline = time.monotonic() + 60
        while not (self.url and self.backend):
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0.01))
            except queue.Empty:
                raise RuntimeError("ecb demo not ready after 60s:\n" + "".join(self.output))
            if line is None:
                raise RuntimeError("ecb demo exited before it was ready:\n" + "".join(self.output))
            self.output.append(line)
            if m := self.READY.search(line):
                self.url = m.group(1)
            if m := self.BACKEND.search(line):
                self.backend = m.group(1)
        return self

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def access_token(self, user):
        """Logs user in at the reference backend (POST /login; the demo's
        passwords are the user names) and returns the access token."""
        req = urllib.request.Request(
            self.backend + "/login", method="POST",
            data=json.dumps({"username": user, "password": user}).encode(),
            headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
            return json.load(resp)["accessToken"]


class Peer:
    """One python-socketio client with the events it received in a queue."""

    PUSHES = ("session", "message", "thread", "presence", "closing")

    def __init__(self, transports):
        self.sio = socketio.Client(reconnection=False)
        self.transports = transports
        self.events = queue.Queue()
        self.disconnected = threading.Event()
        self.connect_error = None
        self.refused = threading.Event()
        for name in self.PUSHES:
            self.sio.on(name, self._keep(name))
        self.sio.on("disconnect", lambda: self.disconnected.set())
        self.sio.on("connect_error", self._refused)

    def _keep(self, name):
        return lambda data=None: self.events.put((name, data))

    def _refused(self, data=None):
        self.connect_error = data
        self.refused.set()

    def connect(self, url, auth):
        self.sio.connect(url, auth=auth, transports=self.transports, wait_timeout=TIMEOUT)
        return self

    def refusal(self, url, auth):
        """Connects without waiting for the namespace (python-socketio 5.7
        would wait out wait_timeout on a refusal) and returns the
        connect_error payload once it arrives."""
        self.sio.connect(url, auth=auth, transports=self.transports, wait=False)
        if not self.refused.wait(TIMEOUT):
            raise AssertionError(f"no connect_error within {TIMEOUT}s")
        return self.connect_error

    def next_event(self, name):
        """The next event called name; other events before it are dropped."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"no {name} event within {TIMEOUT}s")
            try:
                got, data = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if got == name:
                return data

    def call(self, event, payload):
        """Emits event with an ack and returns the envelope's data; an error
        envelope fails the test."""
        res = self.sio.call(event, payload, timeout=TIMEOUT)
        if not isinstance(res, dict) or ("data" in res) == ("error" in res):
            raise AssertionError(f"{event}: not an envelope: {res!r}")
        if "error" in res:
            raise AssertionError(f"{event}: {res['error']}")
        return res["data"]

    def close(self):
        if self.sio.connected:
            self.sio.disconnect()
