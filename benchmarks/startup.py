"""Start-up cost of the command line: CPU seconds (user + sys) of each quick command, against bare Python.

    python benchmarks/startup.py                       # --help, a usage error, runs, cache info
    python benchmarks/startup.py --rounds 5
    python benchmarks/startup.py --checkpoint RUN --audio song.wav   # also chords predict on one file

A script that calls a recipe once per file (``for f in *.wav; do python -m audiotrain.recipes.chords
predict ...; done``) pays this start-up on every call. Each command runs ``--rounds`` times in a fresh
process, interleaved with the others so machine noise hits all alike; the best CPU time counts (CPU time,
not wall time: less disturbed by other processes on a shared machine). ``x python`` is that time over the
baseline ``python -c pass`` measured in the same rounds. ``runs`` lists an empty folder, ``cache info`` the
user's cache. ``heavy`` names the large packages the command
imported (from ``-X importtime``): what a quick command should not need.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

#: Packages that cost a quick command most (each tens to hundreds of ms), and audiotrain's heavy parts: the
#: trainer and the recipes' training modules (not the recipes' packages, which every recipe command imports).
HEAVY = (
    "mlx",
    "numpy",
    "scipy",
    "librosa",
    "numba",
    "soundfile",
    "torch",
    "transformers",
    "matplotlib",
    "omegaconf",
    "sklearn",
    "audiotrain.train.trainer",
    "audiotrain.recipes.chords.train",
    "audiotrain.recipes.clap.train",
)


def commands(runs_dir: Path, checkpoint: str | None, audio: str | None, out: Path) -> dict[str, list[str]]:
    py = [sys.executable]
    chords = [*py, "-m", "audiotrain.recipes.chords"]
    clap = [*py, "-m", "audiotrain.recipes.clap"]
    found = {
        "python -c pass (baseline)": [*py, "-c", "pass"],
        "import audiotrain": [*py, "-c", "import audiotrain"],
        "audiotrain --help": [*py, "-m", "audiotrain", "--help"],
        "audiotrain runs": [*py, "-m", "audiotrain", "runs", str(runs_dir)],
        "audiotrain cache info": [*py, "-m", "audiotrain", "cache", "info"],
        "chords --help": [*chords, "--help"],
        "chords predict --help": [*chords, "predict", "--help"],
        "chords evaluate --help": [*chords, "evaluate", "--help"],
        "chords score --help": [*chords, "score", "--help"],
        "chords train --help": [*chords, "train", "--help"],
        "chords --no_such_flag": [*chords, "--no_such_flag"],
        "chords predict --no_such_flag": [*chords, "predict", "--no_such_flag"],
        "clap --help": [*clap, "--help"],
        "clap evaluate --help": [*clap, "evaluate", "--help"],
        "clap --no_such_flag": [*clap, "--no_such_flag"],
    }
    if checkpoint and audio:
        found["chords predict (one file)"] = [
            *chords,
            "predict",
            "--checkpoint",
            checkpoint,
            audio,
            "-o",
            str(out / "song.lab"),
        ]
    return found


def cpu_seconds(argv: list[str]) -> float:
    """User + system CPU seconds of one run of `argv` (a child process, its output discarded)."""
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, _, usage = os.wait4(process.pid, 0)
    return usage.ru_utime + usage.ru_stime


def heavy_imports(argv: list[str]) -> list[str]:
    """The `HEAVY` packages `argv` imports, read from ``python -X importtime``'s report on stderr."""
    done = subprocess.run([argv[0], "-X", "importtime", *argv[1:]], capture_output=True, text=True)
    modules = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if "import time:" in line}
    return [name for name in HEAVY if any(m == name or m.startswith(name + ".") for m in modules)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each command; the best counts")
    parser.add_argument("--checkpoint", help="a chords run or checkpoint, to time `predict` on one file")
    parser.add_argument("--audio", help="the audio file `predict` transcribes (with --checkpoint)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, not {args.rounds}")
    if bool(args.checkpoint) != bool(args.audio):
        parser.error("--checkpoint and --audio go together: predict needs both")
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        (scratch / "runs").mkdir()
        found = commands(scratch / "runs", args.checkpoint, args.audio, scratch)
        best = dict.fromkeys(found, float("inf"))
        for _ in range(args.rounds):
            for name, command in found.items():
                best[name] = min(best[name], cpu_seconds(command))
        baseline = best["python -c pass (baseline)"]
        print(f"{'command':<32} {'cpu s':>7} {'x python':>9}  heavy imports")
        for name, command in found.items():
            heavy = ", ".join(heavy_imports(command)) or "-"
            print(f"{name:<32} {best[name]:7.3f} {best[name] / baseline:9.1f}  {heavy}")


if __name__ == "__main__":
    main()
