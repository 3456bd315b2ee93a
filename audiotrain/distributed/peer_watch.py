"""A rank whose peer failed ends, rather than wait forever in a collective that the peer left half done.

MLX's ring backend (0.32) raises in a collective that starts after a peer is gone ("[ring] connection to a
peer was lost"), but a collective in flight when the peer dies can wait forever: the ring prints "Too many
send/recv errors. Failing pending tasks..." and the ``mx.eval`` that waits for it never returns (2 of 40
tries of a 2-rank job whose rank 1 raised, on a loaded 2-core machine). ``mlx.launch`` ends the other ranks
when one fails, but ranks started another way (by hand on each machine, by a cluster's scheduler) would wait
until someone killed them.

So in a ring job (``MLX_HOSTFILE``) each rank holds one TCP connection to every other, beside the ring's
own, on the rank's address in the hostfile, and a daemon thread watches them. A rank that ends says how:
``B`` when it ends without an error of its own (finished, stopped by Ctrl-C, or an exit status it chose) and
``F`` when it failed (`failures` printed its ``audiotrain: rank N failed`` line). A connection that closes
without a word is a rank that crashed or was killed. When a peer failed, this rank ends
`PEER_FAILED_GRACE_S` later unless it has ended by then, with its own failure line: in the usual case its
next collective raises first, and its traceback says where it was. A rank that ends by itself (its script
done) after a peer failed fails too, naming the peer: the collective in flight when the peer died may have
returned this rank's own values as the job's (the ring "fails" its pending tasks, and the ``all_sum`` gives
back what this rank put in), so what it did since is not the job's result, and its exit status must not be 0.

A rank that ends while a higher rank's connection still waits to be accepted, or has its hello unread,
says its word on that connection too (a connection closed without one reads as a crash). What is left is a
connection that arrives in the microseconds between the last look at the listener and its shutting down.

Best effort: a peer that cannot be reached (a firewall that opens only the ring's ports) is not watched, and
``AUDIOTRAIN_PEER_WATCH=0`` turns the watch off for a rank.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import select
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from audiotrain._system import env_flag

#: Seconds a rank whose peer failed may go on before the watch ends it: time for its own next collective
#: to raise and report where it was, which is the usual case (well under a second).
PEER_FAILED_GRACE_S = 10.0
#: Seconds to connect to the other ranks at the start; a peer not connected by then is not watched.
CONNECT_TIMEOUT_S = 10.0
#: Seconds a connection gets to say which rank it is: a rank sends its hello as it connects.
_HELLO_TIMEOUT_S = 2.0
ENABLE_ENV = "AUDIOTRAIN_PEER_WATCH"

_BYE, _FAILED = b"B", b"F"
_TOKEN_BYTES = 16
_HELLO = struct.Struct(f"!{_TOKEN_BYTES}sI")  # the job's token, the connecting rank

_WATCH: _PeerWatch | None = None


def start(rank: int, exchange: Callable[[Any], list[Any]]) -> None:
    """Start watching the other ranks of a joined ring job; every rank must call this at the same point, as
    it calls ``exchange`` (`collectives.all_gather_object`) once, whether or not this rank watches (a rank's
    own settings must not make the ranks' collectives differ). Nothing outside a ring job."""
    global _WATCH
    if not os.environ.get("MLX_HOSTFILE"):  # not a ring job (MPI, NCCL): set alike for every rank
        return
    listener = _listen() if env_flag(ENABLE_ENV, default=True) else None
    offer = None
    if listener is not None:
        host, port = listener.getsockname()[:2]
        offer = {"host": host, "port": port, "token": secrets.token_hex(_TOKEN_BYTES)}
    offers = exchange(offer)
    tokens = [o["token"] for o in offers if o is not None]  # the job's: the lowest watching rank's
    if listener is None or len(tokens) < 2:
        if listener is not None:
            listener.close()
        return
    _WATCH = _PeerWatch(rank, bytes.fromhex(tokens[0]), listener)
    peers = {r: (o["host"], o["port"]) for r, o in enumerate(offers) if o is not None and r != rank}
    watch = threading.Thread(target=_WATCH.run, args=(peers,), name="audiotrain-peer-watch", daemon=True)
    watch.start()
    atexit.register(_at_exit)
    os.register_at_fork(after_in_child=_forget_in_child)


def _listen() -> socket.socket | None:
    """A listening socket on this rank's address in the ring's hostfile; None outside a ring job."""
    try:
        hosts = json.loads(Path(os.environ["MLX_HOSTFILE"]).read_text())
        address = hosts[int(os.environ["MLX_RANK"])][0]
        host = address.rsplit(":", 1)[0].strip("[]")
        return socket.create_server((host, 0), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
    except (KeyError, OSError, ValueError, TypeError, IndexError):
        return None


def this_rank_failed() -> None:
    """Note that this rank failed with an error of its own (`failures` calls this as it prints the rank's
    failure line): the peers hear ``F`` when it ends, not ``B``."""
    if _WATCH is not None:
        _WATCH.failed = True


def say_how_this_rank_ends() -> None:
    """Tell every watched peer that this rank is ending, and how (``B`` or ``F``); once. Called by
    `failures.exit_rank` before it ends a rank at once, and at exit."""
    if _WATCH is not None:
        _WATCH.say_goodbye()


def _at_exit() -> None:
    """This rank ends by itself (its script done, `sys.exit`): where a peer failed meanwhile, it ends as
    failed, with a line naming that peer (`_PeerWatch.end_this_rank`); else it says goodbye."""
    if _WATCH is None:
        return
    failed_peer = _WATCH.peer_that_failed()
    if failed_peer is not None and not _WATCH.failed:
        _WATCH.end_this_rank(
            failed_peer,
            f"rank {failed_peer} failed while this rank ran: a collective in flight when it did may have "
            "given this rank its own values as the job's, so its results are not the job's",
        )
    _WATCH.say_goodbye()


def _forget_in_child() -> None:
    # A forked child (a data loader's worker) must not keep the peers' connections open after this rank
    # dies, nor speak for it when it exits.
    global _WATCH
    if _WATCH is not None:
        # The child has a copy of the lock in the state it had at the fork: held, where the watch's thread
        # was hearing a peer or taking a connection then, by a thread the child does not have, so close_all
        # would wait for it for ever (a worker hung as it started). The child is alone with its copy.
        _WATCH.lock = threading.Lock()
        _WATCH.close_all()
        _WATCH = None


class _PeerWatch:
    def __init__(self, rank: int, token: bytes, listener: socket.socket) -> None:
        self.rank = rank
        self.token = token
        self.listener: socket.socket | None = listener
        self.failed = False
        self.failed_peer: int | None = None  # the first peer that failed (an error, a crash, a kill)
        self.peers: dict[int, socket.socket] = {}
        self.unheard: set[socket.socket] = set()  # accepted connections whose hello is not read yet
        self.lock = threading.Lock()
        self.said = False

    def run(self, peers: dict[int, tuple[str, int]]) -> None:
        self._connect(peers)
        failed_peer, failed_at = -1, 0.0
        while True:
            with self.lock:
                if self.said:
                    return
                watched = dict(self.peers)
            if not watched and failed_peer < 0:
                return
            wait = None if failed_peer < 0 else max(0.0, failed_at + PEER_FAILED_GRACE_S - time.monotonic())
            try:
                readable, _, _ = select.select(list(watched.values()), [], [], wait)
            except (OSError, ValueError):  # a socket closed as this rank says goodbye
                return
            for peer, conn in watched.items():
                if conn not in readable:
                    continue
                with self.lock:
                    word = self._hear(peer, conn)
                if word is not None and word != _BYE and failed_peer < 0:
                    failed_peer, failed_at = peer, time.monotonic()
            if failed_peer >= 0 and time.monotonic() >= failed_at + PEER_FAILED_GRACE_S:
                with self.lock:
                    if self.said:  # this rank is ending on its own
                        return
                self.end_this_rank(
                    failed_peer,
                    f"ended {PEER_FAILED_GRACE_S:g} s after rank {failed_peer} failed, as it may wait forever "
                    f"for rank {failed_peer} in a collective that rank left half done",
                )

    def _connect(self, peers: dict[int, tuple[str, int]]) -> None:
        """Connect to the lower ranks, then take the higher ranks' connections, for `CONNECT_TIMEOUT_S`."""
        hello = _HELLO.pack(self.token, self.rank)
        for peer in sorted(r for r in peers if r < self.rank):
            with contextlib.suppress(OSError):
                conn = socket.create_connection(peers[peer], timeout=CONNECT_TIMEOUT_S)
                conn.settimeout(None)
                self._add(peer, conn, hello)
        expected = {r for r in peers if r > self.rank}
        deadline = time.monotonic() + CONNECT_TIMEOUT_S
        with self.lock:
            # Under `lock`: a goodbye said meanwhile (the rank's script done as its watch starts) closes the
            # listener in `close_all`, and setblocking on it closed raised EBADF, ending this thread with a
            # traceback ("Exception in thread audiotrain-peer-watch") on the rank's stderr.
            listener = self.listener
            if listener is not None:
                listener.setblocking(False)  # (accepted under `lock`, once select sees a connection waiting)
        while expected and listener is not None and time.monotonic() < deadline:
            try:
                select.select([listener], [], [], max(0.01, deadline - time.monotonic()))
            except (OSError, ValueError):  # (closed as this rank says goodbye)
                break
            with self.lock:
                if self.said:
                    break
                try:
                    conn, _ = listener.accept()
                except OSError:  # (none waiting after all)
                    continue
                # Taken and noted at once: a goodbye said from now on tells it the word; one said before
                # found it still in the listener (were this thread to take it, then stall until this rank's
                # process ended, it would close without a word, which reads as a crash).
                # Its hello's timeout set before a goodbye can see it: set after, it replaced the goodbye's
                # non-blocking mode, and the goodbye's read of the hello could wait for it.
                conn.settimeout(_HELLO_TIMEOUT_S)  # (a stranger that says too little waits no longer)
                self.unheard.add(conn)
            try:
                said = _read_exactly(conn, _HELLO.size)
            except OSError:
                said = b""
            token, peer = _HELLO.unpack(said) if len(said) == _HELLO.size else (b"", -1)
            with self.lock:
                self.unheard.discard(conn)
                if self.said:  # (say_goodbye told it the word, and closed it)
                    continue
                if token != self.token or peer not in expected:  # not a rank of this job
                    conn.close()
                    continue
                conn.settimeout(None)
                expected.discard(peer)
                self.peers[peer] = conn
        with self.lock:
            if self.listener is not None:
                self.listener.close()
                self.listener = None

    def _add(self, peer: int, conn: socket.socket, hello: bytes) -> None:
        """Watch a connection this rank made to a lower `peer`, saying `hello` on it: both at once under
        `lock`, so that a goodbye said meanwhile reaches the peer, which reads the hello and watches."""
        with self.lock:
            if self._tell_if_said(conn):
                return
            try:
                conn.sendall(hello)  # (a few bytes on a new connection: it does not wait)
            except OSError:
                conn.close()
                return
            self.peers[peer] = conn

    def _tell_if_said(self, conn: socket.socket) -> bool:
        """Where this rank said goodbye already, tell `conn` the word the others heard (not a close without
        one, which reads as a crash) and close it. Call it with `lock` held."""
        if not self.said:
            return False
        with contextlib.suppress(OSError):
            conn.sendall(self._word())
        conn.close()
        return True

    def _word(self) -> bytes:
        """How this rank ends, as its peers hear it."""
        return _FAILED if self.failed else _BYE

    def peer_that_failed(self) -> int | None:
        """The first peer heard to fail, looking once more (without waiting) at the peers still watched: a
        failed peer's word can arrive just before this rank ends, before the watch's thread has read it."""
        with self.lock:
            if self.failed_peer is None and not self.said and self.peers:
                with contextlib.suppress(OSError, ValueError):
                    readable, _, _ = select.select(list(self.peers.values()), [], [], 0)
                    for peer, conn in sorted(self.peers.items()):
                        if conn in readable:
                            self._hear(peer, conn)
            return self.failed_peer

    def _hear(self, peer: int, conn: socket.socket) -> bytes | None:
        """Read the word of a `peer` whose connection is readable, and stop watching it; a word other than
        ``B`` (``F``, or a close without a word) makes it the failed peer, if none failed before. None where
        the word was read already (by the watch's thread or at exit: each reads under `lock`). Call it with
        `lock` held; it does not wait."""
        if self.peers.get(peer) is not conn:
            return None
        try:
            word = conn.recv(1, socket.MSG_DONTWAIT)
        except BlockingIOError:  # (nothing to read after all)
            return None
        except OSError:
            word = b""
        del self.peers[peer]
        conn.close()
        if word != _BYE and self.failed_peer is None:
            self.failed_peer = peer
        return word

    def say_goodbye(self) -> None:
        with self.lock:
            if self.said:
                return
            self.said = True
            word = self._word()
            # The higher ranks still connecting hear it too: those whose hello is not read yet, and those
            # waiting to be accepted, whose connection closing with the listener would read as a crash.
            connecting = [*self.unheard, *self._waiting_to_be_accepted()]
            if self.listener is not None:
                # Closing the listener alone leaves it listening while the watch's thread waits on it in
                # select (that holds the socket open): a higher rank could still connect, and the connection
                # be reset as this process ends. Shut down, it refuses them, which leaves them unwatched.
                with contextlib.suppress(OSError):
                    self.listener.shutdown(socket.SHUT_RDWR)
            self.unheard.clear()
            for conn in [*self.peers.values(), *connecting]:
                with contextlib.suppress(OSError):
                    conn.sendall(word)
        for conn in connecting:
            # Read what it said (its hello) first: closing a connection with bytes unread resets it, and a
            # reset may reach the peer's program before the word does.
            with contextlib.suppress(OSError):
                # Not blocking: a socket with a timeout (the hello's 2 s, set by the watch's thread) waits
                # for it before reading, MSG_DONTWAIT or not, which held this rank's exit 2 s.
                conn.setblocking(False)
                conn.recv(_HELLO.size, socket.MSG_DONTWAIT)
            conn.close()
        self.close_all()

    def _waiting_to_be_accepted(self) -> list[socket.socket]:
        """The connections the listener holds, not yet accepted (the watch's thread may be slow to take
        them on a loaded machine); none once it is closed. Call it with `lock` held."""
        waiting: list[socket.socket] = []
        if self.listener is None:
            return waiting
        with contextlib.suppress(OSError):
            self.listener.setblocking(False)  # (where the watch's thread has not set it so yet)
            while True:
                conn, _ = self.listener.accept()  # (BlockingIOError, an OSError, when none is left)
                conn.setblocking(True)
                waiting.append(conn)
        return waiting

    def close_all(self) -> None:
        with self.lock:
            conns = [*self.peers.values(), *self.unheard]
            if self.listener is not None:
                conns.append(self.listener)
            self.peers.clear()
            self.unheard.clear()
            self.listener = None
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.close()

    def end_this_rank(self, failed_peer: int, why: str) -> None:
        """End this rank at once (status 1) with ``audiotrain: rank N failed: <why> (look for ...)``."""
        from audiotrain.distributed.failures import FAILED_TAG

        self.failed = True
        self.say_goodbye()  # the peers still watched hear that this rank failed too
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        line = f"{FAILED_TAG} {self.rank} failed: {why} (look for rank {failed_peer}'s message)\n"
        with contextlib.suppress(OSError):
            os.write(2, line.encode())
        os._exit(1)


def _read_exactly(conn: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = conn.recv(size - len(data))
        if not chunk:
            break
        data += chunk
    return data
