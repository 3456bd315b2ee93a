"""Feature speed against librosa: seconds of audio per wall-second, ratios and max errors, in one run.

    python benchmarks/features.py            # 30 s clip and a batch of 32 x 5 s clips at 22050 Hz
    python benchmarks/features.py --rounds 7 --batch 64

Each candidate runs ``--rounds`` times, interleaved with the others so machine noise hits all of them
alike; the best time counts. ``cpu x`` is the same ratio in CPU seconds of this process (numpy / mlx
against librosa): less disturbed by other processes on a shared machine, but it charges every thread,
so it understates multi-threaded code on an idle machine. Errors are ``max |ours - librosa| / max |librosa|``. librosa's first call
JIT-compiles with numba (about 14 s); that warm-up is excluded.

Each input also gets a ``floor`` line: the one step that any implementation of the same numbers must
run, timed alone in the same rounds, and the ratio to librosa that it leaves as the ceiling. For mel it
is the FFT of every frame with the fastest FFT this machine has (scipy's pocketfft, float32, a thread per
core; MLX's own and numpy's are slower); for CQT it is the soxr decimation between octaves that librosa
itself runs (its output is what the CQT is defined on).
"""

from __future__ import annotations

import argparse
import os
import time

import audiotrain  # noqa: F401  (before mlx: loads the optimized BLAS)
from audiotrain.audio import resample
from audiotrain.features import cqt, melspectrogram, power_to_db
from audiotrain.features.signals import signal_set
from audiotrain.features.stft import frames_numpy

import librosa
import mlx.core as mx
import numpy as np
import scipy.fft

SR = 22050
MEL = {"n_fft": 2048, "hop_length": 512, "n_mels": 128}
CQT = {"hop_length": 512, "n_bins": 84, "bins_per_octave": 12}
# Our power_to_db (axis=None) measures top_db from the peak of the whole batch, as librosa did before 1.0;
# librosa 1.0 (Python >= 3.12) measures each clip by default, so it is told the same rule.
LIBROSA_WHOLE_ARRAY = {"axes": None} if int(librosa.__version__.split(".")[0]) >= 1 else {}


def _run(fn):
    out = fn()
    if isinstance(out, mx.array):
        mx.eval(out)
    return out


def _ours(kind: str, y, backend: str):
    if kind == "mel":
        return melspectrogram(y, sr=SR, backend=backend, **MEL)
    if kind == "log-mel":
        return power_to_db(melspectrogram(y, sr=SR, backend=backend, **MEL))
    return cqt(y, sr=SR, backend=backend, **CQT)


def _librosa(kind: str, y):
    if kind == "mel":
        return librosa.feature.melspectrogram(y=y, sr=SR, **MEL)
    if kind == "log-mel":
        return librosa.power_to_db(librosa.feature.melspectrogram(y=y, sr=SR, **MEL), **LIBROSA_WHOLE_ARRAY)
    return np.abs(librosa.cqt(y, sr=SR, **CQT))


def _floor(kind: str, y: np.ndarray):
    """The step every implementation must run (see the module docstring), as a callable."""
    if kind == "cqt":
        n_halvings = int(np.ceil(CQT["n_bins"] / CQT["bins_per_octave"])) - 1
        y32 = y.astype(np.float32)

        def decimate():
            signal = y32
            for _ in range(n_halvings):
                signal = resample(signal, 2, 1, res_type="soxr_hq")
            return signal

        return decimate
    frames = np.ascontiguousarray(
        frames_numpy(y.astype(np.float32), MEL["n_fft"], MEL["hop_length"], True, "constant")
    )
    workers = os.cpu_count() or 1
    return lambda: scipy.fft.rfft(frames, axis=-1, workers=workers)


def _rel_err(ours, ref) -> float:
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    return float(np.abs(ours - ref).max() / max(np.abs(ref).max(), 1e-30))


