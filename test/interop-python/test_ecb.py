"""ECB against Debian's python3-socketio, the official Python Socket.IO
client: WebSocket only, long-polling only, and polling upgraded to WebSocket.

Run with Debian's interpreter (the package installs there, not into pyenv):

    /usr/bin/python3 -m unittest -v test_ecb     (in this directory)

Without python3-socketio the suite is skipped, except under CI=true, where
a missing package fails it.
"""

import os
import unittest
import uuid

import harness
from harness import Demo, Peer

demo = None


def setUpModule():
    global demo
    if harness.MISSING is not None:
        msg = (f"python3-socketio is missing ({harness.MISSING}): "
               "apt-get install python3-socketio python3-requests python3-websocket, "
               "and run with /usr/bin/python3")
        if os.environ.get("CI") == "true":
            raise RuntimeError(msg)
        raise unittest.SkipTest(msg)
    demo = Demo().start()


def tearDownModule():
    if demo is not None:
        demo.stop()


class ClientVersion(unittest.TestCase):
    def test_speaks_socketio_v5_over_engineio_v4(self):
        # python-socketio 5.x speaks the Socket.IO protocol v5 and
        # python-engineio 4.x Engine.IO v4: the protocols ECB serves.
        sio, eio = harness.client_versions()
        self.assertGreaterEqual(harness.major(sio), 5, f"python-socketio {sio}")
        self.assertGreaterEqual(harness.major(eio), 4, f"python-engineio {eio}")


class Exchange:
    """The same conversation on each set of transports (a mixin: the
    subclasses say which)."""

    transports = None
    want_transport = None

    def peer(self, user):
        p = Peer(self.transports)
        self.addCleanup(p.close)
        p.connect(demo.url, {"accessToken": demo.access_token(user)})
        self.assertEqual(p.sio.transport(), self.want_transport)
        return p

    def test_session_threads_and_a_message_each_way(self):
        alice = self.peer("alice")
        session = alice.next_event("session")
        self.assertEqual(session["user"]["id"], "alice")
        self.assertTrue(session["userToken"])
        bob = self.peer("bob")
        self.assertEqual(bob.next_event("session")["user"]["id"], "bob")

        subject = "python " + uuid.uuid4().hex[:8]
        created = alice.call("createThread", {
            "participants": ["bob"], "subject": subject,
            "message": {"body": "hello from python", "clientMessageId": uuid.uuid4().hex}})
        thread_id = created["thread"]["id"]
        self.assertEqual(bob.next_event("thread")["threadId"], thread_id)

        threads = bob.call("getThreads", {"pageSize": 100})
        mine = [it for it in threads["items"] if it["thread"]["id"] == thread_id]
        self.assertEqual(len(mine), 1, threads)
        got = bob.call("getThread", {"threadToken": mine[0]["threadToken"]})  # bob listens now
        self.assertEqual([m["body"] for m in got["messages"]], ["hello from python"])

        sent = alice.call("sendMessage", {"threadToken": created["threadToken"], "body": "ping"})
        self.assertEqual(sent["message"]["body"], "ping")
        push = bob.next_event("message")
        self.assertEqual((push["threadId"], push["message"]["id"], push["message"]["body"]),
                         (thread_id, sent["message"]["id"], "ping"))
        self.assertEqual(push["offset"], got["offset"] + 1)

        # The creator's socket listens to the thread it created.
        reply = bob.call("sendMessage", {"threadToken": got["threadToken"], "body": "pong"})
        push = alice.next_event("message")
        self.assertEqual((push["message"]["id"], push["message"]["authorId"]), (reply["message"]["id"], "bob"))

        bob.sio.disconnect()
        self.assertTrue(bob.disconnected.wait(harness.TIMEOUT))
        self.assertFalse(bob.sio.connected)

    def test_refused_handshake_carries_the_code(self):
        p = Peer(self.transports)
        self.addCleanup(p.close)
        # python-socketio hands connect_error the whole CONNECT_ERROR
        # payload, {message, data}: data is ECB's {code, message}.
        err = p.refusal(demo.url, {"accessToken": "not-a-valid-access-token"})
        self.assertIsInstance(err, dict, err)
        self.assertEqual(err.get("data", {}).get("code"), "unauthenticated", err)
        self.assertTrue(err.get("message"), err)
        self.assertNotIn("/", p.sio.namespaces)  # never connected


class WebSocketOnly(Exchange, unittest.TestCase):
    transports = ["websocket"]
    want_transport = "websocket"


class PollingOnly(Exchange, unittest.TestCase):
    transports = ["polling"]
    want_transport = "polling"


class PollingWithUpgrade(Exchange, unittest.TestCase):
    transports = ["polling", "websocket"]
    want_transport = "websocket"  # the client upgrades as soon as it is connected


if __name__ == "__main__":
    unittest.main()
