"""A rank of a ring job whose peer failed ends with a message naming that peer, instead of waiting forever
in a collective the peer left half done; a peer that ended without an error of its own (finished, stopped,
an exit status it chose) does not end the others. Ranks started by hand, as a cluster's scheduler would,
with no launcher to end them."""

import json
import os
import signal
import socket
import sys
import threading
import time

import pytest
from distributed import describe, run_ranks

from tests import deadlines

# Tests that start 2-rank jobs, or whose threads must meet in a short time, are marked serial: with -n,
# no other test runs beside them (tests/conftest.py). The rest watch socket pairs in this process.

# Rank 0 (`WAITING`) stands for a rank stuck in MLX: its main thread blocks in one call, as in an `mx.eval`
# that waits for a peer that died mid-collective. The grace is cut to 0.5 s so the tests stay short. A rank
# that must outlast the watch's grace waits from its peer's end (`after_the_peer_ends`), not from the start:
# a fixed time cost every test its whole length, and under load could run out before the peer even ended.
PREAMBLE = """
import os, sys, time
import audiotrain
from audiotrain.distributed import collectives, exit_rank, peer_watch
peer_watch.PEER_FAILED_GRACE_S = 0.5

def after_the_peer_ends(seconds):
    deadline = time.monotonic() + 30
    while not os.path.exists("ending") and time.monotonic() < deadline:
        time.sleep(0.01)
    return seconds

collectives.group()
rank = collectives.rank()
WAITING = 0  # the rank that waits; the other one ends as the test says
if rank == WAITING:
    time.sleep(STUCK)
    print(f"rank {rank} went on")
    sys.exit(0)
time.sleep(0.5)  # (the waiting rank is in its sleep)
open("ending", "w").close()  # (what the waiting rank's `after_the_peer_ends` waits for)
"""


@pytest.mark.serial
def test_only_the_ranks_of_this_job_are_watched(monkeypatch):
    from audiotrain.distributed import peer_watch

    # The stranger that says too little (the HTTP request) is waited for until this timeout, 2 s by default:
    # a shorter one still shows the watch taking rank 1's hello after it.
    monkeypatch.setattr(peer_watch, "_HELLO_TIMEOUT_S", 0.5)
    listener = socket.create_server(("127.0.0.1", 0))
    token = b"t" * 16
    watch = peer_watch._PeerWatch(0, token, listener)
    address = listener.getsockname()

    def connect(said: bytes):
        conn = socket.create_connection(address)
        conn.sendall(said)
        return conn

    def knock():  # other programs on the machine (one that only looks for open ports), then rank 1
        held.append(connect(b"GET / HTTP/1.1\r\n\r\n"))
        connect(b"").close()  # (a port scanner: connects and closes without a word)
        held.append(connect(peer_watch._HELLO.pack(b"x" * 16, 1)))  # another job's rank 1
        held.append(connect(peer_watch._HELLO.pack(token, 1)))

    held: list = []
    knocking = threading.Thread(target=knock)
    knocking.start()
    connecting = threading.Thread(target=watch._connect, args=({1: address},), daemon=True)
    connecting.start()
    connecting.join(timeout=60)  # (a guard: a stranger must not keep the watch from starting)
    deadlines.join(knocking, "the strangers' connections to the watch", 60)
    assert not connecting.is_alive(), "the watch still connecting: a stranger kept it from starting"
    assert list(watch.peers) == [1]
    # The rank that knew the job's token, not the other job's rank 1 that came first: its end (a peer's
    # failure or its goodbye) is the one watched.
    assert watch.peers[1].getpeername() == held[2].getsockname()
    assert watch.listener is None  # no longer listening
    watch.close_all()
    for conn in held:
        conn.close()


