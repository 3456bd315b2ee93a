"""A rank of a ring job whose peer failed ends with a message naming that peer, instead of waiting forever
in a collective the peer left half done; a peer that ended without an error of its own (finished, stopped,
an exit status it chose) does not end the others. Ranks started by hand, as a cluster's scheduler would,
with no launcher to end them."""

import time

import pytest
from distributed import describe, run_ranks

# Rank 0 stands for a rank stuck in MLX: its main thread blocks in one call, as in an `mx.eval` that waits
# for a peer that died mid-collective. The grace is cut to 1 s so the tests stay short.
PREAMBLE = """
import os, sys, time
import audiotrain
from audiotrain.distributed import collectives, exit_rank, peer_watch
peer_watch.PEER_FAILED_GRACE_S = 1.0
collectives.group()
rank = collectives.rank()
if rank == 0:
    time.sleep(STUCK)
    print("rank 0 went on")
    sys.exit(0)
time.sleep(0.5)  # (rank 0 is in its sleep)
"""


def test_only_the_ranks_of_this_job_are_watched():
    import socket
    import threading

    from audiotrain.distributed import peer_watch

    listener = socket.create_server(("127.0.0.1", 0))
    token = b"t" * 16
    watch = peer_watch._PeerWatch(0, token, listener)
    address = listener.getsockname()

    def connect(said: bytes):
        conn = socket.create_connection(address)
        conn.sendall(said)
        return conn

    def knock():  # another program on the machine, then rank 1
        held.append(connect(b"GET / HTTP/1.1\r\n\r\n"))
        held.append(connect(peer_watch._HELLO.pack(b"x" * 16, 1)))  # another job's rank 1
        held.append(connect(peer_watch._HELLO.pack(token, 1)))

    held: list = []
    knocking = threading.Thread(target=knock)
    knocking.start()
    watch._connect({1: address})
    knocking.join()
    assert list(watch.peers) == [1]
    # The rank that knew the job's token, not the other job's rank 1 that came first: its end (a peer's
    # failure or its goodbye) is the one watched.
    assert watch.peers[1].getpeername() == held[2].getsockname()
    assert watch.listener is None  # no longer listening
    watch.close_all()
    for conn in held:
        conn.close()


def _job(rank_1_ends: str, stuck: float = 15) -> list:
    code = PREAMBLE.replace("STUCK", str(stuck)) + rank_1_ends
    start = time.monotonic()
    results = run_ranks(code, 2, timeout=40)
    return [*results, time.monotonic() - start]


def test_a_rank_waiting_when_its_peer_raises_ends_with_a_message_naming_it():
    r0, r1, took = _job("raise RuntimeError('rank 1 broke')\n")
    assert r1.returncode == 1, describe([r0, r1])
    assert "audiotrain: rank 1 failed: RuntimeError: rank 1 broke" in r1.stderr
    assert r0.returncode == 1, describe([r0, r1])
    assert "went on" not in r0.stdout
    line = r0.stderr.strip().splitlines()[-1]
    assert line.startswith("audiotrain: rank 0 failed: ended 1 s after rank 1 failed"), line
    assert "look for rank 1's message" in line
    assert took < 14  # ended by the watch, not by the end of its 15 s sleep


def test_a_peer_that_crashed_or_was_killed_ends_the_waiting_rank():
    r0, r1, _ = _job("os._exit(9)  # as a segfault or SIGKILL: no handler runs\n")
    assert r1.returncode == 9 and r0.returncode == 1, describe([r0, r1])
    assert "ended 1 s after rank 1 failed" in r0.stderr


def test_a_rank_that_ends_by_itself_after_its_peer_failed_fails_naming_it():
    # A collective in flight as the peer died can give a rank its own values as the job's (the ring "fails"
    # its pending tasks): the rank then went on, ended within the grace, and exited 0 with a wrong result.
    code = PREAMBLE.replace("STUCK", "3").replace("GRACE_S = 1.0", "GRACE_S = 60.0")
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
import os, signal, threading
import audiotrain
import mlx.core as mx
from audiotrain.distributed import collectives, peer_watch
peer_watch.PEER_FAILED_GRACE_S = 2.0
g = collectives.group()
if collectives.rank() == 1:
    threading.Timer(0.8, lambda: os.kill(os.getpid(), signal.SIGKILL)).start()
total = mx.zeros((3,))
for i in range(10_000_000):
    total = total + mx.distributed.all_sum(mx.ones((3,)) * i, group=g)
    mx.async_eval(total)
    if i % 3 == 0:
        mx.distributed.all_sum(mx.array([1.0, 2.0]), group=g).tolist()
"""


@pytest.mark.parametrize("attempt", range(3))
def test_a_rank_that_mlx_leaves_waiting_in_a_collective_ends(attempt):
    r0, r1 = run_ranks(RING_LOOP, 2, timeout=40)
    assert r1.returncode == -9, describe([r0, r1])
    assert r0.returncode == 1, describe([r0, r1])  # not None: killed at the timeout
    last = r0.stderr.strip().splitlines()[-1]
    # Either its next collective raised, or the watch ended it.
    assert last.startswith("audiotrain: rank 0 failed:"), last
    assert "rank 1" in last or "peer was lost" in last, last


@pytest.mark.parametrize(
    "rank_1_ends, status",
    [
        ("print('done')\n", 0),  # finished: rank 0 may still be writing its checkpoints
        ("exit_rank(130)\n", 130),  # a stop every rank takes together (Ctrl-C under a launcher)
        ("sys.exit(3)\n", 3),  # an exit status of the user's choosing
    ],
)
def test_a_peer_that_ends_without_an_error_of_its_own_leaves_the_others_running(rank_1_ends, status):
    r0, r1, _ = _job(rank_1_ends, stuck=3)
    assert r1.returncode == status, describe([r0, r1])
    assert r0.returncode == 0 and "rank 0 went on" in r0.stdout, describe([r0, r1])
    assert "failed" not in r0.stderr


def test_the_watch_can_be_turned_off():
    code = PREAMBLE.replace("STUCK", "3") + "raise RuntimeError('rank 1 broke')\n"
    r0, r1 = run_ranks(code, 2, timeout=40, env={"AUDIOTRAIN_PEER_WATCH": "0"})
    assert r1.returncode == 1 and r0.returncode == 0, describe([r0, r1])


def test_a_data_loader_worker_forked_from_a_rank_does_not_keep_its_peers_waiting():
    # The worker inherits the rank's sockets and outlives it: the peer must still see the rank go (the
    # child closes its copies at the fork).
    forks_then_dies = """
if os.fork() == 0:
    time.sleep(20)
    os._exit(0)
os._exit(9)
"""
    r0, r1, took = _job(forks_then_dies)
    assert r1.returncode == 9 and r0.returncode == 1, describe([r0, r1])
    assert took < 14


pytestmark = pytest.mark.serial  # 2-rank jobs, and timing


def _offer_with(value, tmp_path, monkeypatch):
    """What rank 0 of a ring job (as far as the watch can tell) offers the others with the variable set to
    `value`: None where it does not watch."""
    from audiotrain.distributed import peer_watch

    (tmp_path / "hosts.json").write_text('[["127.0.0.1:1"], ["127.0.0.1:2"]]')
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "hosts.json"))
    monkeypatch.setenv("MLX_RANK", "0")
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