def bench(kind: str, y: np.ndarray, rounds: int) -> dict:
    y_mx = mx.array(y)
    candidates = {
        "librosa": lambda: _librosa(kind, y),
        "numpy": lambda: _ours(kind, y, "numpy"),
        "mlx": lambda: _ours(kind, y_mx, "mlx"),
        "floor": _floor(kind, y),
    }
    outputs = {name: np.asarray(_run(fn)) for name, fn in candidates.items()}  # warm-up (JIT, compile)
    best = dict.fromkeys(candidates, float("inf"))
    best_cpu = dict.fromkeys(candidates, float("inf"))
    for _ in range(rounds):
        for name, fn in candidates.items():
            # BLAS thread pools (numpy's OpenBLAS, MLX's) busy-wait for a while after a call; let them
            # park so one candidate's spinning threads do not steal the other core from the next one.
            time.sleep(0.2)
            start, start_cpu = time.perf_counter(), time.process_time()
            _run(fn)
            best[name] = min(best[name], time.perf_counter() - start)
            best_cpu[name] = min(best_cpu[name], time.process_time() - start_cpu)
    audio_seconds = y.size / SR
    return {
        "speed": {name: audio_seconds / t for name, t in best.items()},
        "ms": {name: 1e3 * t for name, t in best.items()},
        "cpu_ratio": {name: best_cpu["librosa"] / max(best_cpu[name], 1e-9) for name in ("numpy", "mlx")},
        "ceiling": best["librosa"] / best["floor"],
        "err": {name: _rel_err(outputs[name], outputs["librosa"]) for name in ("numpy", "mlx")},
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the long clip")
    parser.add_argument("--batch", type=int, default=32, help="number of short clips")
    parser.add_argument("--clip-seconds", type=float, default=5.0, help="length of each short clip")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(0)
    long_clip = signal_set(SR, args.seconds, rng)["mix"]
    short = signal_set(SR, args.clip_seconds, rng)
    clips = [short["mix"], short["chord"], short["chirp"], short["noise"]]
    batch = np.stack([np.roll(clips[i % 4], 997 * i) for i in range(args.batch)])

    print(f"device {mx.default_device()}, OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', '(auto)')}, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    print(
        "speed = seconds of audio per wall-second; ratio = ours / librosa; err = max|ours-librosa| / max|librosa|"
    )
    header = f"{'feature':<8} {'input':<14} {'librosa':>9} {'numpy':>9} {'mlx':>9} {'np x':>6} {'mlx x':>6} "
    print(header + f"{'np err':>9} {'mlx err':>9} {'cpu x':>11}  (ms: librosa / numpy / mlx)")
    for kind in ("mel", "log-mel", "cqt"):
        for label, y in (
            (f"{args.seconds:g} s clip", long_clip),
            (f"{args.batch} x {args.clip_seconds:g} s", batch),
        ):
            r = bench(kind, y, args.rounds)
            s, ms, err = r["speed"], r["ms"], r["err"]
            print(
                f"{kind:<8} {label:<14} {s['librosa']:>9.0f} {s['numpy']:>9.0f} {s['mlx']:>9.0f} "
                f"{s['numpy'] / s['librosa']:>6.1f} {s['mlx'] / s['librosa']:>6.1f} "
                f"{err['numpy']:>9.1e} {err['mlx']:>9.1e} {r['cpu_ratio']['numpy']:>5.1f}/{r['cpu_ratio']['mlx']:<5.1f}  "
                f"({ms['librosa']:.1f} / {ms['numpy']:.1f} / {ms['mlx']:.1f})",
                flush=True,
            )
            step, bound = (
                ("soxr decimation", "for any CQT that decimates with soxr, as librosa does")
                if kind == "cqt"
                else ("rfft of the frames", "with the fastest FFT installed here")
            )
            print(
                f"{'':<8} {'floor':<14} {step} alone: {ms['floor']:.1f} ms, so at most "
                f"{r['ceiling']:.1f}x librosa {bound}",
                flush=True,
            )


if __name__ == "__main__":
    main()
