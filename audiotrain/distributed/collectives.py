"""The process group, seen once, and the few collectives a data-parallel trainer needs beyond gradients.

Every function here is the identity (and costs nothing) in one process. Under ``mlx.launch``, ``mpirun``
or MLX's NCCL backend, `group` joins the job on first use with ``mx.distributed.init()``. All ranks must
call a collective in the same order with arrays of the same shapes, or the job hangs or fails.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import pickle
import re
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, overload

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten, tree_unflatten

T = TypeVar("T")
P = ParamSpec("P")

_GROUP: Any = None  # the mx.distributed.Group, or a stand-in with rank()/size() set by tests


class LauncherEnvironmentError(RuntimeError):
    """A launcher's variables in the environment that start no job: a hostfile that is gone, or a job size
    MLX did not join (left over from an earlier job, or ``mpirun`` without ``MLX_MPI_LIBNAME``), or a ring
    address in the hostfile this rank cannot listen on (its port in use, an IP of another machine)."""


def group() -> Any:
    """The global ``mx.distributed.Group``; None when MLX was built without distributed support.

    Initialised once: ``mx.distributed.init()`` connects the ranks (a fraction of a second on ring) and
    gives a group of size 1 when the process was not started by a launcher. With more than one rank it
    also installs `install_failure_hook`, so an uncaught exception names its rank, and
    `local.install_rank_stop_signal`, so that a launcher's forwarded Ctrl-C is one here too, and starts
    `peer_watch` (one small all_gather), so that a rank whose peer failed mid-collective ends.
    """
    global _GROUP
    if _GROUP is None and mx.distributed.is_available():
        _refuse_a_missing_hostfile()
        try:
            joined = mx.distributed.init()
        except RuntimeError as error:
            raise _ring_bind_error(error) or error from None
        if joined.size() == 1:
            _refuse_a_lone_rank()
        _GROUP = joined
        if _GROUP.size() > 1:
            from audiotrain.distributed import peer_watch
            from audiotrain.distributed.failures import install_failure_hook
            from audiotrain.distributed.local import install_rank_stop_signal

            install_failure_hook()
            install_rank_stop_signal()  # a launcher's stand-in for Ctrl-C, where it uses one
            peer_watch.start(_GROUP.rank(), all_gather_object)
    return _GROUP


def _left_over() -> str:
    """The advice for a launcher's variables that may be left over from an earlier job."""
    from audiotrain.distributed.local import LAUNCHER_ENV

    names = [name for name in LAUNCHER_ENV if name in os.environ]
    return (
        f"if no launcher started this process, {' and '.join(names)} {'is' if len(names) == 1 else 'are'} left "
        f"over from an earlier job: unset {'it' if len(names) == 1 else 'them'} to train in one process"
    )


def _refuse_a_missing_hostfile() -> None:
    """Raise where ``MLX_HOSTFILE`` names no file: MLX's own error is a bare JSON parse error naming neither
    the variable nor the file (mlx.launch deletes the hostfile it wrote when its job ends)."""
    hostfile = os.environ.get("MLX_HOSTFILE")
    if hostfile and not Path(hostfile).is_file():
        raise LauncherEnvironmentError(
            f"MLX_HOSTFILE names {hostfile}, which does not exist (mlx.launch deletes its hostfile when its job "
            f"ends); {_left_over()}"
        )


#: What ring's "Couldn't bind socket (error: N)" means for this rank's address in the hostfile, by errno.
_BIND_ERRORS = {
    98: "is in use (by another program, or another job started with the same ports: give each job on a "
    "machine its own, mlx.launch --starting-port PORT or python -m audiotrain launch --starting-port PORT; "
    "`ss -ltnp` names what holds it)",
    99: "is none of this machine's (the hostfile's `ips` of each host must be that host's own "
    "addresses, as `ip -brief address` lists them)",
}