# The watch of one rank without a job: its peers are socket pairs, and its thread (`_PeerWatch.run`, given no
# address to connect to) runs in the test's process, where ending the rank is only recorded.
def _watch(monkeypatch, rank: int, words: dict) -> tuple:
    """A watch of rank `rank`, its record of `end_this_rank`'s calls, and the peers' ends of `words`: each
    peer says its word (``B``, ``F``) and closes, closes without a word (``b""``: a crash), or runs on
    (None)."""
    from audiotrain.distributed import peer_watch

    watch = peer_watch._PeerWatch(rank, b"t" * 16, None)
    ended: list[tuple[int, str]] = []

    def end_this_rank(failed_peer, why):  # as the real one, but the process goes on
        ended.append((failed_peer, why))
        watch.failed = True
        watch.say_goodbye()

    monkeypatch.setattr(watch, "end_this_rank", end_this_rank)
    ends = {}
    for peer, word in words.items():
        watch.peers[peer], ends[peer] = socket.socketpair()
        if word is not None:
            ends[peer].sendall(word)
            ends[peer].close()
    return watch, ended, ends


@pytest.mark.parametrize(
    "words, failed_peer",
    [
        ({0: b""}, 0),  # rank 0 crashed: its id is no "no peer failed" mark (as -1 is)
        ({0: b"F", 1: None}, 0),
        ({1: b"", 3: None}, 1),
        ({0: b"B", 1: b"F"}, 1),
        ({0: b"B", 1: b"B"}, None),  # finished: the watch ends, the rank runs on
    ],
)
def test_the_watch_ends_its_rank_after_the_grace_once_a_peer_failed(words, failed_peer, monkeypatch):
    from audiotrain.distributed import peer_watch

    monkeypatch.setattr(peer_watch, "PEER_FAILED_GRACE_S", 0.2)  # (every word is readable as it starts)
    watch, ended, _ = _watch(monkeypatch, 2, words)
    watching = threading.Thread(target=watch.run, args=({},), daemon=True)
    watching.start()
    watching.join(timeout=60)  # (a guard: the watch waited forever where a peer failed)
    assert not watching.is_alive(), f"the watch still waits, having ended {ended}"
    if failed_peer is None:
        assert ended == []
    else:
        assert [peer for peer, _ in ended] == [failed_peer]
        assert ended[0][1].startswith(f"ended 0.2 s after rank {failed_peer} failed")


@pytest.mark.parametrize(
    "words, failed_peer",
    [
        ({1: b""}, 1),  # crashed (a segfault, SIGKILL, the OOM killer): no word, as failed
        ({1: b"F"}, 1),  # (said just before this rank ended: its watch's thread had not read it)
        ({1: b"F", 2: b""}, 1),  # the first to fail is named, whose message tells what went wrong
        ({1: b"B", 2: None}, None),
    ],
)
def test_a_rank_that_ends_by_itself_after_a_peer_failed_fails_naming_it(words, failed_peer, monkeypatch):
    from audiotrain.distributed import peer_watch

    watch, ended, ends = _watch(monkeypatch, 0, words)
    monkeypatch.setattr(peer_watch, "_WATCH", watch)
    peer_watch._at_exit()
    if failed_peer is None:
        assert ended == []
    else:
        assert [peer for peer, _ in ended] == [failed_peer]
        assert ended[0][1].startswith(f"rank {failed_peer} failed while this rank ran")
    assert watch.peers == {}  # every word read, every connection closed
    if 2 in ends and words[2] is None:  # a peer still running hears how this rank ended
        assert ends[2].recv(1) == (b"B" if failed_peer is None else b"F")


def test_a_rank_that_failed_itself_gets_no_second_line_blaming_its_peer(monkeypatch):
    # Both ranks failed (one bad batch): this rank's own failure line, printed already, stays its last.
    from audiotrain.distributed import peer_watch

    watch, ended, ends = _watch(monkeypatch, 0, {1: b"F", 2: None})
    monkeypatch.setattr(peer_watch, "_WATCH", watch)
    peer_watch.this_rank_failed()
    peer_watch._at_exit()
    assert ended == []
    assert ends[2].recv(1) == b"F"


