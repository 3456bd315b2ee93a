"""An offline demo folder of captioned synthetic sounds, so the CLAP recipe runs with no download.

Every clip is one of five sound types, each with its own attribute, at one of two loudness levels:

================  =====================  ==========================================
label             attribute              what it sounds like
================  =====================  ==========================================
sine tone         low / high pitch       a steady pure tone (110–220 Hz or 880–1760 Hz)
noise burst       dark / bright          low-passed or high-passed noise with an envelope
chirp             rising / falling       an exponential frequency sweep
clicks            slow / fast            a train of short clicks (3–5 or 15–25 per second)
buzz              low / high pitch       a square-ish wave rich in harmonics
================  =====================  ==========================================

Captions are drawn from paraphrase templates ("a loud low sine tone", "a deep steady tone, quite loud",
...), two or three per clip, so retrieval has to learn the attributes, not memorise one sentence. The
files deliberately mix sample rates (16 and 22.05 kHz), channel counts and formats (WAV and FLAC) to
exercise resampling and down-mixing. ``metadata.jsonl`` holds ``file_name``, ``caption`` (a list),
``split`` and ``label``.

The folder is a pure function of the parameters: it is written once (atomically) and reused when a
``demo.json`` with the same parameters is already there, and rendered again when a file it records is missing
or has another size (a damaged cache).
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import os
import re
import secrets
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

DEMO_VERSION = 1
#: The key of ``demo.json`` that records each file's size (how a damaged set is found without decoding it).
_SIZES = "file_bytes"
LABELS = ("sine tone", "noise burst", "chirp", "clicks", "buzz")
#: Where the CLAP recipe keeps its demo sets under the package's cache folder (`audiotrain._system.cache_dir`),
#: beside the chord recipe's ``demo/chords`` and the feature cache; ``python -m audiotrain cache`` lists them.
DEMO_FOLDER = Path("demo") / "clap"
#: What `make_caption_demo` writes in a set's folder: all ``python -m audiotrain cache clear`` deletes.
_SET_FILE = re.compile(r"demo\.json|metadata\.jsonl|clips/\d{4,}_[a-z_]+\.(wav|flac)")
_ATTRIBUTES = {
    "sine tone": ("low", "high"),
    "noise burst": ("dark", "bright"),
    "chirp": ("rising", "falling"),
    "clicks": ("slow", "fast"),
    "buzz": ("low", "high"),
}
_WORDS = {
    ("sine tone", "low"): ["a low sine tone", "a deep steady tone", "a low-pitched pure tone", "a low hum"],
    ("sine tone", "high"): [
        "a high sine tone",
        "a high-pitched pure tone",
        "a shrill steady beep",
        "a high whistle",
    ],
    ("noise burst", "dark"): ["a dark noise burst", "a muffled rumble of noise", "a low rumbling noise"],
    ("noise burst", "bright"): ["a bright noise burst", "a hissing burst of noise", "a sharp hiss"],
    ("chirp", "rising"): ["a rising chirp", "a sweep going up in pitch", "an upward frequency sweep"],
    ("chirp", "falling"): ["a falling chirp", "a sweep going down in pitch", "a downward frequency sweep"],
    ("clicks", "slow"): ["slow clicks", "slow ticking", "clicking at a slow pace"],
    ("clicks", "fast"): ["fast clicks", "rapid clicking", "a quick rattle of ticks"],
    ("buzz", "low"): ["a low buzz", "a deep buzzing drone", "a low harsh buzz"],
    ("buzz", "high"): ["a high buzz", "a high-pitched buzzing", "a thin nasal buzz"],
}
_LOUDNESS = {"quiet": ["quiet", "soft", "faint"], "loud": ["loud", "strong", "intense"]}
_TEMPLATES = ("{loud} {sound}", "{sound}, {loud}", "{sound}, played {loudly}")
_LOUDLY = {"quiet": "softly", "loud": "loudly"}


@dataclass(frozen=True)
class CaptionDemoConfig:
    """Parameters of the demo folder.

    Attributes
    ----------
    n_clips : int
        Total clips (train + held-out).
    eval_fraction : float
        Share of clips in the ``test`` split (the rest is ``train``).
    min_seconds, max_seconds : float
        Clip durations are uniform in this range.
    seed : int
    """

    n_clips: int = 80
    eval_fraction: float = 0.25
    min_seconds: float = 1.0
    max_seconds: float = 2.5
    seed: int = 0

    def __post_init__(self):
        if self.n_clips < 2:
            raise ValueError(f"n_clips must be at least 2 (a train and a test clip), got {self.n_clips}")
        if not 0 < self.eval_fraction < 1:
            raise ValueError(f"eval_fraction must be between 0 and 1, got {self.eval_fraction}")
        if not 0 < self.min_seconds <= self.max_seconds:
            raise ValueError(
                f"need 0 < min_seconds <= max_seconds, got {self.min_seconds}, {self.max_seconds}"
            )


def _envelope(n: int, sr: int, rng: np.random.Generator) -> np.ndarray:
    attack = max(1, int(sr * rng.uniform(0.005, 0.05)))
    release = max(1, int(sr * rng.uniform(0.02, 0.2)))
    env = np.ones(n)
    env[:attack] = np.linspace(0, 1, attack)[:n]
    env[-release:] = np.minimum(env[-release:], np.linspace(1, 0, min(release, n)))
    return env


def _lowpass_or_highpass(x: np.ndarray, sr: int, cutoff: float, high: bool) -> np.ndarray:
    spec = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(x.size, 1 / sr)
    spec *= (freqs >= cutoff) if high else (freqs <= cutoff)
    return np.fft.irfft(spec, n=x.size)


def synthesize(label: str, attribute: str, seconds: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """One mono sound, float64 in [-1, 1], peak-normalised (loudness is applied by the caller).

    Parameters
    ----------
    label : str
        One of `LABELS`.
    attribute : str
        The label's attribute (see the module table).
    seconds : float
    sr : int
        Sample rate in Hz.
    rng : np.random.Generator
    """
    if label not in _ATTRIBUTES or attribute not in _ATTRIBUTES[label]:
        raise ValueError(f"unknown sound {label!r} / {attribute!r}; choose from {_ATTRIBUTES}")
    n = int(round(seconds * sr))
    t = np.arange(n) / sr
    if label == "sine tone":
        f0 = rng.uniform(110, 220) if attribute == "low" else rng.uniform(880, 1760)
        x = np.sin(2 * np.pi * f0 * t + rng.uniform(0, 2 * np.pi))
    elif label == "buzz":
        f0 = rng.uniform(70, 140) if attribute == "low" else rng.uniform(500, 900)
        # A band-limited square wave: odd harmonics below Nyquist at 1/k amplitude.
        ks = np.arange(1, int(sr / 2 / f0), 2)
        x = np.sum(np.sin(2 * np.pi * f0 * np.outer(ks, t)) / ks[:, None], axis=0)
    elif label == "noise burst":
        noise = rng.normal(size=n)
        high = attribute == "bright"
        x = _lowpass_or_highpass(noise, sr, cutoff=(3000.0 if high else 400.0), high=high)
    elif label == "chirp":
        lo, hi = rng.uniform(150, 300), rng.uniform(2000, min(4000, sr / 2 - 500))
        f_start, f_end = (lo, hi) if attribute == "rising" else (hi, lo)
        k = (f_end / f_start) ** (1 / max(seconds, 1e-6))
        phase = 2 * np.pi * f_start * (k**t - 1) / np.log(k)
        x = np.sin(phase)
    else:  # clicks
        rate = rng.uniform(3, 5) if attribute == "slow" else rng.uniform(15, 25)
        x = np.zeros(n)
        click = np.exp(-np.arange(int(0.004 * sr)) / (0.0008 * sr)) * rng.choice([-1, 1])
        for start in (np.arange(0, seconds, 1 / rate) * sr).astype(int):
            seg = x[start : start + click.size]
            seg += click[: seg.size]
    x = x * _envelope(n, sr, rng)
    peak = np.max(np.abs(x))
    return x / peak if peak > 0 else x


def _captions(label: str, attribute: str, loudness: str, rng: np.random.Generator) -> list[str]:
    phrases = _WORDS[(label, attribute)]
    n = int(rng.integers(2, 4))
    captions: list[str] = []
    for _ in range(20):  # draw until n distinct captions (there are plenty of combinations)
        sound = phrases[int(rng.integers(len(phrases)))]
        template = _TEMPLATES[int(rng.integers(len(_TEMPLATES)))]
        loud = _LOUDNESS[loudness][int(rng.integers(3))]
        text = template.format(sound=sound, loud=loud, loudly=_LOUDLY[loudness])
        if template.startswith("{loud}"):
            # "a loud low sine tone": the adjective goes after the article, which must agree with it.
            article, _, rest = sound.partition(" ")
            if article in ("a", "an"):
                text = f"{'an' if loud[0] in 'aeiou' else 'a'} {loud} {rest}"
        text = text[0].upper() + text[1:]
        if text not in captions:
            captions.append(text)
        if len(captions) == n:
            break
    return captions


def demo_set_name(config: CaptionDemoConfig) -> str:
    """A folder name for the set of `config`: its main settings, readable, then a hash of the generator's
    version and every parameter, so that sets made otherwise (another release's generator, another
    ``eval_fraction``) sit side by side in a cache instead of blocking one another."""
    digest = hashlib.sha256(json.dumps(_manifest(config), sort_keys=True).encode()).hexdigest()[:8]
    return f"caption_demo-v{DEMO_VERSION}-n{config.n_clips}-seed{config.seed}-{digest}"


def make_caption_demo(folder: str | Path, config: CaptionDemoConfig | None = None) -> Path:
    """Write (or reuse) the demo folder and return its path.

    Parameters
    ----------
    folder : str or Path
        Where the folder goes. An existing folder is reused only if its ``demo.json`` matches `config`;
        any other existing non-empty folder is an error (it is never overwritten). A set whose files are
        missing or have other sizes than ``demo.json`` records (a damaged cache) is rendered again, with a
        note: its files are a pure function of `config`. Two processes making the same set at once each
        render it; the second to finish uses the first one's.
    config : CaptionDemoConfig, optional

    Returns
    -------
    Path
        The folder, containing ``metadata.jsonl``, ``demo.json`` and ``clips/*.wav|flac``.

    Raises
    ------
    FileExistsError
        `folder` holds something else (another set's ``demo.json``, other files).
    OSError
        The set cannot be written (a full disk: ``No space left on device``); nothing is left behind.
    """
    config = config or CaptionDemoConfig()
    folder = Path(folder)
    manifest = _manifest(config)
    damage = _damage(folder, manifest)
    if damage is None:
        return folder
    if damage != _ABSENT:
        print(f"note: the demo set {folder} is damaged ({damage}); rendering it again")
    folder.parent.mkdir(parents=True, exist_ok=True)
    rendered = _render(folder.parent, config, manifest)
    try:
        if damage != _ABSENT and _damage(folder, manifest) is not None:  # (not mended by another process)
            _move_aside(folder)
        try:
            os.replace(rendered, folder)  # onto nothing, or an empty folder
        except OSError as error:
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST) or _damage(folder, manifest) is not None:
                raise
            shutil.rmtree(rendered, ignore_errors=True)  # another process finished the same set first
    except BaseException:
        shutil.rmtree(rendered, ignore_errors=True)
        raise
    return folder


#: `_damage` of a folder that holds no set yet (absent or empty).
_ABSENT = "absent"


def _manifest(config: CaptionDemoConfig) -> dict:
    """What ``demo.json`` records of how the set was made (it adds the sizes of the files made)."""
    return {"version": DEMO_VERSION, **asdict(config)}


def _damage(folder: Path, manifest: dict) -> str | None:
    """None when `folder` holds the complete set of `manifest`; `_ABSENT` when it holds nothing; else what is
    damaged. Raises FileExistsError for a folder holding anything but a set of `manifest`."""
    marker = folder / "demo.json"
    if not marker.exists():
        if folder.exists() and any(folder.iterdir()):
            raise FileExistsError(f"{folder} exists and is not a demo folder; refusing to write into it")
        return _ABSENT
    try:
        recorded = json.loads(marker.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        if all(
            _SET_FILE.fullmatch(p.relative_to(folder).as_posix()) for p in folder.rglob("*") if p.is_file()
        ):
            return f"{marker} is not JSON"  # the files of a set, and nothing else
        recorded = None
    sizes = recorded.pop(_SIZES, None) if isinstance(recorded, dict) else None
    if recorded != manifest:
        raise FileExistsError(
            f"{folder} holds a demo folder made with other parameters ({marker}); delete it or pick another folder"
        )
    if not isinstance(sizes, dict):
        return f"{marker} records no file sizes (a set of an earlier audiotrain)"
    for name, size in sizes.items():
        path = folder / name
        if not path.is_file():
            return f"{path} is missing"
        if path.stat().st_size != size:
            return f"{path} holds {path.stat().st_size} bytes, not {size}"
    return None


def _render(parent: Path, config: CaptionDemoConfig, manifest: dict) -> Path:
    """The set of `config`, written into a new temporary folder in `parent` (returned); nothing is left there
    when writing fails."""
    import soundfile as sf

    rng = np.random.default_rng(config.seed)
    tmp = _new_folder(parent, ".caption_demo_")
    sizes: dict[str, int] = {}

    def write(name: str, data: bytes) -> None:
        (tmp / name).write_bytes(data)
        sizes[name] = len(data)

    try:
        (tmp / "clips").mkdir()
        combos = [
            (lab, att, loud) for lab in LABELS for att in _ATTRIBUTES[lab] for loud in ("quiet", "loud")
        ]
        order = rng.permutation(config.n_clips) % len(combos)  # balanced over the combinations
        n_eval = max(1, min(config.n_clips - 1, round(config.eval_fraction * config.n_clips)))
        is_eval = np.zeros(config.n_clips, dtype=bool)
        is_eval[rng.permutation(config.n_clips)[:n_eval]] = True
        lines = []
        for i, combo_index in enumerate(order):
            label, attribute, loudness = combos[int(combo_index)]
            sr = int(rng.choice([16000, 22050]))
            seconds = float(rng.uniform(config.min_seconds, config.max_seconds))
            x = synthesize(label, attribute, seconds, sr, rng)
            gain = rng.uniform(0.02, 0.06) if loudness == "quiet" else rng.uniform(0.5, 0.9)
            x = (gain * x).astype(np.float32)
            if rng.random() < 0.3:  # some stereo files, slightly different channels
                x = np.stack([x, 0.9 * x], axis=1)
            ext = "flac" if rng.random() < 0.25 else "wav"
            name = f"clips/{i:04d}_{label.replace(' ', '_')}.{ext}"
            # Encoded in memory, written by Python: a full disk is an OSError naming its cause, where
            # libsndfile writing the file says "System error." (the bytes are the same).
            encoded = io.BytesIO()
            sf.write(encoded, x, sr, subtype="PCM_16", format=ext.upper())
            write(name, encoded.getvalue())
            lines.append(
                {
                    "file_name": name,
                    "caption": _captions(label, attribute, loudness, rng),
                    "split": "test" if is_eval[i] else "train",
                    "label": label,
                }
            )
        write("metadata.jsonl", "".join(json.dumps(line) + "\n" for line in lines).encode("utf-8"))
        (tmp / "demo.json").write_text(json.dumps({**manifest, _SIZES: sizes}, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return tmp


def _new_folder(parent: Path, prefix: str) -> Path:
    """A new folder of a unique name in `parent`, with the permissions the umask gives (`tempfile.mkdtemp`
    makes it private: the set renamed from it would be unreadable to the other users of a shared cache)."""
    while True:
        folder = parent / f"{prefix}{secrets.token_hex(6)}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            continue


def _move_aside(folder: Path) -> None:
    """Take a damaged set out of the way (renamed, then deleted): a process reading it keeps its files."""
    aside = _new_folder(folder.parent, ".caption_demo_damaged_")
    try:
        os.replace(folder, aside / "set")
    except FileNotFoundError:
        pass  # moved by another process mending it too
    shutil.rmtree(aside, ignore_errors=True)


def is_demo_record(path: Path) -> bool:
    """Whether `path` is the ``demo.json`` that `make_caption_demo` wrote in a set's folder (how the set was
    made), not caption metadata of someone's folder that happens to bear the name."""
    if path.name != "demo.json" or not path.is_file():
        return False
    try:
        recorded = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    fields = {"version", *asdict(CaptionDemoConfig())}
    return isinstance(recorded, dict) and fields <= recorded.keys()


def demo_set_files(folder: Path) -> list[Path]:
    """The files of a demo set that `make_caption_demo` wrote in `folder` (none if it is no demo set)."""
    if not (folder / "demo.json").is_file():
        return []
    found = [folder / "demo.json", *folder.glob("metadata.jsonl"), *folder.glob("clips/*")]
    return [p for p in found if p.is_file() and _SET_FILE.fullmatch(p.relative_to(folder).as_posix())]