def _ring_bind_error(error: RuntimeError) -> LauncherEnvironmentError | None:
    """MLX's ``[ring] Couldn't bind socket (error: 98)`` in words, naming this rank's address in the hostfile
    and what to do; None for any other error. MLX names neither the address nor the port, and the user has
    to guess which of the job's ports (or which host's ``ips``) is wrong."""
    found = re.search(r"Couldn't bind socket \(error: (\d+)\)", str(error))
    if found is None or int(found.group(1)) not in _BIND_ERRORS:
        return None
    hostfile = os.environ.get("MLX_HOSTFILE", "")
    try:
        addresses = json.loads(Path(hostfile).read_text())[int(os.environ["MLX_RANK"])]
        where = " and ".join(str(a) for a in addresses)
    except (KeyError, OSError, ValueError, TypeError, IndexError):
        where = "its address"
    rank_name = f"rank {os.environ.get('MLX_RANK', '?')}"
    return LauncherEnvironmentError(
        f"{rank_name} of the ring job cannot listen on {where} (this rank's address in MLX_HOSTFILE "
        f"{hostfile}): the address {_BIND_ERRORS[int(found.group(1))]}; MLX said: {error}"
    )


def _refuse_a_lone_rank() -> None:
    """Raise when a launcher started this process as one of several but MLX joined no job (``mpirun`` without
    ``MLX_MPI_LIBNAME``): each process would train alone, on all the data, into the same files. An error,
    not a warning: those processes would race on the run folder and its checkpoints."""
    from audiotrain.distributed.local import find_mpi, launcher_processes

    found = launcher_processes()
    if found is None:
        return
    name, processes = found
    mpi = find_mpi()
    library = mpi.library if mpi is not None and mpi.library else "/path/to/libmpi.so.40"
    said = f"{name}={processes} is set in this environment"
    if name == "MLX_WORLD_SIZE" and not os.environ.get("MLX_HOSTFILE"):  # (mlx.launch sets MLX_HOSTFILE)
        raise LauncherEnvironmentError(
            f"{said}, but no MLX_HOSTFILE (the file through which MLX joins the ranks); {_left_over()}"
        )
    raise LauncherEnvironmentError(
        f"{said}: this process is one of {processes} that a launcher started, but MLX's distributed group has "
        "1 process: MLX did not join the job, so each process would train alone into the same files. Under "
        f"mpirun, point MLX at the MPI library: MLX_MPI_LIBNAME={library} (README, 'Data parallel "
        f"(mx.distributed)', MPI); {_left_over()}"
    )


class _ThisProcessAlone:
    """A group of one process: what rank 0 works in after `leave_to_rank_0`."""

    def rank(self) -> int:
        return 0

    def size(self) -> int:
        return 1


def leave_to_rank_0() -> tuple[int, int]:
    """(this process's rank, the job's processes) for a command one process does whole (a recipe's predict,
    evaluate, export) started under a launcher: the ranks other than 0 should then end at once, without
    writing anything, and rank 0 goes on as a job of one (`world_size` 1 from here on). Each rank doing all
    the work into the same output folder raced, and took longer than one process. (0, 1) outside a launcher,
    which this does not join a job to tell (`local.in_launched_job`)."""
    global _GROUP
    from audiotrain.distributed.local import in_launched_job

    if not in_launched_job():
        return 0, 1
    joined = group()
    if joined.rank() == 0:
        _GROUP = _ThisProcessAlone()
    return joined.rank(), joined.size()


def joined_world_size() -> int:
    """`world_size` if this process has already joined its job, else 1 (it does not join one to answer)."""
    return 1 if _GROUP is None else _GROUP.size()


def rank() -> int:
    """This process's index in the job, ``0 .. world_size() - 1``; 0 in one process."""
    g = group()
    return 0 if g is None else g.rank()