def test_a_connection_reset_by_its_peer_is_a_failed_peer(monkeypatch):
    # A TCP reset (a peer killed with data unread in its socket, a host rebooted) is no goodbye.
    import select
    import struct

    watch, _, _ = _watch(monkeypatch, 0, {})
    with socket.create_server(("127.0.0.1", 0)) as listener:
        peer = socket.create_connection(listener.getsockname())
        conn, _ = listener.accept()
    conn.sendall(b"zz")  # (left unread by the peer)
    peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()  # a reset
    select.select([conn], [], [], 60)
    watch.peers[1] = conn
    assert watch.peer_that_failed() == 1


def test_a_rank_the_watch_ends_tells_its_other_peers_it_failed(monkeypatch, capfd):
    # Rank 2 hears F (this rank failed), not B: it may not watch rank 1 itself (best effort).
    import os

    from audiotrain.distributed import peer_watch

    watch = peer_watch._PeerWatch(0, b"t" * 16, None)
    watch.peers[1], _ = socket.socketpair()
    watch.peers[2], peer_2 = socket.socketpair()

    def exit_at_once(status):
        raise SystemExit(status)

    monkeypatch.setattr(os, "_exit", exit_at_once)
    with pytest.raises(SystemExit) as ended:
        watch.end_this_rank(1, "ended 10 s after rank 1 failed")
    assert ended.value.code == 1
    assert peer_2.recv(1) == b"F"
    assert capfd.readouterr().err.endswith(
        "audiotrain: rank 0 failed: ended 10 s after rank 1 failed (look for rank 1's message)\n"
    )


def test_a_rank_the_watch_ends_keeps_what_it_printed_last(tmp_path):
    # `end_this_rank` ends the process with os._exit, which leaves Python's buffers unwritten: the rank's
    # last log lines, block-buffered on a pipe or a file, were lost.
    import subprocess

    from child_processes import child_env

    code = """
from audiotrain.distributed import peer_watch
watch = peer_watch._PeerWatch(0, b"t" * 16, None)
print("the last log line before the end")
watch.end_this_rank(1, "ended 10 s after rank 1 failed")
"""
    env = {k: v for k, v in child_env().items() if k != "PYTHONUNBUFFERED"}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1, done
    assert done.stdout == "the last log line before the end\n", done
    assert done.stderr.strip().splitlines()[-1].startswith("audiotrain: rank 0 failed: ended 10 s"), done


def test_a_watch_whose_peers_all_connected_starts_watching_at_once(monkeypatch):
    # Taking connections until CONNECT_TIMEOUT_S when every peer had connected: a peer failing in the job's
    # first seconds was heard only then.
    from audiotrain.distributed import peer_watch

    class Listener(socket.socket):
        accepts = 0

        def accept(self):
            self.accepts += 1
            return super().accept()

    listener = Listener()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    token = b"t" * 16
    watch = peer_watch._PeerWatch(0, token, listener)
    rank_1 = socket.create_connection(listener.getsockname())
    rank_1.sendall(peer_watch._HELLO.pack(token, 1))
    watch._connect({1: listener.getsockname()})
    assert list(watch.peers) == [1]
    assert listener.accepts == 1  # rank 1's, and no wait for another
    watch.close_all()
    rank_1.close()


def _as_rank_of_a_ring_job(rank: int, hosts: list[str], tmp_path, monkeypatch) -> None:
    """This process as rank `rank` of a ring job (as far as the watch can tell) with hostfile `hosts`."""
    (tmp_path / "hosts.json").write_text(json.dumps([[host] for host in hosts]))
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "hosts.json"))
    monkeypatch.setenv("MLX_RANK", str(rank))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux: all of 127/8 is this machine's")
def test_each_rank_listens_on_its_own_address_in_the_hostfile(tmp_path, monkeypatch):
    # Rank 1 bound rank 0's address: on another machine that fails, and the watch is silently off.
    from audiotrain.distributed import peer_watch

    _as_rank_of_a_ring_job(1, ["127.0.0.1:1", "127.0.0.2:2"], tmp_path, monkeypatch)
    with peer_watch._listen() as listener:
        assert listener.getsockname()[0] == "127.0.0.2"


