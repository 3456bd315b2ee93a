"""CLAP audio front end: numerically equal to ``transformers.ClapFeatureExtractor``, without torch.

Settings come from the ``feature_extractor`` block of a checkpoint's ``processor_config.json`` (what
transformers 5 writes) or from its ``preprocessor_config.json`` (older versions). For
``laion/clap-htsat-unfused``: 48 kHz, 1024-point periodic Hann STFT, hop 480, centred reflect padding,
power 2, 64 Slaney mel bands (Slaney norm) from 50 Hz to 14 kHz, ``10 log10(max(1e-10, mel))``; clips are
10 s: shorter ones are repeated then zero-padded ("repeatpad"), longer ones randomly cropped
("rand_trunc"); output [B, 1, 1001, 64]. "fusion" checkpoints use HTK mel without norm and stack four
views [B, 4, 1001, 64]: the whole clip squeezed to 10 s plus three random 10 s chunks (front, middle,
back) for clips longer than 10 s, flagged by ``is_longer``.

Computation runs in float64 numpy (as transformers does), so it is safe in data-loader workers.
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, overload

from audiotrain._files import read_json_file, write_json_atomically
from audiotrain.features._backend import as_float_signal
from audiotrain.features.mel import mel_filterbank
from audiotrain.features.stft import power_frames

import mlx.core as mx  # (loaded already by audiotrain.features: named in annotations)
import numpy as np

__all__ = ["FRONT_END_FILES", "ClapFeatureExtractor"]

_TRUNCATIONS = ("rand_trunc", "fusion")
#: Where ``train=False`` takes a "rand_trunc" window of a longer clip: "centre" (what the CLAP recipe scores),
#: or "start" (what train=False took in earlier builds).
_WINDOWS = ("centre", "start")
_PADDINGS = ("repeatpad", "repeat", "pad")
# Keys transformers writes that are derived from the others or irrelevant to the features.
_DERIVED_OR_IGNORED = {
    "feature_extractor_type",
    "processor_class",
    "nb_frequency_bins",
    "nb_max_samples",
    "nb_max_frames",
    "padding_side",
    "return_attention_mask",
    "chunk_length_s",
    "n_fft",
}
# Where a checkpoint keeps the settings: transformers 5 writes only processor_config.json (nested under
# "feature_extractor"), older versions preprocessor_config.json (at the top level). Read as transformers 5
# reads them: the nested block when there is one, else preprocessor_config.json.
PROCESSOR_FILE, PREPROCESSOR_FILE = "processor_config.json", "preprocessor_config.json"
FRONT_END_FILES = (PROCESSOR_FILE, PREPROCESSOR_FILE)
_PROCESSOR_BLOCK = "feature_extractor"


def _read_json_object(path: Path) -> dict:
    """The JSON object in `path`, or a `ValueError` naming the file and what is wrong with it."""
    config = read_json_file(path, ValueError)
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(config).__name__}")
    return config


def as_return_tensors(outputs: dict, return_tensors, who: str) -> dict:
    """`outputs` (numpy arrays) as transformers' ``return_tensors`` asks: None or ``"np"`` numpy, ``"mlx"`` MLX
    arrays. Another (``"pt"``) is refused naming those taken: audiotrain runs without torch."""
    if return_tensors is None or return_tensors == "np":
        return outputs
    if return_tensors == "mlx":
        import mlx.core as mx

        return {name: mx.array(value) for name, value in outputs.items()}
    raise ValueError(
        f"{who}: return_tensors={return_tensors!r} is not available: use None or 'np' (numpy arrays) or "
        "'mlx' (MLX arrays); audiotrain runs without torch"
    )


def _randint(rng, high: int) -> int:
    """Uniform integer in [0, high) from a Generator, a RandomState or the ``np.random`` module."""
    if isinstance(rng, np.random.Generator):
        return int(rng.integers(0, high))
    return int(rng.randint(0, high))


def _resize_time_bilinear(mel: np.ndarray, n_out: int) -> np.ndarray:
    """``torch.nn.functional.interpolate(mode="bilinear", align_corners=False)`` of a float32 mel along axis 0.

    transformers resizes the float32 mel with torch, whose CPU kernel computes the source position and
    the blend with fused multiply-adds in float32; the float64 steps below reproduce those roundings.
    """
    n_in = mel.shape[0]
    mel = mel.astype(np.float32, copy=False)
    scale = np.float64(np.float32(n_in) / np.float32(n_out))
    dst = np.arange(n_out).astype(np.float32) + np.float32(0.5)
    src = np.maximum((scale * dst - 0.5).astype(np.float32), np.float32(0.0))  # fma(scale, dst, -0.5)
    i0 = np.minimum(src.astype(np.int64), n_in - 1)
    i1 = np.minimum(i0 + 1, n_in - 1)
    w1 = (src - i0.astype(np.float32))[:, None]
    w0 = np.float32(1.0) - w1
    return (w0.astype(np.float64) * mel[i0] + (w1 * mel[i1]).astype(np.float64)).astype(np.float32)


#: Upper bounds of the front end's sizes, far above LAION's (64 mels, 48 kHz, hop 480, 10 s, FFT 1024): an
#: absurd one (fft_window_size 2**34) would otherwise allocate the mel filterbank's gigabytes at load time.
_SETTING_LIMITS = {
    "feature_size": 1024,
    "sampling_rate": 768_000,
    "hop_length": 2**16,
    "max_length_s": 3600,
    "fft_window_size": 2**16,
}


def _json_number(value):
    """`value` with a whole float as an int (2.0 -> 2, exact), as transformers writes numbers."""
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# The numbers transformers writes as ints where they are whole (its own files hold "max_length_s": 10):
# every setting but padding_value (a float there too), and the derived sizes.
_WHOLE_NUMBER_KEYS = (
    "feature_size",
    "sampling_rate",
    "hop_length",
    "max_length_s",
    "fft_window_size",
    "frequency_min",
    "frequency_max",
    "top_db",
    "nb_frequency_bins",
    "nb_max_samples",
)


def front_end_json(config: dict, nested: bool = False) -> dict:
    """`config` (a front-end file's JSON object) with the whole-number floats of its numeric settings as ints
    (``"max_length_s": 2.0`` -> ``2``), as `ClapFeatureExtractor.to_dict` writes them; every other key and
    value, transformers' own extra keys included, is kept as it is. `nested`: the settings are those of the
    ``feature_extractor`` block (processor_config.json)."""
    if nested:
        if not isinstance(config.get(_PROCESSOR_BLOCK), dict):
            return config
        return {**config, _PROCESSOR_BLOCK: front_end_json(config[_PROCESSOR_BLOCK])}
    return {
        k: _json_number(v) if k in _WHOLE_NUMBER_KEYS and not isinstance(v, bool) else v
        for k, v in config.items()
    }


def _check_frequencies(settings: dict, source: str) -> None:
    """Refuse a mel band edge that is infinite, NaN or negative, or a frequency_min not below frequency_max,
    naming `source` and the field (an infinite one gave NaN features, found only as NaN embeddings); warn of
    a frequency_max above the Nyquist frequency (bands above it are empty; transformers reads it so too)."""
    low = settings.get("frequency_min", ClapFeatureExtractor.frequency_min)
    high = settings.get("frequency_max", ClapFeatureExtractor.frequency_max)
    for name, value in (("frequency_min", low), ("frequency_max", high)):
        if not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{source}: {name}: expected a finite number of Hz, 0 or more, got {value:g}")
    if not low < high:
        raise ValueError(f"{source}: frequency_min ({low:g}) must be below frequency_max ({high:g})")
    nyquist = settings.get("sampling_rate", ClapFeatureExtractor.sampling_rate) / 2
    if high > nyquist:
        warnings.warn(
            f"{source}: frequency_max: {high:g} Hz is above the Nyquist frequency of sampling_rate "
            f"({nyquist:g} Hz): the mel bands above it hold nothing",
            UserWarning,
            stacklevel=4,
        )


@dataclass
class ClapFeatureExtractor:
    """Log-mel front end of CLAP, configured like transformers' ``ClapFeatureExtractor``.

    Attributes mirror the keys of ``preprocessor_config.json`` (or of the ``feature_extractor`` block of
    ``processor_config.json``). ``top_db`` is stored but, as in transformers, not applied.
    """

    feature_size: int = 64
    sampling_rate: int = 48_000
    hop_length: int = 480
    max_length_s: float = 10
    fft_window_size: int = 1024
    padding_value: float = 0.0
    frequency_min: float = 0.0
    frequency_max: float = 14_000.0
    top_db: float | None = None
    truncation: str = "fusion"
    padding: str = "repeatpad"

    def __post_init__(self):
        if self.truncation not in _TRUNCATIONS:
            raise ValueError(f"truncation must be one of {_TRUNCATIONS}, got {self.truncation!r}")
        if self.padding not in _PADDINGS:
            raise ValueError(f"padding must be one of {_PADDINGS}, got {self.padding!r}")
        if self.hop_length < 1 or self.fft_window_size < 2 or self.feature_size < 1:
            raise ValueError("hop_length, fft_window_size and feature_size must be positive")
        if self.max_length_s != int(self.max_length_s):
            # transformers pads and slices to max_length_s * sampling_rate samples, a float then: its
            # ClapFeatureExtractor fails ("`pad_width` must be of integral type") on every other length.
            warnings.warn(
                f"ClapFeatureExtractor: max_length_s {self.max_length_s:g} is not a whole number of seconds; "
                "audiotrain uses it, but transformers' ClapFeatureExtractor, ClapProcessor and pipeline "
                "fail on any clip of another length with it: use whole seconds for a model transformers "
                "will read",
                UserWarning,
                stacklevel=3,
            )
        self.nb_max_samples = int(self.max_length_s * self.sampling_rate)
        # Where the settings were read from (`from_pretrained` sets them); not settings themselves.
        self.settings_file: Path | None = None
        self.settings_block: str | None = None
        # The settings the file left out, which took their defaults (`from_dict` sets them): for messages.
        self.left_out: tuple[str, ...] = ()
        mel_args = dict(
            sr=self.sampling_rate,
            n_fft=self.fft_window_size,
            n_mels=self.feature_size,
            fmin=self.frequency_min,
            fmax=self.frequency_max,
            dtype=np.float64,
        )
        # "fusion" checkpoints were trained on HTK mel without norm, the others on Slaney/Slaney.
        if self.truncation == "fusion":
            self.mel_filters = mel_filterbank(htk=True, norm=None, **mel_args)
        else:
            self.mel_filters = mel_filterbank(htk=False, norm="slaney", **mel_args)

    # ---- configuration -------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, config: dict, source: str = "config") -> ClapFeatureExtractor:
        """Build from a transformers-style dict; unknown keys or inconsistent derived keys raise."""
        known = {f.name for f in fields(cls)}
        kind = config.get("feature_extractor_type", "ClapFeatureExtractor")
        if kind != "ClapFeatureExtractor":
            raise ValueError(f"{source}: feature_extractor_type is {kind!r}, expected 'ClapFeatureExtractor'")
        unknown = set(config) - known - _DERIVED_OR_IGNORED
        if unknown:
            raise ValueError(f"{source}: unknown keys {sorted(unknown)}; expected some of {sorted(known)}")
        from audiotrain.models.clap.config import check_json_field

        # Types first: "sampling_rate": "fast" would otherwise fail as max_length_s * "fast", naming nothing.
        settings = {k: check_json_field(cls, k, v, f"{source}: {k}") for k, v in config.items() if k in known}
        for name in ("feature_size", "sampling_rate", "hop_length", "max_length_s", "fft_window_size"):
            if name in settings and settings[name] <= 0:
                raise ValueError(f"{source}: {name}: expected a positive number, got {settings[name]}")
            if name in settings and not settings[name] <= _SETTING_LIMITS[name]:  # (NaN too)
                raise ValueError(
                    f"{source}: {name}: expected at most {_SETTING_LIMITS[name]}, got {settings[name]}"
                )
        _check_frequencies(settings, source)
        # Checked here as well as in __post_init__, so the message names the file and field to edit.
        for name, allowed in (("truncation", _TRUNCATIONS), ("padding", _PADDINGS)):
            if name in settings and settings[name] not in allowed:
                raise ValueError(f"{source}: {name}: must be one of {allowed}, got {settings[name]!r}")
        extractor = cls(**settings)
        extractor.left_out = tuple(name for name in known if name not in config)
        e = extractor
        window = f"fft_window_size: {e.fft_window_size}"
        derived = {  # (each with the settings it follows from)
            "nb_frequency_bins": (e.fft_window_size // 2 + 1, f"{window} // 2 + 1", ("fft_window_size",)),
            "nb_max_samples": (
                e.nb_max_samples,
                f"max_length_s x sampling_rate: {e.max_length_s:g} x {e.sampling_rate}",
                ("max_length_s", "sampling_rate"),
            ),
            "n_fft": (e.fft_window_size, window, ("fft_window_size",)),
        }
        # Every contradiction in one message (a fix of the first was refused for the next).
        contradicted = [
            f"{key}={config[key]} contradicts the other settings (expected {expected}), {rule}"
            for key, (expected, rule, _) in derived.items()
            if key in config and config[key] != expected
        ]
        if contradicted:
            used = [name for key, (_, _, names) in derived.items() if key in config for name in names]
            note = extractor.defaults_note(used, source)
            raise ValueError(f"{source}: {'; '.join(contradicted)}" + (f"; {note}" if note else ""))
        return extractor

    def defaults_note(self, names, source: str | Path | None = None) -> str:
        """'SOURCE does not set NAME (default V), ...: ...' for those of `names` the settings file left out
        (a value a message gives that the file does not hold: the file's own fix is to add it), else ''."""
        left = [name for name in dict.fromkeys(names) if name in self.left_out]
        if not left:
            return ""
        shown = ", ".join(f"{self.field_name(name)} (default {getattr(self, name)!r})" for name in left)
        return (
            f"{source or self.settings_file} does not set {shown}: transformers' ClapFeatureExtractor "
            "defaults were taken, as transformers takes them; set the checkpoint's own values there"
        )

    @classmethod
    def from_pretrained(cls, folder: str | Path) -> ClapFeatureExtractor:
        """Read the settings from a checkpoint folder (or the path of one of its files).

        ``processor_config.json``, the only file ``ClapProcessor.save_pretrained`` writes in transformers 5,
        nests them in a ``"feature_extractor"`` block; ``preprocessor_config.json`` holds them at the top
        level. As in transformers 5, a folder with both is read from the block when there is one. A file of
        the folder that is a link leading outside it is refused, as `load_pretrained` refuses it.
        The extractor remembers where its settings came from (`settings_file`, `field_name`) for messages.
        """
        path = Path(folder).expanduser()  # ("~/ckpt", which CLAP() and load_pretrained take)
        if path.is_dir():
            from audiotrain.models.clap.loading import check_inside

            processor, preprocessor = path / PROCESSOR_FILE, path / PREPROCESSOR_FILE
            # A FIFO or a folder under either name is read, so refused naming it (`read_json_file`): taken as
            # missing, it was passed over without a word, or blamed on the other file.
            if os.path.lexists(processor):
                config = _read_json_object(check_inside(path, processor))
                if _PROCESSOR_BLOCK in config or not os.path.lexists(preprocessor):
                    return cls._from_file(config, processor)
            if os.path.lexists(preprocessor):
                return cls._from_file(_read_json_object(check_inside(path, preprocessor)), preprocessor)
            from audiotrain.models.clap.training_outputs import training_output_note

            raise FileNotFoundError(
                training_output_note(path)
                or f"{folder}: neither {' nor '.join(FRONT_END_FILES)} (a CLAP checkpoint folder was "
                "expected)"
            )
        if not path.is_file():
            text = str(folder)
            hub_id = not path.exists() and text.count("/") == 1 and not text.startswith((".", "/", "~"))
            raise FileNotFoundError(
                f"{path}: no such file (expected a CLAP checkpoint folder, or its "
                f"{' or '.join(FRONT_END_FILES)})"
                + (
                    "; from_pretrained takes a checkpoint folder, not a hub id: CLAP(id).config.source (or "
                    "load_pretrained(id)[1].source) is the folder the model was loaded from"
                    if hub_id
                    else ""
                )
            )
        return cls._from_file(_read_json_object(path), path)

    @classmethod
    def _from_file(cls, config: dict, path: Path) -> ClapFeatureExtractor:
        """The extractor of `config`, read from `path` (a processor_config.json nests it in a block)."""
        block = _PROCESSOR_BLOCK if path.name == PROCESSOR_FILE else None
        if block is None:
            extractor = cls.from_dict(config, source=str(path))
        elif isinstance(config.get(block), dict):
            extractor = cls.from_dict(config[block], source=f"{path}: {block}")
        else:
            raise ValueError(
                f"{path}: no '{block}' object (expected the ClapFeatureExtractor settings that transformers' "
                "ClapProcessor.save_pretrained writes there)"
            )
        extractor.settings_file, extractor.settings_block = path, block
        return extractor

    def field_name(self, name: str) -> str:
        """Setting `name` as the file it came from spells it (``feature_extractor.hop_length`` in a
        processor_config.json), for messages that tell the user what to edit."""
        return f"{self.settings_block}.{name}" if self.settings_block else name

    def to_dict(self) -> dict:
        """The transformers-format dict (round-trips through `from_dict`). Whole numbers are ints, as in
        transformers' own files: it computes ``nb_max_samples = max_length_s * sampling_rate`` and pads
        to it, so ``"max_length_s": 2.0`` made its extractor fail on every clip not exactly 2 s long."""
        return front_end_json(
            {
                **asdict(self),
                "feature_extractor_type": "ClapFeatureExtractor",
                "nb_frequency_bins": self.fft_window_size // 2 + 1,
                "nb_max_samples": self.nb_max_samples,
            }
        )

    def save_pretrained(self, folder: str | Path) -> Path:
        path = Path(folder) / "preprocessor_config.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomically(path, self.to_dict(), indent=2, sort_keys=True)
        return path

    @property
    def n_frames(self) -> int:
        """Frames per view: 1001 for 10 s at hop 480."""
        return self.nb_max_samples // self.hop_length + 1

    # ---- features ------------------------------------------------------------------------------
    def log_mel(self, waveform: np.ndarray) -> np.ndarray:
        """``10 log10(max(1e-10, mel power))`` of one or more waveforms: [..., frames, feature_size]."""
        power = power_frames(
            np.asarray(waveform, dtype=np.float64),
            n_fft=self.fft_window_size,
            hop_length=self.hop_length,
            window="hann",
            center=True,
            pad_mode="reflect",
            power=2.0,
            backend="numpy",
        )
        return 10.0 * np.log10(np.maximum(1e-10, power @ self.mel_filters.T))

    def _pad(self, waveform: np.ndarray) -> np.ndarray:
        n = len(waveform)
        if n < self.nb_max_samples:
            # (in float64, as transformers pads: a padding_value of 0.1 is not float32's 0.1)
            waveform = np.asarray(waveform, dtype=np.float64)
            if self.padding == "repeat":
                waveform = np.tile(waveform, self.nb_max_samples // n + 1)[: self.nb_max_samples]
            elif self.padding == "repeatpad":
                waveform = np.tile(waveform, self.nb_max_samples // n)
            waveform = np.pad(
                waveform, (0, self.nb_max_samples - len(waveform)), constant_values=self.padding_value
            )
        return waveform

    def _fusion_views(self, mel: np.ndarray, rng, train: bool) -> np.ndarray:
        chunk = self.n_frames
        ranges = np.array_split(np.arange(0, mel.shape[0] - chunk + 1), 3)
        ranges = [r if len(r) else np.array([0]) for r in ranges]
        if train:
            starts = [int(rng.choice(r)) for r in ranges]
        else:
            starts = [int(r[len(r) // 2]) for r in ranges]  # deterministic: the middle of each third
        mel = mel.astype(np.float32)  # transformers hands torch a float32 mel
        views = [_resize_time_bilinear(mel, chunk)] + [mel[s : s + chunk] for s in starts]
        return np.stack(views)

    def _one(self, waveform: np.ndarray, rng, train: bool, window: str) -> tuple[np.ndarray, bool]:
        max_len = self.nb_max_samples
        if len(waveform) > max_len:
            if self.truncation == "rand_trunc":
                # transformers always crops at random; a deterministic crop takes the centre, as the recipe's
                # evaluation does, so an embedding made here is the one its recall was measured on.
                centre = (len(waveform) - max_len) // 2 if window == "centre" else 0
                start = _randint(rng, len(waveform) - max_len + 1) if train else centre
                return self.log_mel(waveform[start : start + max_len])[None], True
            mel = self.log_mel(waveform)
            if mel.shape[0] == self.n_frames:  # longer by less than a hop: the whole clip fits one view
                return np.stack([mel] * 4), False
            return self._fusion_views(mel, rng, train), True
        mel = self.log_mel(self._pad(waveform))
        return (np.stack([mel] * 4) if self.truncation == "fusion" else mel[None]), False

    # The arrays as `return_tensors` says, for checkers and editors: "mlx" gives MLX arrays.
    @overload
    def __call__(
        self,
        waveforms: Any,
        rng: Any = None,
        train: bool = True,
        sampling_rate: int | None = None,
        *,
        return_tensors: Literal["mlx"],
        truncation: str | None = None,
        padding: str | bool | None = None,
        window: str = "centre",
    ) -> dict[str, mx.array]: ...
    @overload
    def __call__(
        self,
        waveforms: Any,
        rng: Any = None,
        train: bool = True,
        sampling_rate: int | None = None,
        *,
        return_tensors: Literal["np"] | None = None,
        truncation: str | None = None,
        padding: str | bool | None = None,
        window: str = "centre",
    ) -> dict[str, np.ndarray]: ...
    @overload
    def __call__(
        self,
        waveforms: Any,
        rng: Any = None,
        train: bool = True,
        sampling_rate: int | None = None,
        *,
        return_tensors: str | None = None,
        truncation: str | None = None,
        padding: str | bool | None = None,
        window: str = "centre",
    ) -> dict[str, np.ndarray] | dict[str, mx.array]: ...
    def __call__(
        self,
        waveforms: Any,
        rng: Any = None,
        train: bool = True,
        sampling_rate: int | None = None,
        *,
        return_tensors: str | None = None,
        truncation: str | None = None,
        padding: str | bool | None = None,
        window: str = "centre",
    ) -> dict[str, np.ndarray] | dict[str, mx.array]:
        """Features for a batch of mono waveforms.

        The keywords transformers' ``ClapFeatureExtractor.__call__`` shares with this one mean the same here.

        Parameters
        ----------
        waveforms : list of np.ndarray [samples], or np.ndarray [batch, samples] or [samples]
            Mono audio at ``self.sampling_rate``.
        rng : np.random.Generator or np.random.RandomState, or a list of them (one per waveform), optional
            Source of the random crops. None uses numpy's global state, as transformers does (a
            ``RandomState`` seeded like ``np.random.seed`` reproduces transformers' crops exactly). A list
            gives each clip its own crops, whatever batch it lands in (data parallel splits batches).
        train : bool
            Random crops (and, in fusion mode, transformers' trick of marking one random clip as longer
            when none is). ``False``: deterministic crops, the centre window (rand_trunc; see `window`) or
            the middle of each third (fusion), and ``is_longer`` left as measured.
        sampling_rate : int, optional
            Checked against ``self.sampling_rate``; left out, a `UserWarning` says the waveforms are taken to
            be at that rate (as transformers warns).
        return_tensors : {None, "np", "mlx"}
            numpy arrays (None, "np") or MLX arrays ("mlx"); another ("pt") is a `ValueError`.
        truncation, padding : str, optional
            This call's patterns in place of ``self.truncation`` / ``self.padding`` (``padding=True``: the
            extractor's), as in transformers; ``"fusion"`` or not also picks the mel filters, as there.
        window : {"centre", "start"}
            With ``train=False``, the window a "rand_trunc" extractor takes of a clip longer than it: its
            centre (the default: the window the CLAP recipe scores, so an embedding made here is the one its
            recall measured) or its start (what ``train=False`` took in earlier builds, to match
            embeddings made with them).

        Returns
        -------
        dict
            ``input_features``: float32 [batch, 1 or 4, frames (1001), feature_size];
            ``is_longer``: bool [batch].
        """
        as_return_tensors({}, return_tensors, "ClapFeatureExtractor")  # refused before the work, not after
        if window not in _WINDOWS:
            raise ValueError(f"window must be one of {_WINDOWS}, got {window!r}")
        if sampling_rate is None:
            # (as transformers' ClapFeatureExtractor warns: audio at another rate gives other features,
            # unsaid)
            warnings.warn(
                f"ClapFeatureExtractor: no sampling_rate given: the waveforms are taken to be at "
                f"{self.sampling_rate} Hz; pass sampling_rate= (the rate they were read at; resample audio "
                f"at another rate first: audiotrain.audio.resample(waveform, rate, {self.sampling_rate}), or "
                f"audiotrain.audio.load(path, sr={self.sampling_rate}) for a file)",
                UserWarning,
                stacklevel=2,
            )
            sampling_rate = self.sampling_rate
        truncation = self.truncation if truncation is None else truncation
        padding = self.padding if padding is None or padding is True else padding
        if (truncation, padding) != (self.truncation, self.padding):
            # An extractor with this call's patterns (checked there, its mel filters following truncation).
            extractor = replace(self, truncation=truncation, padding=padding)
            return extractor(
                waveforms, rng, train, sampling_rate, return_tensors=return_tensors, window=window
            )
        if sampling_rate is not None and sampling_rate != self.sampling_rate:
            # (an app's audio in memory has no file for audiotrain.audio.load to resample: name the call)
            raise ValueError(
                f"waveforms are at {sampling_rate} Hz; this extractor expects {self.sampling_rate} Hz: "
                f"resample each first, audiotrain.audio.resample(waveform, {sampling_rate}, "
                f"{self.sampling_rate}) (or audiotrain.audio.load(path, sr={self.sampling_rate}) for a file)"
            )
        if isinstance(waveforms, (list, tuple)) and waveforms and all(np.ndim(w) == 0 for w in waveforms):
            # A plain list of numbers is one clip, as transformers reads it (not clips of no samples).
            waveforms = np.asarray(waveforms)
        if not isinstance(waveforms, (list, tuple)):
            # One array: refused as every feature function refuses it (integer, bool or complex samples, a
            # scalar, channels-last audio: soundfile's stereo [samples, 2] was 132,300 clips of 2 samples).
            waveforms = as_float_signal(waveforms, "numpy", name="waveforms")
            if waveforms.ndim > 2:
                raise ValueError(f"expected mono waveforms [batch, samples], got shape {waveforms.shape}")
            waveforms = [waveforms] if waveforms.ndim == 1 else list(waveforms)
        if len(waveforms) == 0:
            raise ValueError("no waveforms given")
        rngs = rng if isinstance(rng, list) else [np.random if rng is None else rng] * len(waveforms)
        if len(rngs) != len(waveforms):
            raise ValueError(f"rng is a list of {len(rngs)} generators for {len(waveforms)} waveforms")
        for r in rngs:
            if not (isinstance(r, (np.random.Generator, np.random.RandomState)) or r is np.random):
                # A seed (rng=0) failed deep in the crop as "'int' object has no attribute 'choice'".
                raise TypeError(
                    "rng: expected a np.random.Generator or np.random.RandomState (or a list of them, one "
                    f"per waveform), got {type(r).__name__} {r!r:.40}; for a seed pass "
                    f"rng=np.random.RandomState({r!r:.20}) "
                    "(transformers' crops for np.random.seed of that seed)"
                )
        batch = []
        for i, wave in enumerate(waveforms):
            if np.ndim(wave) != 1:
                raise ValueError(
                    f"waveform {i} must be a non-empty mono array [samples], got shape {np.shape(wave)}"
                )
            # int16 samples would pass as values 32768 times too large; NaN would reach every frame. Kept in
            # its own float type: `log_mel` computes in float64 the samples it reads (a float64 copy of a
            # whole 10-minute recording here, twice its size, was made to read its first window).
            batch.append(as_float_signal(wave, "numpy", name=f"waveform {i}"))
        mels, longer = zip(*(self._one(w, r, train, window) for w, r in zip(batch, rngs)))
        is_longer = np.array(longer, dtype=bool)
        if self.truncation == "fusion" and train and not is_longer.any():
            is_longer[_randint(rngs[0], len(batch))] = True
        features = {"input_features": np.stack(mels).astype(np.float32), "is_longer": is_longer}
        return as_return_tensors(features, return_tensors, "ClapFeatureExtractor")