#: Where launchers put a process's index among the job's processes on its machine (Open MPI, MPICH, Slurm,
#: torchrun's name). mlx.launch sets none: `local_rank` is then `rank`.
_LOCAL_RANK_ENV = ("OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "SLURM_LOCALID", "LOCAL_RANK")


def local_rank() -> int:
    """This process's index among the job's processes on its machine, where the launcher says; else `rank`."""
    if world_size() == 1:
        return 0
    for name in _LOCAL_RANK_ENV:
        if os.environ.get(name, "").isdigit():
            return int(os.environ[name])
    return rank()


class _RankZeroOnly:
    """Decorator: call `fn` on rank 0 only (elsewhere the call returns `default`, None unless given), as
    Lightning's ``lightning.pytorch.utilities.rank_zero_only``: for printing, saving a plot, writing a file.
    ``rank_zero_only(fn, default=0)`` gives the other ranks 0, as Lightning's `default` does, and
    ``rank_zero_only.rank`` is this process's rank, which code written for Lightning reads (a logger that
    prefixes its lines with the rank)."""

    @overload
    def __call__(self, fn: Callable[P, T]) -> Callable[P, T | None]: ...

    @overload
    def __call__(self, fn: Callable[P, T], default: T) -> Callable[P, T]: ...

    def __call__(self, fn: Callable[P, T], default: T | None = None) -> Callable[P, T | None]:
        # P, as Lightning's: the decorated function keeps its parameters for checkers and editors (with
        # `...` they read `(*Any, **Any)`, and a call with wrong arguments passed).
        @functools.wraps(fn)
        def wrapped(*args: P.args, **kwargs: P.kwargs) -> T | None:
            return fn(*args, **kwargs) if is_main_process() else default

        return wrapped

    @property
    def rank(self) -> int:
        """This process's rank in the job (`rank`), 0 in one process: Lightning's ``rank_zero_only.rank``."""
        return rank()

    def __setattr__(self, name: str, value: Any) -> None:
        # Lightning's Trainer sets it; here the rank is the launcher's, which setting it would not change.
        raise AttributeError(
            f"rank_zero_only.{name} cannot be set: the rank comes from the job mlx.launch started "
            "(audiotrain.distributed.rank()); read rank_zero_only.rank"
        )

    def __repr__(self) -> str:
        return "audiotrain.rank_zero_only"


rank_zero_only = _RankZeroOnly()


# Where rank_zero_info and rank_zero_debug log (audiotrain adds no handler: a program that wants them on
# stderr calls logging.basicConfig(level=logging.INFO), where Lightning prints its INFO lines itself).
_log = logging.getLogger(__name__)


# `stacklevel` as Lightning counts it (4: the line that called rank_zero_warn), which counts one more frame
# of its own than here: so a `stacklevel=` written for Lightning's points at the same line.
@rank_zero_only
def rank_zero_warn(message: str | Warning, stacklevel: int = 4, **kwargs: Any) -> None:
    """Lightning's ``rank_zero_warn``: `warnings.warn(message, **kwargs)` on rank 0 only, pointing at the
    line that called it (`stacklevel` as Lightning's); a callback's warning said once a job, not once a
    rank."""
    warnings.warn(message, stacklevel=stacklevel - 1, **kwargs)


@rank_zero_only
def rank_zero_info(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """Lightning's ``rank_zero_info``: `logging.info(*args)` on rank 0 only, on the logger
    ``audiotrain.distributed.collectives``."""
    _log.info(*args, stacklevel=stacklevel - 1, **kwargs)


@rank_zero_only
def rank_zero_debug(*args: Any, stacklevel: int = 4, **kwargs: Any) -> None:
    """Lightning's ``rank_zero_debug``: `rank_zero_info` at DEBUG level."""
    _log.debug(*args, stacklevel=stacklevel - 1, **kwargs)


def world_size() -> int:
    """Number of processes in the job; 1 when not launched as a distributed job."""
    g = group()
    return 1 if g is None else g.size()


def is_main_process() -> bool:
    """True on rank 0: the one process that logs, draws progress and writes checkpoints and run files."""
    return rank() == 0


def all_reduce_sum(tree: Any) -> Any:
    """Sum every ``mx.array`` leaf of ``tree`` over the ranks (identity in one process).

    Lazy, like any MLX op, and therefore a trap: every rank must evaluate the result (``mx.eval``,
    ``.item()``), or the ranks that do wait forever for the ones that did not.

    Leaves of one dtype travel in one ``all_sum``: on ring each call costs milliseconds however small the
    array, so ten scalar metrics cost one call, not ten. Non-array leaves are returned unchanged.
    """
    if world_size() == 1:
        return tree
    flat = tree_flatten(tree)
    by_dtype: dict[Any, list[int]] = {}
    for i, (_, leaf) in enumerate(flat):
        if isinstance(leaf, mx.array):
            by_dtype.setdefault(leaf.dtype, []).append(i)
    out = list(flat)
    for indices in by_dtype.values():
        leaves = [flat[i][1] for i in indices]
        packed = mx.distributed.all_sum(mx.concatenate([x.reshape(-1) for x in leaves]), group=group())
        offsets = [0]
        for x in leaves:
            offsets.append(offsets[-1] + x.size)
        parts = mx.split(packed, offsets[1:-1]) if len(leaves) > 1 else [packed]
        for i, x, part in zip(indices, leaves, parts):
            out[i] = (flat[i][0], part.reshape(x.shape))
    return tree_unflatten(out) if out else tree


def mean_across_ranks(x: mx.array) -> mx.array:
    """The mean of `x` over the ranks, lazily, usable inside a compiled step (identity in one process).
    For a loss's normaliser (a count of valid frames), so that averaged gradients equal one process's."""
    n = world_size()
    if n == 1:
        return x
    return mx.stop_gradient(mx.distributed.all_sum(x, group=group())) / n


def all_gather(x: mx.array) -> mx.array:
    """Every rank's `x` stacked along axis 0, in rank order (identity in one process). Differentiable: the
    gradient of the result reaches each rank's own rows."""
    if world_size() == 1:
        return x
    return mx.distributed.all_gather(x, group=group())


def gather_for_loss(x: mx.array) -> mx.array:
    """`all_gather` for a loss that every rank computes over the whole job's rows (a contrastive loss
    whose negatives are every rank's samples).

    Each rank's rows get `world_size` times their gradient: all_gather's gradient reaches only a rank's
    own rows, and the Trainer averages the ranks' gradients, so this makes that mean the full loss's
    gradient, as one process over the combined batch computes it. Parameters the loss uses directly (a
    temperature) are left alone: every rank already has their whole gradient.
    """
    n = world_size()
    if n == 1:
        return x
    scaled = n * x - mx.stop_gradient((n - 1) * x)  # the value of x, the gradient times n
    return all_gather(scaled)


def _keys_fingerprint(keys: list[str]) -> float:
    # 20 bits fit exactly in float32, so the sum over ranks is exactly world_size * value when all agree.
    return float(zlib.crc32("\0".join(keys).encode()) & 0xFFFFF)


def _same_names_on_every_rank(keys: list[str]) -> bool:
    """Whether every rank passes these names: their count and fingerprint summed over the ranks (one small
    ``all_sum``; the values' own cannot carry them, as it needs arrays of one length on every rank)."""
    header = mx.array([len(keys), _keys_fingerprint(keys)], dtype=mx.float32)
    summed = mx.distributed.all_sum(header, group=group()).tolist()
    n = world_size()
    return summed == [n * len(keys), n * _keys_fingerprint(keys)]


def reduce_weighted_means(
    sums: dict[str, mx.array | float], weight: float | mx.array | dict[str, float | mx.array]
) -> dict[str, float]:
    """Means over all ranks of metrics accumulated as weighted sums: ``sum_r sums_r[k] / sum_r weight_r``.

    Parameters
    ----------
    sums : dict of str to scalar mx.array or float
        This rank's ``sum over batches of (batch mean * batch weight)`` per metric, e.g. a loss mean times
        the batch's sample count. A key only some ranks pass is the mean over those ranks (the names are
        then exchanged once more).
    weight : float, scalar mx.array, or dict of str to those
        This rank's total weight (samples seen), one for all metrics or one per key of ``sums``.

    Returns
    -------
    dict of str to float
        The sample-weighted mean of each metric over the whole job, equal on every rank, in the order of
        ``sums`` (then names only other ranks passed); NaN where the total weight is 0. Under data parallel,
        one ``all_sum`` of the names' count and fingerprint, then one of the ``2 * len(sums)`` float32
        values (two host syncs), where the ranks pass the same names.

    Raises
    ------
    ValueError
        When ``weight`` has no entry for a key of ``sums``.
    """
    keys = sorted(sums)
    weights = weight if isinstance(weight, dict) else dict.fromkeys(keys, weight)
    missing = set(keys) - set(weights)
    if missing:
        raise ValueError(
            f"reduce_weighted_means: no weight for {sorted(missing)}; weights has {sorted(weights)}"
        )
    n = world_size()
    if n > 1 and not _same_names_on_every_rank(keys):
        # Names only some ranks report (a value logged under `if trainer.is_global_zero`, Lightning's
        # rank_zero_only pattern): reduce over every rank's names, where a rank without one adds no sum
        # and no weight, so its mean is over the ranks that reported it.
        exchanged = enumerate(_exchange(_encoded(keys)))
        every = sorted({name for sender, raw in exchanged for name in _decoded(raw, sender)})
        every = [*sums, *(name for name in every if name not in sums)]  # (this rank's order first)
        return reduce_weighted_means(
            {key: sums.get(key, 0.0) for key in every}, {key: weights.get(key, 0.0) for key in every}
        )
    values = [mx.array(sums[k], dtype=mx.float32).reshape(()) for k in keys]
    values += [mx.array(weights[k], dtype=mx.float32).reshape(()) for k in keys]
    packed = mx.stack(values) if values else mx.zeros((0,), mx.float32)
    if n > 1 and keys:
        packed = mx.distributed.all_sum(packed, group=group())
    host = packed.tolist()  # the host sync: once per reduction, at logging or epoch end
    k = len(keys)
    means = {key: (host[i] / host[k + i] if host[k + i] else float("nan")) for i, key in enumerate(keys)}
    # Sorted to travel (every rank packs the same names in the same places); given back in the caller's
    # order, as one process has them: the progress line's val_loss stays first whatever the process count.
    return {key: means[key] for key in sums}


def barrier() -> None:
    """Block until every rank reaches this call (e.g. before reading a file rank 0 just wrote)."""
    if world_size() > 1:
        mx.eval(mx.distributed.all_sum(mx.array(1.0), group=group()))


def broadcast_from_main(value: Any) -> Any:
    """Rank 0's ``value`` (a small host value, as for `all_gather_object`) on every rank: a run folder name,
    a seed.

    Two ``all_sum`` calls (lengths, then bytes) where the other ranks contribute nothing. Not for arrays
    that are large or that every rank already computes identically.
    """
    if world_size() == 1:
        return value
    payload = _encoded(value) if is_main_process() else b""
    sent = _exchange(payload)[0]  # every rank takes part, rank 0 too
    return value if is_main_process() else _decoded(sent, 0)


def broadcast_parameters(module: Any) -> None:
    """Every rank takes rank 0's parameters of `module` (an ``nn.Module``), as Lightning's DDP broadcasts
    them at the start of training: a script that did not seed before building the model still trains one
    model. One `all_reduce_sum` of the parameters, where the other ranks contribute zeros."""
    zero = is_main_process()
    mine = [(k, v if zero else mx.zeros_like(v)) for k, v in tree_flatten(module.parameters())]
    module.update(all_reduce_sum(tree_unflatten(mine)))
    mx.eval(module.parameters())


#: The arrays a module updates in training that are no parameter (BatchNorm's running statistics): each rank
#: updates them from its own batches, so they drift apart, where the trained weights stay equal.
RUNNING_STATISTICS = ("running_mean", "running_var")


def broadcast_running_statistics(module: Any) -> None:
    """Every rank takes rank 0's running statistics (`RUNNING_STATISTICS`, at any depth of `module`) and
    `register_buffer`'s buffers, as Lightning's DDP broadcasts rank 0's buffers: the model every rank
    validates is the one rank 0 saves. Nothing happens (and nothing is exchanged) in a module without them."""
    buffers = _buffer_paths(module)
    stats = [
        (name, value)
        for name, value in tree_flatten(module.parameters())
        if name.rsplit(".", 1)[-1] in RUNNING_STATISTICS
        # (a buffer a step updates from its rank's batch, a DINO centre, drifts apart as the statistics do;
        # a bool one cannot be summed, and no step averages one)
        or (name in buffers and isinstance(value, mx.array) and value.dtype != mx.bool_)
    ]
    if not stats:
        return
    zero = is_main_process()
    mine = [(name, value if zero else mx.zeros_like(value)) for name, value in stats]
    module.update(all_reduce_sum(tree_unflatten(mine)))
    mx.eval(module.parameters())


def _buffer_paths(module: Any) -> set[str]:
    """The dotted names (as `tree_flatten` gives them) of the arrays `register_buffer` made, at any depth."""
    paths: set[str] = set()
    for prefix, sub in module.named_modules():
        for name in vars(sub).get("_buffer_names", ()):
            paths.add(f"{prefix}.{name}" if prefix else name)
    return paths


class MainProcessFailed(RuntimeError):
    """Raised on the other ranks when work that rank 0 did alone (`on_main_process`) failed there; rank 0
    raises the error itself (and, in a recipe, prints it)."""


def on_main_process(fn: Callable[[], T]) -> T | None:
    """``fn()`` on rank 0 alone, then every rank learns whether it succeeded: rank 0 re-raises its error
    and the other ranks raise `MainProcessFailed` naming it.

    Without this, an error in work only rank 0 does (writing a run file, an evaluation) ends rank 0 while
    the others wait forever in their next collective. Returns ``fn()``'s result on rank 0 and None on the
    others; one `broadcast_from_main` (in one process, simply ``fn()``). KeyboardInterrupt is not caught:
    Ctrl-C reaches every rank of a job by itself.
    """
    if world_size() == 1:
        return fn()
    result, error = None, None
    if is_main_process():
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below, once every rank knows
            error = exc
    failure = broadcast_from_main(None if error is None else f"{type(error).__name__}: {error}")
    if error is not None:
        raise error
    if failure is not None:
        from audiotrain.distributed import failures

        # Rank 0 prints its error; this rank's exit would make mpirun end the job, rank 0 with it, maybe
        # before that line is out: leave the error for the launcher, and wait a moment, as error_left_to_main.
        failures.leave_error_for_launcher(f"rank 0 failed: {failure}")
        failures.wait_for_main_to_report()
        raise MainProcessFailed(f"rank 0 failed: {failure}")
    return result


def all_gather_object(value: Any) -> list[Any]:
    """Every rank's ``value`` (a small host value), in rank order, on every rank; ``[value]`` in one process.
    As ``torch.distributed.all_gather_object``: two ``all_sum`` calls. A value JSON gives back (numbers,
    strings, lists, dicts with string keys) travels as JSON; any other (numpy or MLX arrays, a validation
    set's scores and targets, a tuple, a dict with int keys) is pickled, as torch's is: each arrives as it
    was."""
    if world_size() == 1:
        return [value]
    return [_decoded(raw, sender) for sender, raw in enumerate(_exchange(_encoded(value)))]


# The first byte of a value's bytes says how it was written. A JSON-only exchange raised "TypeError: Object
# of type ndarray is not JSON serializable" under data parallel alone (one process returns [value]), so a
# script gathering its predictions passed its one-process try and failed on the cluster. Each rank picks its
# own encoding: the collectives that follow are the same two all_sums either way.
_JSON, _PICKLE = b"j", b"p"


def _encoded(value: Any) -> bytes:
    try:
        text = json.dumps(value)
        # JSON alone where it gives the value back: a tuple came back a list and {3: n} as {"3": n}, so
        # `counts[3]` raised KeyError under data parallel alone (one process returns the value itself).
        if json.loads(text) == value:
            return _JSON + text.encode()
    except (TypeError, ValueError):  # (not JSON's types; a circular reference; an array's ambiguous ==)
        pass
    return _PICKLE + pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _decoded(raw: bytes, sender: int) -> Any:
    """The value rank `sender` sent, from its bytes. A value always has some: none (or zeros) means its
    bytes never came, as where the ring "fails" the collective of a peer that died and hands this rank its
    own zeros back; that is said as a lost peer (which the failure line and the launcher then name as a
    consequence of the peer's failure), not as the JSONDecodeError of the empty bytes."""
    try:
        if raw[:1] == _PICKLE:
            # (bytes from this job's own ranks, which run the same code: unpickling them is as safe)
            return pickle.loads(raw[1:])
        if raw[:1] == _JSON:
            return json.loads(raw[1:].decode())
    except (ValueError, pickle.UnpicklingError, EOFError):  # (JSONDecodeError, UnicodeDecodeError)
        pass
    raise RuntimeError(f"rank {sender}'s value never came: the connection to that peer was lost")


def _exchange(payload: bytes) -> list[bytes]:
    """Every rank's ``payload`` by rank: each rank writes its bytes at its own place in a buffer of zeros,
    and one ``all_sum`` (after one for the lengths) fills in the others'."""
    n, r = world_size(), rank()
    lengths = np.zeros(n, np.int32)
    lengths[r] = len(payload)
    lengths = np.array(mx.distributed.all_sum(mx.array(lengths), group=group()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    if offsets[-1] == 0:
        return [b""] * n
    buf = np.zeros(int(offsets[-1]), np.uint8)
    buf[offsets[r] : offsets[r + 1]] = np.frombuffer(payload, np.uint8)
    # np.array evaluates the sum: every rank must, or the others wait forever for it.
    data = np.array(mx.distributed.all_sum(mx.array(buf), group=group()))
    return [data[offsets[i] : offsets[i + 1]].tobytes() for i in range(n)]