def test_a_rank_with_an_ipv6_address_listens_on_it(tmp_path, monkeypatch):
    from audiotrain.distributed import peer_watch

    try:
        socket.create_server(("::1", 0), family=socket.AF_INET6).close()
    except OSError:
        pytest.skip("no IPv6 loopback here")
    _as_rank_of_a_ring_job(0, ["[::1]:1", "[::1]:2"], tmp_path, monkeypatch)
    with peer_watch._listen() as listener:
        assert listener.getsockname()[0] == "::1"


def _job(rank_1_ends: str, stuck: float | str = 15, waiting: int = 0) -> list:
    """`rank_1_ends` is how the rank other than `waiting` ends (rank 0's end where rank 1 waits)."""
    code = PREAMBLE.replace("STUCK", str(stuck)).replace("WAITING = 0", f"WAITING = {waiting}") + rank_1_ends
    return run_ranks(code, 2, timeout=40)


@pytest.mark.serial
@pytest.mark.parametrize("failing, waiting", [(1, 0), (0, 1)])  # (0, 1): rank 0's id is no "none failed" mark
def test_a_rank_waiting_when_its_peer_raises_ends_with_a_message_naming_it(failing, waiting):
    results = _job(f"raise RuntimeError('rank {failing} broke')\n", waiting=waiting)
    failed, waited = results[failing], results[waiting]
    assert failed.returncode == 1, describe(results)
    assert f"audiotrain: rank {failing} failed: RuntimeError: rank {failing} broke" in failed.stderr
    assert waited.returncode == 1, describe(results)
    assert "went on" not in waited.stdout
    line = waited.stderr.strip().splitlines()[-1]
    said = f"audiotrain: rank {waiting} failed: ended 0.5 s after rank {failing} failed"
    assert line.startswith(said), line
    assert f"look for rank {failing}'s message" in line


@pytest.mark.serial
def test_a_peer_that_crashed_or_was_killed_ends_the_waiting_rank():
    r0, r1 = _job("os._exit(9)  # as a segfault or SIGKILL: no handler runs\n")
    assert r1.returncode == 9 and r0.returncode == 1, describe([r0, r1])
    assert "ended 0.5 s after rank 1 failed" in r0.stderr


@pytest.mark.serial
def test_a_rank_that_ends_by_itself_after_its_peer_failed_fails_naming_it():
    # A collective in flight as the peer died can give a rank its own values as the job's (the ring "fails"
    # its pending tasks): the rank then went on, ended within the grace, and exited 0 with a wrong result.
    code = PREAMBLE.replace("STUCK", "after_the_peer_ends(1.5)").replace("GRACE_S = 0.5", "GRACE_S = 60.0")
    r0, r1 = run_ranks(code + "raise RuntimeError('rank 1 broke')\n", 2, timeout=40)
    assert r1.returncode == 1 and r0.returncode == 1, describe([r0, r1])
    assert "rank 0 went on" in r0.stdout  # it ended by itself, not by the watch
    line = r0.stderr.strip().splitlines()[-1]
    assert line.startswith("audiotrain: rank 0 failed: rank 1 failed while this rank ran"), line
    assert line.endswith("(look for rank 1's message)"), line


# MLX itself: small all_sums back to back, some evaluated asynchronously, as a trainer's step and its
# logged means do. A peer killed mid-collective leaves rank 0 waiting forever in about half the tries
# (0.32.4): "[ring] Too many send/recv errors. Failing pending tasks...", and an mx.eval that never returns.
RING_LOOP = """
import os, signal, threading, time
import audiotrain
import mlx.core as mx
from audiotrain.distributed import collectives, peer_watch
peer_watch.PEER_FAILED_GRACE_S = 2.0
g = collectives.group()
if collectives.rank() == 1:
    # Killed only once its watch has connected to rank 0 (the watch's thread connects after group()
    # returned): killed before, under load, it left rank 0 unwatched, and a hang at the test's timeout.
    while not peer_watch._WATCH.peers:
        time.sleep(0.01)
    threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
total = mx.zeros((3,))
for i in range(10_000_000):
    total = total + mx.distributed.all_sum(mx.ones((3,)) * i, group=g)
    mx.async_eval(total)
    if i % 3 == 0:
        mx.distributed.all_sum(mx.array([1.0, 2.0]), group=g).tolist()
"""


@pytest.mark.serial
@pytest.mark.parametrize("attempt", range(3))
def test_a_rank_that_mlx_leaves_waiting_in_a_collective_ends(attempt):
    r0, r1 = run_ranks(RING_LOOP, 2, timeout=40)
    assert r1.returncode == -9, describe([r0, r1])
    assert r0.returncode == 1, describe([r0, r1])  # not None: killed at the timeout
    # Either its next collective raised, or the watch ended it. (MLX's ring threads may print their own
    # "[ring] Too many send/recv errors" after our line, as the process ends: seen once in CI under load.)
    ours = [line for line in r0.stderr.splitlines() if line.startswith("audiotrain: rank 0 failed:")]
    assert len(ours) == 1, describe([r0, r1])
    assert "rank 1" in ours[0] or "peer was lost" in ours[0], ours[0]


@pytest.mark.serial
@pytest.mark.parametrize(
    "rank_1_ends, status",
    [
        ("print('done')\n", 0),  # finished: rank 0 may still be writing its checkpoints
        ("exit_rank(130)\n", 130),  # a stop every rank takes together (Ctrl-C under a launcher)
        ("sys.exit(3)\n", 3),  # an exit status of the user's choosing
    ],
)
def test_a_peer_that_ends_without_an_error_of_its_own_leaves_the_others_running(rank_1_ends, status):
    r0, r1 = _job(rank_1_ends, stuck="after_the_peer_ends(1.5)")  # (past the grace)
    assert r1.returncode == status, describe([r0, r1])
    assert r0.returncode == 0 and "rank 0 went on" in r0.stdout, describe([r0, r1])
    assert "failed" not in r0.stderr


@pytest.mark.serial
def test_the_watch_can_be_turned_off():
    code = PREAMBLE.replace("STUCK", "after_the_peer_ends(1.5)") + "raise RuntimeError('rank 1 broke')\n"
    r0, r1 = run_ranks(code, 2, timeout=40, env={"AUDIOTRAIN_PEER_WATCH": "0"})
    assert r1.returncode == 1 and r0.returncode == 0, describe([r0, r1])


@pytest.mark.serial
def test_a_data_loader_worker_forked_from_a_rank_does_not_keep_its_peers_waiting():
    # The worker inherits the rank's sockets and outlives it: the peer must still see the rank go (the
    # child closes its copies at the fork).
    forks_then_dies = """
if os.fork() == 0:
    time.sleep(20)
    os._exit(0)
os._exit(9)
"""
    r0, r1 = _job(forks_then_dies)
    assert r1.returncode == 9 and r0.returncode == 1, describe([r0, r1])
    # Ended by the watch, not by the end of its 15 s sleep (a wall-clock bound would also count the ranks'
    # start, which a loaded machine makes long).
    assert "went on" not in r0.stdout and "ended 0.5 s after rank 1 failed" in r0.stderr, describe([r0, r1])


def _offer_with(value, tmp_path, monkeypatch):
    """What rank 0 of a ring job (as far as the watch can tell) offers the others with the variable set to
    `value`: None where it does not watch."""
    from audiotrain.distributed import peer_watch

    _as_rank_of_a_ring_job(0, ["127.0.0.1:1", "127.0.0.1:2"], tmp_path, monkeypatch)
    monkeypatch.setenv(peer_watch.ENABLE_ENV, value)
    offers = []
    peer_watch.start(0, lambda offer: offers.append(offer) or [offer, None])
    return offers[0]


@pytest.mark.parametrize("value", ["0", "false", "OFF", "no", " Off "])
def test_the_watch_is_turned_off_by_any_word_for_off(value, tmp_path, monkeypatch):
    """Only `0` turned it off: `false`, `off` and `no` kept it on without a word (AUDIOTRAIN_TRACEBACK took
    them all)."""
    assert _offer_with("1", tmp_path, monkeypatch) is not None
    assert _offer_with(value, tmp_path, monkeypatch) is None


def test_a_value_of_the_watch_variable_that_is_no_word_for_on_or_off_is_named(tmp_path, monkeypatch):
    with pytest.warns(RuntimeWarning, match=r"AUDIOTRAIN_PEER_WATCH='of' is neither on .* nor off"):
        assert _offer_with("of", tmp_path, monkeypatch) is not None  # on, as where it is unset


@pytest.mark.parametrize("failed", [False, True])
def test_a_peer_connected_after_this_rank_said_goodbye_hears_its_word(failed):
    """A rank that ends while its watch is still connecting (its hello sent, the connection not yet
    watched) closed that connection without a word, which its peer reads as a crash: the peer now hears
    the word the watched peers heard (seen in a loaded run of the 3-rank test below: b'' for b'B')."""
    from audiotrain.distributed import peer_watch

    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, socket.create_server(("127.0.0.1", 0)))
    watch.failed = failed
    watch.say_goodbye()
    ours, theirs = socket.socketpair()
    theirs.settimeout(60)
    watch._add(1, ours, b"hello")
    assert theirs.recv(1) == (peer_watch._FAILED if failed else peer_watch._BYE)
    assert theirs.recv(1) == b""  # (and then closed, with no hello: this rank no longer watches)
    assert watch.peers == {}
    theirs.close()


def test_a_connection_to_a_lower_rank_says_its_hello_and_is_watched():
    from audiotrain.distributed import peer_watch

    watch = peer_watch._PeerWatch(1, b"t" * peer_watch._TOKEN_BYTES, socket.create_server(("127.0.0.1", 0)))
    ours, theirs = socket.socketpair()
    theirs.settimeout(60)
    watch._add(0, ours, b"hello")
    assert peer_watch._read_exactly(theirs, 5) == b"hello"
    assert watch.peers == {0: ours}
    watch.say_goodbye()
    assert theirs.recv(1) == peer_watch._BYE
    theirs.close()


def _connect_as_rank(address, rank: int, hello: bool = True) -> socket.socket:
    from audiotrain.distributed import peer_watch

    conn = socket.create_connection(address, timeout=60)
    if hello:
        conn.sendall(peer_watch._HELLO.pack(b"t" * peer_watch._TOKEN_BYTES, rank))
    return conn


@pytest.mark.parametrize("failed", [False, True])
def test_a_higher_rank_not_yet_accepted_when_this_rank_says_goodbye_hears_its_word(failed):
    """The connection of a higher rank waits in the listener until the watch's thread accepts it, which on a
    loaded machine can be after this rank's script is done: closing the listener then reset it, which the
    higher rank read as this rank crashing ('rank 0 failed while this rank ran', in a CI run of a 2-rank job
    that only passed a barrier). It hears this rank's word instead."""
    from audiotrain.distributed import peer_watch

    listener = socket.create_server(("127.0.0.1", 0))
    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, listener)
    watch.failed = failed
    rank_1, rank_2 = (_connect_as_rank(listener.getsockname(), r) for r in (1, 2))  # (no thread accepts)
    watch.say_goodbye()
    for conn in (rank_1, rank_2):
        assert conn.recv(1) == (peer_watch._FAILED if failed else peer_watch._BYE)
        assert conn.recv(1) == b""
        conn.close()
    assert watch.listener is None


def test_a_higher_rank_whose_hello_is_being_read_when_this_rank_says_goodbye_hears_its_word():
    from audiotrain.distributed import peer_watch

    listener = socket.create_server(("127.0.0.1", 0))
    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, listener)
    rank_1 = _connect_as_rank(listener.getsockname(), 1, hello=False)  # (its hello is slow to come)
    connecting = threading.Thread(target=watch._connect, args=({1: ("127.0.0.1", 1)},), daemon=True)
    connecting.start()
    deadline = time.monotonic() + 60
    while not watch.unheard and time.monotonic() < deadline:  # (accepted, its hello awaited)
        time.sleep(0.01)
    assert watch.unheard
    unheard = next(iter(watch.unheard))
    watch.say_goodbye()
    assert rank_1.recv(1) == peer_watch._BYE
    # Its unread hello was read without waiting: under the hello's 2 s timeout, Python's recv waited for it
    # (MSG_DONTWAIT or not), and this rank's exit with it.
    assert unheard.gettimeout() == 0.0
    connecting.join(timeout=60)
    assert not connecting.is_alive()
    assert watch.peers == {} and watch.unheard == set()
    rank_1.close()


def test_a_goodbye_said_just_as_the_watchs_thread_took_a_connection_up_is_not_held_by_its_hello_timeout():
    """The watch's thread noted an accepted connection (under the lock), then set the hello's 2 s timeout
    on it after letting go of the lock: a goodbye said in between (a loaded machine pauses a thread
    anywhere) made it non-blocking first, and the thread's timeout then replaced that: the test above could
    then see `gettimeout()` 2.0, and the goodbye's read of the hello wait 2 s at the rank's exit."""
    from audiotrain.distributed import peer_watch

    class Connection(socket.socket):
        def settimeout(self, timeout):
            if self in watch.unheard:  # (seen by a goodbye before its hello's timeout is set)
                watch.say_goodbye()  # said now, as the thread is paused here
            super().settimeout(timeout)

    class Listener(socket.socket):
        def accept(self):
            conn, address = super().accept()
            taken.append(Connection(fileno=conn.detach()))
            return taken[-1], address

    taken: list[socket.socket] = []
    listener = Listener()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, listener)
    rank_1 = _connect_as_rank(listener.getsockname(), 1, hello=False)
    connecting = threading.Thread(target=watch._connect, args=({1: ("127.0.0.1", 1)},), daemon=True)
    connecting.start()
    deadline = time.monotonic() + 60
    while not (taken and (watch.unheard or watch.said)) and time.monotonic() < deadline:
        time.sleep(0.01)
    watch.say_goodbye()  # (where the thread did not say it)
    assert rank_1.recv(1) == peer_watch._BYE
    assert taken and taken[0].gettimeout() == 0.0  # the goodbye's non-blocking read, not the hello's 2 s
    connecting.join(timeout=60)
    assert not connecting.is_alive()
    rank_1.close()


def test_ranks_that_watch_watch_each_other_beside_a_rank_that_does_not(tmp_path, monkeypatch):
    # A 3-rank job where rank 1 turned the watch off: its None offer must not stop the others' watch.
    from audiotrain.distributed import peer_watch

    _as_rank_of_a_ring_job(2, ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"], tmp_path, monkeypatch)
    monkeypatch.delenv(peer_watch.ENABLE_ENV, raising=False)
    monkeypatch.setattr(peer_watch, "_WATCH", None)
    token = "ab" * 16
    with socket.create_server(("127.0.0.1", 0)) as rank_0:  # stands for rank 0
        rank_0_offer = {"host": "127.0.0.1", "port": rank_0.getsockname()[1], "token": token}
        peer_watch.start(2, lambda offer: [rank_0_offer, None, offer])
        watch = peer_watch._WATCH
        assert watch is not None
        conn, _ = rank_0.accept()
    conn.settimeout(60)
    assert peer_watch._read_exactly(conn, peer_watch._HELLO.size) == peer_watch._HELLO.pack(
        bytes.fromhex(token), 2
    )
    watch.say_goodbye()  # (before rank 0's stand-in closes: a closed peer would end this process)
    assert conn.recv(1) == b"B"
    conn.close()
    for thread in threading.enumerate():
        if thread.name == "audiotrain-peer-watch":
            thread.join(timeout=60)


@pytest.mark.serial
@pytest.mark.skipif(sys.platform != "linux", reason="how a listener closed under a select behaves is Linux's")
def test_a_rank_that_said_goodbye_while_its_watch_waited_for_connections_refuses_new_ones():
    """Closing the listener while the watch's thread waited on it in select left it listening until that
    select returned (it holds the socket): a higher rank that connected then was reset as this rank's process
    ended, and read that as this rank crashing (3 runs in 100 of a 2-rank job on a loaded machine)."""
    from audiotrain.distributed import peer_watch

    listener = socket.create_server(("127.0.0.1", 0))
    address = listener.getsockname()
    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, listener)
    connecting = threading.Thread(target=watch._connect, args=({1: ("127.0.0.1", 1)},), daemon=True)
    connecting.start()
    time.sleep(0.2)  # (the thread waits in select)
    watch.say_goodbye()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(address, timeout=60).close()
    connecting.join(timeout=60)
    assert not connecting.is_alive()  # (its select ended with the listener)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork")
def test_a_child_forked_while_the_watchs_thread_held_its_lock_forgets_the_watch():
    """A fork (a data loader's "fork" worker) while the watch's thread held its lock, hearing a peer or taking
    a connection, gave the child a copy of the lock held by a thread it does not have: its at-fork
    `_forget_in_child` waited for it for ever, and the worker hung as it started."""
    from audiotrain.distributed import peer_watch

    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, socket.create_server(("127.0.0.1", 0)))
    old, peer_watch._WATCH = peer_watch._WATCH, watch
    try:
        with watch.lock:  # (as the watch's thread holds it)
            pid = os.fork()
            if pid == 0:  # the child: forgets the watch, as the at-fork hook does, and ends
                peer_watch._forget_in_child()
                os._exit(0 if peer_watch._WATCH is None else 1)
        deadline = time.monotonic() + 60
        while (done := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        if done[0] == 0:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        assert done[0] == pid, "the forked child waited for ever for the watch's lock"
        assert os.waitstatus_to_exitcode(done[1]) == 0
    finally:
        peer_watch._WATCH = old
        watch.close_all()


def test_a_goodbye_said_as_the_watch_starts_taking_connections_ends_its_thread_quietly():
    """The watch's thread took the listener up without the lock: a goodbye said then (the rank's script done
    as its watch started) closed it first, and the thread died of EBADF with a traceback on the rank's stderr
    ('Exception in thread audiotrain-peer-watch', 1 run in 8 of this file, in the 3-rank test above)."""
    from audiotrain.distributed import peer_watch

    listener = socket.create_server(("127.0.0.1", 0))
    watch = peer_watch._PeerWatch(0, b"t" * peer_watch._TOKEN_BYTES, listener)
    goodbyes: list[threading.Thread] = []

    class ClosedMeanwhile:  # the listener, as the rank says goodbye just as the watch's thread takes it up
        def __getattr__(self, name):
            return getattr(listener, name)

        def setblocking(self, flag):
            if not goodbyes:
                goodbyes.append(threading.Thread(target=watch.say_goodbye))
                goodbyes[0].start()
                # It waits for the watch's lock where the thread holds it; taken without the lock (the bug),
                # the listener is closed before the goodbye ends.
                goodbyes[0].join(timeout=0 if watch.lock.locked() else 60)
            listener.setblocking(flag)

    watch.listener = ClosedMeanwhile()
    watch._connect({1: ("127.0.0.1", 1)})  # (raised OSError: [Errno 9] Bad file descriptor)
    goodbyes[0].join(timeout=60)
    assert watch.said and watch.listener is None
