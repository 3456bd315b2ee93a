"""Configuration of the chord recognition recipe: one `TrainingConfig` tree, written once.

`TrainingConfig` holds the training settings of the seed guide (learning_rate, weight_decay, batch_size,
num_epochs, warmup_epochs, scheduler, gradient_clip, label_smoothing, checkpoint_dir, save_every,
patience, min_delta, log_every, device) and nested sections for the data (`ChordDataConfig`), the features
(`ChordFeatureConfig`), the model (`ChordModelConfig`), the loss weights (`LossConfig`), decoding
(`DecodeConfig`) and the experiment loggers (`LoggerConfig`: ``--logger tensorboard,mlflow``,
``--logger.project``, ...). Every scalar field (and tuple of scalars, comma-separated) is a command-line flag (`--learning_rate`, `--model.d_model`, ...; see
`audiotrain.recipes.config_cli`) and the whole tree can come from a YAML file (`--config run.yaml`).

The defaults are sized so that `python -m audiotrain.recipes.chords` (demo data, no arguments) trains in a
few minutes on a 2-core CPU; `benchmark_config()` is the longer setting used by `benchmarks/chords.py`.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from audiotrain._blas import one_blas_thread
from audiotrain._keywords import suggesting_keywords
from audiotrain._system import GPU_BACKEND_HINT
from audiotrain._system import cache_dir as package_cache_dir
from audiotrain._warning_filters import ignoring_warnings
from audiotrain.audio import AudioError, channel_peaks, header_length, too_short_detail
from audiotrain.audio import load as load_audio
from audiotrain.chords.decode import DecodeConfig
from audiotrain.chords.vocabulary import NUM_CHORD_TYPES
from audiotrain.datasets.chord_demo import STYLES
from audiotrain.datasets.chord_songs import SPLIT_BY, crop_views
from audiotrain.features._config import key_settings
from audiotrain.features.cqt import C1_HZ, CQTConfig, cqt_frequencies
from audiotrain.features.mel import mel_filterbank, melspectrogram
from audiotrain.features.tuning import estimate_tuning
from audiotrain.models.chord_model import ChordModelConfig
from audiotrain.recipes.config_cli import (
    MAX_BATCH_SIZE,
    MAX_DEMO_ITEMS,
    MAX_EPOCHS,
    MAX_STEPS,
    MAX_WORKERS,
    OTHER_LIBRARIES_NAMES,
    PROGRESS_BAR_HELP,
    SEED_MAX,
    SettingError,
    check_fits_memory,
    check_setting,
    config_from_preset,
    settle_fields,
)
from audiotrain.train import flags
from audiotrain.train.loggers.config import LoggerConfig

import numpy as np

#: The demo styles that only ever evaluate: a model trained on them would no longer measure generalisation.
HELD_OUT_STYLES = ("independent", "band")


def default_cache_dir() -> Path:
    """Where demo data and feature caches live: `audiotrain._system.cache_dir` (``$AUDIOTRAIN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/audiotrain``, else ``~/.cache/audiotrain``), as for the CLAP recipe and ``python -m
    audiotrain cache``."""
    return package_cache_dir()


def _help(text: str, **extra: Any) -> dict[str, Any]:
    return {"help": text, **extra}


#: `TrainingConfig.device` values: MLX has one CPU and one GPU device (Metal on a Mac, CUDA on Linux).
DEVICES = ("auto", "cpu", "gpu", "cuda", "mps", "metal")


#: The version of the feature code (`ChordFeatureConfig.compute`: the CQT, the tuning estimate, the bass view,
#: the log compression). Bump when the computed features change: it is part of the feature cache's key, so a
#: cache filled by an older audiotrain is not served to a newer one (the settings alone stay the same). Pinned
#: in tests/test_chord_features_version.py. 2: computed on one BLAS thread (`one_blas_thread`), where version 1
#: had the last bits of the computing process's thread count, so a cache filled by another run is not served.
FEATURES_VERSION = 2

#: `ChordFeatureConfig.kind` values.
FEATURE_KINDS = ("cqt", "mel")

#: The FFT length of ``kind="mel"`` features, in samples: 186 ms at 22050 Hz, so that FFT bins (5.4 Hz apart)
#: are narrower than the lowest mel bands; not a setting, to keep the mel option small.
MEL_N_FFT = 4096

# Set while a checkpoint's settings are read (`ChordFeatureConfig.from_stored`): they are not refused for
# empty mel bands, which a run trained before that check may have.
_READING_STORED: ContextVar[bool] = ContextVar("reading_stored_feature_settings", default=False)

#: The settings that move along the CQT's semitone grid, with their values under each kind: a flag or file
#: that sets `ChordFeatureConfig.kind` resets them to these (`ChordFeatureConfig.settings_following`).
_GRID_SETTINGS = {
    "cqt": {"max_pitch_shift": 6, "bass_view_bins": 108, "tuning_correction": True},
    "mel": {"max_pitch_shift": 0, "bass_view_bins": 0, "tuning_correction": False},
}

#: Frames of a recording's CQT computed at a time (`ChordFeatureConfig.compute`). The whole-recording CQT
#: held every frame's samples at once: a 60-minute recording peaked at 2.6 GB. 4096 frames are 6.3 minutes at
#: the default 10.8 fps, so songs up to about that long are computed whole; a longer one is computed in blocks
#: of it, each with about 7 s of audio on either side (4% more work), equal to the whole CQT to float32
#: rounding (tests/test_chord_features_blocks.py).
FEATURE_BLOCK_FRAMES = 4096

#: Hop-long blocks of audio `frame_levels_db` reads at a time (8 MB of float32 at the default hop).
LEVEL_BLOCKS = 1024

#: Audio whose every sample stays below this level is digital silence (a failed export, a muted bounce):
#: -90 dBFS is about the smallest step of 16-bit audio, so its loudest sample is 0 or that one step of dither.
#: It holds no chord to learn or to score; the decoder's ``silence_db`` cannot see it, being relative to the
#: song's own playing level. Songs annotated with chords over it are skipped; predict writes N for it.
SILENCE_PEAK_DBFS = -90.0
#: How much louder than a signal's peak its CQT magnitude can be: 84 times for a sine at C1, the longest
#: filters (tests/test_recipe_chords.py measures it); ten times that is a bound features can be checked with.
_CQT_PEAK_GAIN_BOUND = 1000.0
#: How every skip of a song whose mono mix is digital silence begins (`SILENT_SONG`, `silent_song_reason`).
DIGITAL_SILENCE = "audio is digital silence"
SILENT_SONG = (
    f"{DIGITAL_SILENCE} (no sample above {SILENCE_PEAK_DBFS:g} dBFS, about the smallest step of 16-bit "
    "audio) though its annotation names chords (a failed export?)"
)


def is_digital_silence(y: np.ndarray) -> bool:
    """Whether no sample of audio `y` reaches `SILENCE_PEAK_DBFS`."""
    return not np.any(np.abs(y) >= 10.0 ** (SILENCE_PEAK_DBFS / 20.0))


def cancelling_channels(audio_path: str | Path) -> tuple[int, float] | None:
    """For a file whose mono mix is digital silence: (its channels, the peak in dBFS of the loudest) where
    that channel alone is not silence (the channels cancel in the mix: one in inverted polarity, a miswired
    microphone), else None (a silent file: a failed export)."""
    peaks = channel_peaks(audio_path)
    loudest = float(peaks.max())
    if len(peaks) > 1 and loudest >= 10.0 ** (SILENCE_PEAK_DBFS / 20.0):
        return len(peaks), float(20 * np.log10(loudest))
    return None


def silent_song_reason(audio_path: str | Path) -> str:
    """Why a song whose mono mix is digital silence under chords is skipped: `SILENT_SONG`, or, where its
    channels cancel in the mix (`cancelling_channels`), that: "a failed export?" sent users looking for an
    export that was fine."""
    cancelling = cancelling_channels(audio_path)
    if cancelling is None:
        return SILENT_SONG
    channels, peak_db = cancelling
    return (
        f"{DIGITAL_SILENCE} once its {channels} channels are mixed to mono, though its loudest channel alone "
        f"peaks at {peak_db:.1f} dBFS (a channel in inverted polarity?), and its annotation names chords; to "
        "use it, extract one channel first (e.g. sox IN.wav OUT.wav remix 1)"
    )


#: Most frames in a window (6.3 minutes at 10.8 fps): attention holds window² scores per head, so a
#: checkpoint's window_frames of 10**9 would ask for gigabytes before anything is predicted.
MAX_WINDOW_FRAMES = 4096

#: Most CQT bins a frame may have: what the model reads (`ChordModelConfig`'s n_bins limit), 113 octaves at
#: the default 36 bins per octave. 10**12 bins asked numpy for 7 TiB before any check could say so.
MAX_FEATURE_BINS = 4096

#: The largest `ChordFeatureConfig.log_gain`. Past a few thousand a larger gain only adds log(gain) to every
#: loud bin; near 1e35 log_gain * |CQT| overflows float32 to inf features (1e308 in a hand-edited checkpoint
#: was "type_probs holds 1056 non-finite values", naming neither the file nor the setting).
MAX_LOG_GAIN = 1e12

#: The lowest `ChordFeatureConfig.fmin`: no pitch is heard below it (C1, the default, is 32.7 Hz; the lowest
#: piano key 27.5 Hz), and the CQT's filters grow as 1 / fmin.
MIN_FMIN_HZ = 1.0


#: The bass view's filter length relative to the main CQT's (`ChordFeatureConfig.bass_view_filter_scale`).
_BASS_VIEW_FILTER_SCALE = 0.5


@dataclass
class ChordFeatureConfig:
    """Log-compressed CQT frames, with spare bins on both sides for pitch-shift augmentation; with
    `tuning_correction`, each recording's CQT is computed with its bins moved by its estimated tuning
    (`audiotrain.features.tuning`), so that every song's notes sit on the bins' centres.

    With ``kind="mel"``, log-compressed mel bands instead (`audiotrain.features.melspectrogram`): `n_bins`
    bands from `fmin` to `mel_fmax`. Their bands are not a semitone grid, so what moves along one (pitch
    shifting, the bass view, tuning correction) is off: `max_pitch_shift` and `bass_view_bins` must be 0 and
    `tuning_correction` false, which a flag or file that sets ``kind`` makes the default
    (`settings_following`). Bands that fall between the FFT's bins (always 0) are refused, and `bins_per_octave`
    is still a multiple of 12: the training windows take their semitone step from it."""

    kind: str = field(
        default="cqt",
        metadata=_help(
            "cqt: constant-Q bins (a semitone grid); mel: mel bands (n_bins bands from fmin to mel_fmax, "
            "no pitch shifting, bass view or tuning correction)",
            choices=FEATURE_KINDS,
        ),
    )

    sr: int = field(default=22050, metadata=_help("sample rate the audio is resampled to, Hz"))
    hop_length: int = field(
        default=2048, metadata=_help("hop between frames in samples (2048 at 22050 Hz: 10.8 fps)")
    )
    n_bins: int = field(default=216, metadata=_help("CQT bins (mel: mel bands) the model sees per frame"))
    bins_per_octave: int = field(default=36, metadata=_help("CQT bins per octave (a multiple of 12)"))
    fmin: float = field(
        default=C1_HZ,
        metadata=_help(
            "centre frequency of the lowest model bin, Hz (C1); mel: the lowest band's lower edge"
        ),
    )
    mel_fmax: float | None = field(
        default=None,
        metadata=_help("mel only: the highest band's upper edge, Hz (None: the Nyquist frequency sr / 2)"),
    )
    max_pitch_shift: int = field(
        default=6,
        metadata=_help(
            "semitones of spare bins computed on each side: how far data.pitch_shift and predict --tta can "
            "shift (6: all 12 keys)"
        ),
    )
    log_gain: float = field(
        default=100.0, metadata=_help("features are log(1 + log_gain * |CQT|) (mel: * the mel magnitude)")
    )
    # The CQT's filters are about 1.5 s long at C1 (0.4 s at C3): a bass note's first half second is heard
    # under the previous one's tail. The bass view computes the lowest three octaves again with half-length
    # filters, for the bass head only (the chord heads keep the sharper pitch of the long ones). Fifteenth
    # round in `benchmarks/chords_rounds.md`, six seeds: on the training style's held-out songs +1.8
    # majmin_inv and +2.0 sevenths_inv (higher on every seed); on the independent style within 0.2 of without.
    # Filters 0.33 or 0.7 long, or a view of four octaves, did worse on the independent style.
    bass_view_bins: int = field(
        default=108,
        metadata=_help(
            "bins of a second CQT view of the lowest notes (from fmin), with shorter filters, for the bass "
            "head (0: none)"
        ),
    )
    bass_view_filter_scale: float = field(
        default=_BASS_VIEW_FILTER_SCALE,
        metadata=_help("filter length of the bass view, relative to the main CQT's"),
    )
    tuning_correction: bool = field(
        default=True,
        metadata=_help(
            "estimate each recording's tuning (up to +-50 cents) and move its CQT onto the A440 grid"
        ),
    )

    def __post_init__(self):
        if self.kind not in FEATURE_KINDS:
            raise ValueError(
                f"features.kind (--features.kind) must be one of {FEATURE_KINDS}, got {self.kind!r}"
            )
        # Bounds on what a recording's features can be: a checkpoint holding hop_length 1e9 transcribed
        # every song as one frame of N. Named as flags; a checkpoint's loader names its file around them.
        if not isinstance(self.n_bins, int) or not 1 <= self.n_bins <= MAX_FEATURE_BINS:
            raise ValueError(
                f"features.n_bins (--features.n_bins) must be an integer from 1 to {MAX_FEATURE_BINS}, "
                f"got {self.n_bins!r}"
            )
        if not isinstance(self.sr, int) or not 1000 <= self.sr <= 384_000:
            raise ValueError(f"features.sr (--features.sr) must be 1000 to 384000 Hz, got {self.sr!r}")
        if not isinstance(self.hop_length, int) or self.hop_length < 1:
            raise ValueError(
                f"features.hop_length (--features.hop_length) must be a whole number of samples >= 1, "
                f"got {self.hop_length!r}"
            )
        if self.hop_length > self.sr:  # (the CQT's step, checked below, allows only some values under it)
            raise ValueError(
                f"features.hop_length (--features.hop_length) must be at most sr = {self.sr} samples (at least "
                f"a frame per second), got {self.hop_length}"
            )
        # (NaN fails every comparison.) Under MIN_FMIN_HZ the lowest filters grow past what MLX can hold (1e-300
        # Hz: "Maximum allowed dimension exceeded"; 1e-3 Hz took 75 s to plan); from the Nyquist frequency up
        # no bin fits, and 1e308 Hz overflowed the CQT's own check to "cannot convert float NaN to integer".
        if not MIN_FMIN_HZ <= self.fmin < self.sr / 2:
            raise ValueError(
                f"features.fmin (--features.fmin) must be a finite frequency from {MIN_FMIN_HZ:g} Hz to below "
                f"the Nyquist frequency sr / 2 = {self.sr / 2:g} Hz, got {self.fmin}"
            )
        if not 0 < self.log_gain <= MAX_LOG_GAIN:  # (NaN fails it too)
            raise ValueError(
                f"features.log_gain (--features.log_gain) must be > 0 and at most {MAX_LOG_GAIN:g}, got "
                f"{self.log_gain}"
            )
        # Checked for mel too: its training windows still take bins_per_semitone from it (`song_config`), so
        # `--features.kind mel --features.bins_per_octave 7` died after computing the features, naming no flag.
        if (
            not isinstance(self.bins_per_octave, int)
            or self.bins_per_octave < 12
            or self.bins_per_octave % 12
        ):
            raise ValueError(
                "features.bins_per_octave (--features.bins_per_octave) must be a multiple of 12 (12, 24, 36, "
                f"...), got {self.bins_per_octave!r}"
            )
        if self.kind == "mel":
            self._check_mel()
            return
        if self.mel_fmax is not None:
            raise ValueError(
                f"features.mel_fmax (--features.mel_fmax) is for features.kind mel only, got {self.mel_fmax} "
                "with features.kind cqt"
            )
        if self.tuning_correction and self.bins_per_octave < 36:
            # With b bins per semitone `estimate_tuning` reads the phase of the spectrum's period-b pattern;
            # at b = 2 that coefficient is real (phase 0 or pi) and at b = 1 there is none: no offset within a
            # semitone can be read, and the correction would silently do nothing.
            raise ValueError(
                "features.tuning_correction (--features.tuning_correction) needs features.bins_per_octave "
                f"(--features.bins_per_octave) of at least 36 (3 bins per semitone), got {self.bins_per_octave}; "
                "raise bins_per_octave or set tuning_correction false"
            )
        if not isinstance(self.bass_view_bins, int) or self.bass_view_bins < 0:
            raise ValueError(
                "features.bass_view_bins (--features.bass_view_bins) must be an integer >= 0, "
                f"got {self.bass_view_bins!r}"
            )
        if self.bass_view_bins > self.n_bins:  # (either may be the one the user set: both are named)
            raise ValueError(
                f"features.bass_view_bins (--features.bass_view_bins) = {self.bass_view_bins} is above "
                f"features.n_bins (--features.n_bins) = {self.n_bins} (the bass view is the lowest "
                "bass_view_bins of the n_bins CQT bins); raise n_bins or lower bass_view_bins"
            )
        if not 0.05 <= self.bass_view_filter_scale <= 1.0:
            raise ValueError(
                "features.bass_view_filter_scale (--features.bass_view_filter_scale) must be from 0.05 to 1, "
                f"got {self.bass_view_filter_scale!r}"
            )
        if not isinstance(self.max_pitch_shift, int) or self.max_pitch_shift < 0:
            raise ValueError(
                "features.max_pitch_shift (--features.max_pitch_shift) must be an integer >= 0, "
                f"got {self.max_pitch_shift!r}"
            )
        if self.max_pitch_shift >= self._shift_past_nyquist():
            self._refuse_spare_bins_past_nyquist()
        try:
            cqt = self.cqt_config()  # validates the rest (Nyquist, hop)
        except ValueError:
            self._refuse_spare_bins_past_nyquist()  # the spare bins past Nyquist: named as the flag
            raise
        # The CQT computes each octave at half the sample rate of the one above, its hop halved with it
        # (`audiotrain.features.cqt`): the hop must halve down to the lowest octave. Where it cannot, the
        # lower octaves' filters run at the full rate, up to 64x longer, on every hop: hop_length 7 asked
        # 32 GB for a 6 s song. At 64 (the least at the defaults) the CQT takes ~15 MB per second of audio.
        step = 2 ** (math.ceil(cqt.total_bins / self.bins_per_octave) - 1)
        if self.hop_length % step:
            lower, upper = self.hop_length // step * step, (self.hop_length // step + 1) * step
            nearest = " or ".join(str(h) for h in (lower, upper) if 0 < h <= self.sr)
            raise ValueError(
                f"features.hop_length (--features.hop_length) must be a multiple of {step} (the CQT's "
                f"{math.ceil(cqt.total_bins / self.bins_per_octave)} octaves each halve the sample rate and "
                f"the hop), from {step} to sr = {self.sr}; got {self.hop_length}"
                + (f" (use {nearest})" if nearest else " (use fewer octaves: a higher fmin or fewer bins)")
            )

    def _check_mel(self) -> None:
        if self.mel_fmax is not None and not self.fmin < self.mel_fmax <= self.sr / 2:
            raise ValueError(
                f"features.mel_fmax (--features.mel_fmax) must be above features.fmin = {self.fmin:g} Hz "
                f"and at most the Nyquist frequency sr / 2 = {self.sr / 2:g} Hz, got {self.mel_fmax}"
            )
        # A band narrower than the FFT's bin spacing can fall between two bins and stay 0 on every song: the
        # library's warning named n_fft and n_mels, neither of them a flag here, and the run trained on
        # (--features.fmin 11000: 208 of 216 bands always 0). Not for a checkpoint's settings: its model was
        # trained on those bands (before this check), and predict, evaluate and a resume must still read it.
        if _READING_STORED.get():
            return
        with ignoring_warnings(category=UserWarning):  # (catch_warnings: every config reset the registries)
            bank = mel_filterbank(self.sr, MEL_N_FFT, self.n_bins, self.fmin, self.mel_fmax)
        empty = int(np.sum(bank.max(axis=1) <= 0))
        if empty:
            fmax = self.sr / 2 if self.mel_fmax is None else self.mel_fmax
            raise ValueError(
                f"features.n_bins (--features.n_bins) = {self.n_bins} mel bands from features.fmin "
                f"(--features.fmin) = {self.fmin:g} Hz to features.mel_fmax (--features.mel_fmax) = {fmax:g} "
                f"Hz leave {empty} of them between the {MEL_N_FFT}-sample FFT's bins "
                f"({self.sr / MEL_N_FFT:.2f} Hz apart), always 0; use fewer n_bins, a lower fmin or a higher "
                "mel_fmax"
            )
        # Each of these moves along the CQT's semitone grid; mel bands are not one, so it would be wrong.
        # All are named at once: ChordFeatureConfig(kind="mel") from Python keeps the CQT's three defaults.
        wrong = [
            f"features.{name} (--features.{name}) must be {str(off).lower()} with features.kind mel, "
            f"got {getattr(self, name)!r}"
            for name, off in _GRID_SETTINGS["mel"].items()
            if getattr(self, name) != off
        ]
        if wrong:
            raise ValueError(
                f"{'; '.join(wrong)}: mel bands are not a semitone grid (pitch shifting, the bass view and "
                "tuning correction are CQT only)"
            )
        # CQT-only settings, refused beside mel as mel_fmax is beside the CQT: they computed the same mel
        # features in a second cache folder, and refused --init_from between two such runs. bins_per_octave
        # is not left out of the key instead: the training windows' random EQ reads octaves from it.
        for setting in fields(self):
            value = getattr(self, setting.name)
            if setting.name in ("bins_per_octave", "bass_view_filter_scale") and value != setting.default:
                raise ValueError(
                    f"features.{setting.name} (--features.{setting.name}) is for features.kind cqt only, got "
                    f"{value!r} with features.kind mel (leave it at its default, {setting.default})"
                )

    @classmethod
    def settings_following(cls, current: ChordFeatureConfig, changes: dict[str, Any]) -> dict[str, Any]:
        """`changes` with, where they change `kind`, the new kind's values of the grid settings it does not
        set itself: ``--features.kind mel`` alone must not be refused for the CQT's default pitch shift."""
        kind = changes.get("kind", current.kind)
        if kind == current.kind or kind not in _GRID_SETTINGS:
            return changes
        return {**_GRID_SETTINGS[kind], **changes}

    @staticmethod
    def differences(there: dict[str, Any], here: dict[str, Any]) -> tuple[list[str], str]:
        """The feature settings that differ between `there` and `here` (each as `asdict` gives it), sorted,
        less the grid settings that only follow a different `kind` (each at its kind's value, which
        ``--features.kind`` sets with it: `settings_following`), and what to say of a different kind: the one
        flag that gives `there`'s ("" where the kind is the same). A refused resume listed four settings for a
        mel checkpoint resumed without ``--features.kind mel``, three of them never set by the user."""
        changed = sorted(k for k in set(there) | set(here) if there.get(k) != here.get(k))
        kind_there, kind_here = there.get("kind"), here.get("kind")
        if kind_there == kind_here or kind_there not in _GRID_SETTINGS or kind_here not in _GRID_SETTINGS:
            return changed, ""
        grid_there, grid_here = _GRID_SETTINGS[kind_there], _GRID_SETTINGS[kind_here]
        following = [
            name
            for name in changed
            if name in grid_there
            and there.get(name) == grid_there[name]
            and here.get(name) == grid_here[name]
        ]
        hint = f"--features.kind {kind_there} gives the checkpoint's"
        if following:
            *rest, last = [f"features.{name}" for name in following]
            hint += ", and with it its " + (f"{', '.join(rest)} and {last}" if rest else last)
        return [k for k in changed if k not in following], hint

    def _refuse_spare_bins_past_nyquist(self) -> None:
        """Refuse a `max_pitch_shift` whose spare bins above the model's pass the Nyquist frequency, naming the
        flag and its largest value that fits: the CQT's own error advises fewer bins, a lower fmin or a higher
        sr, while the user changed only this. Returns where the shift is not what fails."""

        def fits(semitones: int) -> bool:
            try:
                self._cqt_config(semitones * self.bins_per_semitone)
            except ValueError:
                return False
            return True

        self._refuse_model_bins_past_nyquist()
        fails = min(self.max_pitch_shift, self._shift_past_nyquist())
        if fails == 0 or fits(fails):
            return
        most = 0  # fits(most), not fits(fails)
        while fails - most > 1:
            middle = (most + fails) // 2
            most, fails = (middle, fails) if fits(middle) else (most, middle)
        raise ValueError(
            f"features.max_pitch_shift (--features.max_pitch_shift) must be at most {most} at sr {self.sr}, "
            f"fmin {self.fmin:g} Hz and n_bins {self.n_bins}, got {self.max_pitch_shift}: it computes "
            f"{self.bins_per_semitone} spare bins a semitone on each side, and those above the model's would "
            f"reach past the Nyquist frequency {self.sr / 2:g} Hz (6 already covers all 12 keys)"
        )

    def _refuse_model_bins_past_nyquist(self) -> None:
        """Refuse model bins whose filters pass the Nyquist frequency, naming the four settings as flags: the
        CQT's own error names none, and advised "fewer bins, a lower fmin or a higher sr" where the user had
        changed bins_per_octave (216 bins at 12 a octave span 18 octaves)."""
        try:
            self._cqt_config(0)
        except ValueError as err:  # (the other CQT settings are checked above: Nyquist is what is left)
            raise ValueError(
                f"features.n_bins (--features.n_bins) = {self.n_bins} at features.bins_per_octave "
                f"(--features.bins_per_octave) = {self.bins_per_octave} span "
                f"{self.n_bins / self.bins_per_octave:g} octaves from features.fmin (--features.fmin) = "
                f"{self.fmin:g} Hz, past the Nyquist frequency of features.sr (--features.sr) = {self.sr} "
                f"({str(err).partition(': use ')[0]}); use fewer n_bins, more bins_per_octave, a lower fmin or "
                "a higher sr"
            ) from None

    def _shift_past_nyquist(self) -> int:
        """The smallest `max_pitch_shift` whose top spare bin's centre is past the Nyquist frequency (its
        filters are, sooner): computed, so that no CQT of a billion bins is built to find it out."""
        octaves = math.log2(self.sr / 2 / self.fmin)
        return max(
            0, math.floor((self.bins_per_octave * octaves - (self.n_bins - 1)) / self.bins_per_semitone) + 1
        )

    @property
    def bins_per_semitone(self) -> int:
        return self.bins_per_octave // 12

    @property
    def spare_bins(self) -> int:
        return self.max_pitch_shift * self.bins_per_semitone

    @property
    def frame_rate(self) -> float:
        return self.sr / self.hop_length

    def cqt_config(self) -> CQTConfig:
        return self._cqt_config(self.spare_bins)

    def _cqt_config(self, spare_bins: int) -> CQTConfig:
        return CQTConfig(
            sr=self.sr,
            hop_length=self.hop_length,
            fmin=self.fmin,
            n_bins=self.n_bins,
            bins_per_octave=self.bins_per_octave,
            spare_bins_below=spare_bins,
            spare_bins_above=spare_bins,
        )

    def bass_view_config(self) -> CQTConfig | None:
        if not self.bass_view_bins:
            return None
        return replace(
            self.cqt_config(), n_bins=self.bass_view_bins, filter_scale=self.bass_view_filter_scale
        )

    @property
    def feature_rows(self) -> int:
        """Rows of `compute`'s output: the CQT's and the bass view's with their spare bins; mel: n_bins."""
        if self.kind == "mel":
            return self.n_bins
        view = self.bass_view_config()
        return self.cqt_config().total_bins + (view.total_bins if view else 0)

    def valid_features(self, features: np.ndarray) -> bool:
        """Whether `features` can be `compute`'s output for one recording: float [feature_rows, frames], all
        finite. What the feature cache checks of an entry before serving it."""
        return (
            features.ndim == 2
            and features.shape[0] == self.feature_rows
            and features.shape[1] > 0
            and np.issubdtype(features.dtype, np.floating)
            and bool(np.isfinite(features).all())
        )

    def expected_frames(self, path: str | Path) -> int | None:
        """The frames `compute` gives for `path`'s audio, from its header (no decoding): 1 + its samples at
        `sr` // `hop_length`. None where the header only estimates the length (MP3, Ogg). What the feature
        cache checks an entry's frames against: one with fewer frames was served, 1.9 s of a 6 s song."""
        frames, rate, exact = header_length(path)
        if not exact:
            return None
        samples = frames if rate == self.sr else math.ceil(frames * self.sr / rate)  # (`resample`'s rule)
        return 1 + samples // self.hop_length

    @property
    def input_bins(self) -> int:
        """Values per frame the model reads: the ``n_bins`` CQT window, then the bass view's."""
        return self.n_bins + self.bass_view_bins

    def crop(self, full: np.ndarray, shift: int = 0) -> np.ndarray:
        """`compute`'s [..., rows, frames] → model input [..., frames, input_bins], `shift` semitones up."""
        return crop_views(
            full, self.n_bins, self.spare_bins, self.bass_view_bins, shift * self.bins_per_semitone
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings and the code's version: what the feature cache's key hashes and its ``config.json``
        holds (`python -m audiotrain cache info` shows it). Checkpoints store ``asdict`` of the settings."""
        settings = asdict(self)
        kind = settings.pop("kind")
        if kind == "cqt":  # (the CQT's keys stay those written before mel existed)
            del settings["mel_fmax"]
        return {"kind": f"chord_{kind}", "features_version": FEATURES_VERSION, **settings}

    @classmethod
    def from_stored(cls, data: dict[str, Any]) -> ChordFeatureConfig:
        """The settings a checkpoint stored, naming any unknown key. One written before tuning correction or
        the bass view existed has no such key: its model was trained on features computed without it; one
        written before mel features existed has no ``kind``: its features are the CQT (the default)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            what = "setting" if len(unknown) == 1 else "settings"
            raise ValueError(f"unknown feature {what} {unknown}; expected a subset of {sorted(known)}")
        reading = _READING_STORED.set(True)
        try:
            return cls(**{"tuning_correction": False, "bass_view_bins": 0, **data})
        finally:
            _READING_STORED.reset(reading)

    def key(self) -> str:
        """A stable hash of `to_dict` (the settings and `FEATURES_VERSION`): names this configuration's folder
        in a `FeatureCache`. Numbers are written as their fields' types (`key_settings`): ``fmin=33`` and
        ``fmin=33.0`` are one configuration, and so are two without a bass view that differ only in its
        filter length, which then computes nothing."""
        settings = key_settings(self)
        if not self.bass_view_bins:  # (the default's value: keys written before this rule stay the same)
            settings["bass_view_filter_scale"] = _BASS_VIEW_FILTER_SCALE
        text = json.dumps(settings, sort_keys=True)
        return f"chord{self.kind}-" + hashlib.sha256(text.encode()).hexdigest()[:12]

    @property
    def min_seconds(self) -> float:
        """The shortest audio the features can be computed for (a few milliseconds)."""
        return self.min_samples / self.sr

    @property
    def min_samples(self) -> int:
        """The fewest samples at `sr` the features can be computed for (mel: one, zero-padded to a frame)."""
        return 1 if self.kind == "mel" else self.cqt_config().min_samples

    def load(self, path: str | Path) -> np.ndarray:
        """Mono audio of `path` at `sr`; `AudioError` (naming the file) if unreadable or too short."""
        y, _ = load_audio(path, sr=self.sr)
        if len(y) < self.min_samples:
            samples, rate, _ = header_length(path)  # the file's own, not the resampled count
            raise AudioError(path, "too_short", self.too_short(samples, rate))
        return y

    def too_short(self, samples: int, sample_rate: float) -> str:
        """Why `samples` at `sample_rate` (a file's own, or an array's as given) are too few for the
        features: ``"1 sample at 8000 Hz (0.125 ms); the features need 2.9 ms"``. The count once resampled
        to `sr` would not be the file's."""
        return too_short_detail(samples, sample_rate, self.min_seconds)

    def may_be_silence(self, features: np.ndarray) -> bool:
        """Whether `compute`'s `features` of a recording may be those of digital silence
        (`is_digital_silence`): no bin louder than the CQT of a signal at `SILENCE_PEAK_DBFS` can be. Cheap,
        for features read from the cache; a recording it lets through is decoded to tell for sure."""
        gain_bound = self._mel_peak_gain_bound() if self.kind == "mel" else _CQT_PEAK_GAIN_BOUND
        loudest = self.log_gain * gain_bound * 10.0 ** (SILENCE_PEAK_DBFS / 20.0)
        return bool(np.max(features, initial=0.0) <= np.log1p(loudest))

    def _mel_peak_gain_bound(self) -> float:
        """The most a mel band's magnitude can be per unit of signal amplitude: each FFT bin's magnitude is at
        most the Hann window's sum (n_fft / 2), weighted by the band's filter weights summed."""
        bank = mel_filterbank(self.sr, MEL_N_FFT, self.n_bins, self.fmin, self.mel_fmax)
        return MEL_N_FFT / 2 * float(bank.sum(axis=1).max())

    def frame_levels_db(self, y: np.ndarray, frames: int) -> np.ndarray:
        """[frames] level of mono audio `y` in dB: the RMS over the 2 * hop_length samples centred on each
        frame (frame t at t * hop_length, as the CQT's; zeros past the ends), floored at -120 dB. What
        `DecodeConfig.silence_db` compares with the song's playing level."""
        hop = self.hop_length
        # Frame t spans [(t - 1) * hop, (t + 1) * hop): the energies of hop-long blocks (block 0 the zeros
        # before the song), summed in pairs. Read from `y` a few thousand blocks at a time: a zero-padded copy
        # of the whole song was 250 MB more at the end of an hour's predict (1.1 GB peak).
        y = np.asarray(y, dtype=np.float32)
        n = max(0, min(len(y), hop * frames))
        block_energy = np.zeros(frames + 1, dtype=np.float64)
        whole = n // hop
        for first in range(0, whole, LEVEL_BLOCKS):
            last = min(first + LEVEL_BLOCKS, whole)
            blocks = y[first * hop : last * hop].reshape(-1, hop)
            block_energy[1 + first : 1 + last] = np.einsum("ij,ij->i", blocks, blocks, dtype=np.float64)
        if n > whole * hop:  # the last, part block, zero-padded to a whole one (summed as the others are)
            tail = np.zeros((1, hop), dtype=np.float32)
            tail[0, : n - whole * hop] = y[whole * hop : n]
            block_energy[1 + whole] = np.einsum("ij,ij->i", tail, tail, dtype=np.float64)[0]
        power = (block_energy[:-1] + block_energy[1:]) / (2 * hop)
        return 10.0 * np.log10(np.maximum(power, 1e-12))

    def compute(self, y: np.ndarray, backend: str = "numpy", block_frames: int | None = None) -> np.ndarray:
        """Features of mono audio `y` [samples] (or a batch of recordings [..., samples]) at `sr`: float32
        [..., n_bins + 2 * spare_bins, frames], then (`bass_view_bins` > 0) the bass view's
        bass_view_bins + 2 * spare_bins rows (`crop` cuts the model's input from both). With
        `tuning_correction`, a recording found off the grid has its CQT computed twice: once to estimate its
        tuning, once on its grid (each recording of a batch on its own); its bass view uses the same tuning.

        Each CQT runs `block_frames` frames at a time (default `FEATURE_BLOCK_FRAMES`; `CQTConfig.compute`),
        so a long recording costs memory for its features, not for every frame's samples; the tuning is
        still estimated once from the whole recording's CQT. Recordings within one block are computed whole.

        The numpy backend (as fast as MLX for one song here) keeps MLX out of data-loader worker threads.

        The products run on one BLAS thread (`one_blas_thread`): OpenBLAS's last bits change with its thread
        count, and cached features must not depend on which run (how many processes or cores) filled the
        cache, nor differ between training and `predict`. The products are a quarter of the time (decoding
        and resampling the rest): one process on the 2-core CI machine computed the 232 demo songs as fast
        with one thread as with two, and a run of 2 processes there gave each rank one thread already.
        """
        with one_blas_thread():
            return self._compute(y, backend, block_frames)

    def _compute(self, y: np.ndarray, backend: str, block_frames: int | None) -> np.ndarray:
        if self.kind == "mel":
            # Magnitude (power 1), compressed as the CQT's is; centred frames: frame t at t * hop_length.
            bands = melspectrogram(
                y,
                sr=self.sr,
                n_fft=MEL_N_FFT,
                hop_length=self.hop_length,
                power=1.0,
                n_mels=self.n_bins,
                fmin=self.fmin,
                fmax=self.mel_fmax,
                backend=backend,
            )
            return np.log1p(self.log_gain * np.asarray(bands, dtype=np.float32))
        cqt = self.cqt_config()
        view = self.bass_view_config()
        block_frames = FEATURE_BLOCK_FRAMES if block_frames is None else block_frames
        magnitude = np.asarray(cqt.compute(y, backend=backend, block_frames=block_frames), dtype=np.float32)
        signals = np.asarray(y).reshape(-1, np.shape(y)[-1])
        offsets = np.zeros(len(signals))
        if self.tuning_correction:
            frequencies = cqt_frequencies(cqt.total_bins, cqt.computed_fmin, cqt.bins_per_octave)
            spectra = magnitude.reshape(len(signals), *magnitude.shape[-2:])
            for i, spectrum in enumerate(spectra):
                offset = estimate_tuning(spectrum, cqt.bins_per_octave, frequencies)
                # Computed again with the bins moved by the offset, rounded to a tenth of a bin (3 cents at
                # 36 bins per octave) so that the few filter banks this needs are each planned once.
                offset = round(offset * 10) / 10
                offsets[i] = offset
                if offset:
                    spectra[i] = np.asarray(
                        cqt.compute(signals[i], backend=backend, tuning=offset, block_frames=block_frames)
                    )
            magnitude = spectra.reshape(magnitude.shape)
        if view is not None:
            if np.all(
                offsets == offsets[0]
            ):  # one tuning for all (always without correction): one batched CQT
                low = np.asarray(view.compute(signals, backend, float(offsets[0]), block_frames))
            else:
                low = np.stack(
                    [np.asarray(view.compute(s, backend, o, block_frames)) for s, o in zip(signals, offsets)]
                )
            # Both views' frame t is centred at t * hop_length; their counts can differ by the last frame.
            frames = min(low.shape[-1], magnitude.shape[-1])
            magnitude, low = magnitude[..., :frames], low[..., :frames]
            magnitude = np.concatenate(
                [magnitude, low.reshape(*magnitude.shape[:-2], *low.shape[-2:])], axis=-2
            )
        return np.log1p(self.log_gain * magnitude)


@dataclass
class ChordDataConfig:
    """Where songs come from and how they become training windows."""

    # path=True: a leading ~ is the home folder, from a flag or a file alike (`config_cli.home_expanded`).
    data_dir: str | None = field(
        default=None,
        metadata=_help("folder of audio + .lab/.jams songs; empty: the built-in demo songs", path=True),
    )
    cache_dir: str | None = field(
        default=None,
        metadata=_help(
            "demo data and feature cache; default $AUDIOTRAIN_CACHE_DIR, else $XDG_CACHE_HOME/audiotrain, else "
            "~/.cache/audiotrain",
            path=True,
        ),
    )
    # 224: what the default run trains in its 2-3 minutes since it uses both cores of a 2-core CPU (128
    # before; on the independent held-out style +1.3 tetrads, six seeds; twelfth round in
    # `benchmarks/chords_rounds.md`).
    demo_songs: int = field(default=224, metadata=_help("demo songs to train and validate on"))
    demo_test_songs: int = field(
        default=8, metadata=_help("held-out demo songs (another seed) to evaluate on")
    )
    demo_seconds: float = field(default=30.0, metadata=_help("length of each demo song, s"))
    demo_seed: int = field(
        default=0, metadata=_help("seed of the demo training songs (held-out: seed + 1000)")
    )
    demo_styles: tuple[str, ...] = field(
        default=("train", "studio", "patches"),
        metadata=_help(
            "demo styles of the training songs and their shares, comma-separated STYLE or STYLE:WEIGHT (styles: "
            "train, studio, patches; no weight: 1); the held-out songs stay in the train style, and 'independent' and "
            "'band' are the held-out yardsticks, never trained on"
        ),
    )
    val_fraction: float = field(
        default=0.15,
        metadata=_help(
            "share of songs for validation (split by song); 0: none, so no early stopping, and the last "
            "checkpoint is the one evaluated"
        ),
    )
    test_fraction: float = field(
        default=0.15,
        metadata=_help("share of songs held out for the final evaluation when data_dir is given"),
    )
    split_by: str = field(
        default="song",
        metadata=_help(
            "what a data folder is split by: song; folder (the songs of a folder, an album of "
            "artist/album/song, stay in one part); top_folder (those under each folder of --data, an "
            "artist). Each part is chosen by a hash of the seed and the name, so it stays as songs come "
            "and go",
            choices=SPLIT_BY,
        ),
    )
    group_pattern: str | None = field(
        default=None,
        metadata=_help(
            "a regular expression searched in each song's path under --data (without suffix): songs whose "
            "match (its first group where it has one) is the same stay in one part, in the split and in "
            "cv's folds; '/(\\d\\d)_' keeps GuitarSet's takes of a player together, "
            "'([^/]*)_(comp|solo)_mic$' an excerpt's two takes. A song it does not match is alone. In "
            "place of --data.split_by"
        ),
    )
    window_frames: int = field(
        default=96,
        metadata=_help(
            "frames per training window (96 at 10.8 fps: 8.9 s; with --init_from, the checkpoint's run's)"
        ),
    )
    pitch_shift: bool = field(
        default=True,
        metadata=_help(
            "augment by shifting each training window to one of the 12 keys (-5..+6 semitones); "
            "features.max_pitch_shift k below 6 reaches -k..+k only (0: none), and the run says so"
        ),
    )
    eq_db: float = field(
        default=12.0, metadata=_help("reach of a random equaliser on each training window, dB (0: off)")
    )
    allow_gaps: bool = field(
        default=False, metadata=_help("fill gaps in annotations with N instead of failing")
    )
    annotations: str | None = field(
        default=None,
        metadata=_help(
            "folder of annotations kept apart from the audio (Isophonics' chordlab/): an audio file with no "
            "annotation beside it pairs with the one anywhere under this folder whose name matches, case "
            "ignored and each run of spaces, underscores and hyphens read as one separator (typographic "
            "quotes as ASCII); of several of one name, the one in the folder that mirrors the audio's; a "
            "name two files share otherwise, or one whose sub-folders share no folder name with the audio's "
            "(another artist's song of that title), pairs none (listed)",
            path=True,
        ),
    )
    pairs: str | None = field(
        default=None,
        metadata=_help(
            "CSV file of audio,annotation rows, paths relative to its folder, for layouts no name rule fits "
            "(McGill Billboard's NNNN/audio.wav + NNNN/majmin7inv.lab, GuitarSet's _mic audio); a third "
            "column, split (train, val or test, in every row), gives a dataset's published split in place "
            "of the fractions",
            path=True,
        ),
    )
    jams_annotation: int = field(
        default=0,
        metadata=_help(
            "which chord annotation of a JAMS file to use, counted from 0 (GuitarSet: 0 the lead sheet's "
            "chords, 1 the performed ones); a song whose file has fewer is skipped and listed"
        ),
    )
    num_workers: int = field(default=0, metadata=_help("DataLoader worker threads"))

    def __post_init__(self):
        settle_fields(self)  # a pathlib.Path for data_dir (and the other paths) is kept as its text
        # Named by field here; merge_config names them as flags (--data.demo_seed) when set through one.
        check_setting(
            "demo_songs",
            self.demo_songs,
            integer=True,
            at_least=2,
            at_most=MAX_DEMO_ITEMS,
            why="a training and a validation song at least",
        )
        check_setting(
            "demo_test_songs", self.demo_test_songs, integer=True, at_least=1, at_most=MAX_DEMO_ITEMS
        )
        check_setting("demo_seed", self.demo_seed, integer=True, at_least=0, at_most=SEED_MAX)
        # A demo song holds at least a few chords (the generator's shortest); ten minutes is longer than nearly
        # any real song, and a longer one only fills the cache (1e9 s ran without end).
        check_setting("demo_seconds", self.demo_seconds, at_least=4, at_most=600, why="seconds")
        if not 0.0 <= self.eq_db <= 40.0:
            raise ValueError(f"data.eq_db (--data.eq_db) must be from 0 to 40 dB, got {self.eq_db}")
        if not 8 <= self.window_frames <= MAX_WINDOW_FRAMES:
            raise ValueError(
                f"data.window_frames (--data.window_frames) must be from 8 to {MAX_WINDOW_FRAMES}, got "
                f"{self.window_frames}"
            )
        # Checked here (merge_config names the flag), not by the DataLoader after the run folder is written.
        check_setting("num_workers", self.num_workers, integer=True, at_least=0, at_most=MAX_WORKERS)
        check_setting("jams_annotation", self.jams_annotation, integer=True, at_least=0)
        self._check_fractions()
        if self.split_by not in SPLIT_BY:  # (a config file's value; the flag's are checked by argparse)
            raise ValueError(
                f"data.split_by (--data.split_by) must be one of {', '.join(SPLIT_BY)}, got {self.split_by!r}"
            )
        self._check_group_pattern()
        self._check_demo_styles()

    def _check_group_pattern(self) -> None:
        if self.group_pattern is None:
            return
        if self.split_by != "song":
            raise ValueError(
                f"data.group_pattern (--data.group_pattern) groups songs in place of data.split_by "
                f"(--data.split_by {self.split_by}): pass one of them (a pattern can name the folders)"
            )
        try:
            re.compile(self.group_pattern)
        except re.error as error:
            raise ValueError(
                f"data.group_pattern (--data.group_pattern) is not a regular expression: {error} in "
                f"'{self.group_pattern}'"
            ) from None

    def _check_fractions(self) -> None:
        # Here, not when the songs are split: that came after the data was prepared, and named no flag.
        for name in ("val_fraction", "test_fraction"):
            check_setting(name, getattr(self, name), at_least=0, below=1)
        # (The demo holds out its own test songs: test_fraction splits a data folder only.)
        # (Named in full: `train --data DIR` sets data_dir outside merge_config, which would name the flag.)
        if self.data_dir and self.val_fraction + self.test_fraction >= 1:
            raise ValueError(
                f"data.test_fraction (--data.test_fraction) must be < 1 - data.val_fraction "
                f"({self.val_fraction:g}), leaving songs to train on, got {self.test_fraction:g}"
            )

    def _check_demo_styles(self) -> None:
        self.demo_styles = tuple(self.demo_styles)
        self.demo_style_shares()  # raises on a malformed entry

    def demo_style_shares(self) -> dict[str, float]:
        """`demo_styles` as {style: weight}, in order; a clear error naming the field for a bad entry."""
        where = "data.demo_styles (--data.demo_styles)"
        trainable = tuple(s for s in STYLES if s not in HELD_OUT_STYLES)
        if not self.demo_styles:
            raise ValueError(f"{where} needs at least one of {trainable}")
        shares: dict[str, float] = {}
        for entry in self.demo_styles:
            style, _, weight_text = str(entry).strip().partition(":")
            if style in HELD_OUT_STYLES:
                raise ValueError(
                    f"{where} may not hold {style!r}: it is a held-out style that measures generalisation, "
                    f"never training data; choose from {trainable}"
                )
            if style not in trainable:
                raise ValueError(f"{where}: unknown style {style!r} in {entry!r}; choose from {trainable}")
            if style in shares:
                raise ValueError(f"{where} names {style!r} twice: {self.demo_styles}; give its share once")
            try:
                weight = float(weight_text) if weight_text else 1.0
            except ValueError:
                weight = float("nan")
            if not 0 < weight < float("inf"):
                raise ValueError(
                    f"{where}: the weight in {entry!r} must be a finite number > 0 (STYLE or STYLE:WEIGHT)"
                )
            shares[style] = weight
        return shares

    def resolved_cache_dir(self) -> Path:
        return Path(self.cache_dir).expanduser() if self.cache_dir else default_cache_dir()


@dataclass
class LossConfig:
    """Weights of the heads' losses in the total (the joint chord head's where the model has one)."""

    chord_type_weight: float = field(default=1.0, metadata=_help("weight of the chord-type loss"))
    root_weight: float = field(default=1.0, metadata=_help("weight of the root loss"))
    bass_weight: float = field(default=0.5, metadata=_help("weight of the bass loss"))
    chord_weight: float = field(
        default=1.0, metadata=_help("weight of the joint chord head's loss (a model with model.chord_head)")
    )
    balance_classes: bool = field(
        default=False, metadata=_help("weight chord types by inverse sqrt frequency in the training songs")
    )

    def __post_init__(self):
        # What ChordRecognitionLoss takes, checked when the config is built (merge_config names the flag),
        # not when the loss is made after the run folder is written.
        for name in ("chord_type_weight", "root_weight", "bass_weight", "chord_weight"):
            check_setting(name, getattr(self, name), at_least=0)


@suggesting_keywords(
    OTHER_LIBRARIES_NAMES,
    instead={"preset": "a preset is applied by TrainingConfig.from_preset({value!r}, **overrides)"},
)
@dataclass
class TrainingConfig:
    """Everything a chord recognition run needs; see the module docstring.

    `model.n_bins` always follows `features.n_bins` (the model reads every feature bin).
    """

    # MLX's AdamW (no bias correction) on purpose: the learning rate and schedule were tuned with it
    # (`benchmarks/chords_rounds.md`), and the published scores and baselines come from it.
    learning_rate: float = field(
        default=2e-3,
        metadata=_help(
            "peak learning rate of AdamW, tuned with MLX's AdamW, which has no bias correction unless "
            "--bias_correction true: its early updates are larger than torch.optim.AdamW's at the same "
            "rate (3.2x at the first step, up to 6.5x near step 12, 1.3x by step 1000)"
        ),
    )
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    bias_correction: bool = field(
        default=False,
        metadata=_help(
            "correct AdamW's moment estimates for their bias, as torch.optim.AdamW does (off: MLX's default, "
            "with which the default learning rate was tuned)"
        ),
    )
    batch_size: int = field(default=16, metadata=_help("training windows per batch"))
    # 38: the epochs that fit in the time 34 took before the training step got faster (twentieth round in
    # `benchmarks/chords_rounds.md`): against 34 on the same code, +0.3 majmin and +0.4 majmin_inv on the
    # independent held-out style's 48 songs, +0.4 majmin_inv and +0.6 sevenths_inv on the band style's 32.
    num_epochs: int = field(
        default=38, metadata=_help("training epochs (one epoch ~ every song window once)")
    )
    warmup_epochs: float = field(default=1.0, metadata=_help("epochs of learning-rate warmup"))
    scheduler: str = field(
        default="cosine",
        metadata=_help(
            "learning-rate schedule after the --warmup_epochs warmup: cosine decay to learning_rate / 100, "
            "1cycle, or constant",
            choices=("cosine", "onecycle", "constant"),
        ),
    )
    gradient_clip: float = field(
        default=1.0, metadata=_help("max global gradient norm; 0 turns clipping off")
    )
    label_smoothing: float = field(
        default=0.1,
        metadata=_help(
            "label smoothing of the heads' cross-entropies (chord type, root, bass and the joint chord head's)"
        ),
    )
    checkpoint_dir: str = field(
        default="checkpoints",
        metadata=_help("checkpoint folder (relative paths are inside the run folder)", path=True),
    )
    save_every: int = field(
        default=5, metadata=_help("also keep a checkpoint every N epochs (0: only best/last)")
    )
    save_keep: int = field(
        default=0,
        metadata=_help(
            "keep only the newest N of the save_every checkpoints, removing older ones as new ones are saved "
            "(0: keep them all); best and last are always kept"
        ),
    )
    patience: int = field(default=15, metadata=_help("early stopping: epochs without val_loss improvement"))
    min_delta: float = field(default=0.001, metadata=_help("early stopping: smallest val_loss improvement"))
    log_every: int = field(default=50, metadata=_help("log training metrics every N optimizer steps"))
    seed: int = field(default=0, metadata=_help("seed of weights, data order, windows and augmentation"))
    # The seed guide's `device` ('cuda' if available, else 'cpu'): MLX's device for the Trainer.
    device: str = field(
        default="auto",
        metadata=_help(
            "where training and validation run: auto (a GPU if this MLX has one, else the CPU), cpu, or gpu "
            "(cuda and mps mean gpu)",
            choices=DEVICES,
        ),
    )
    compile: bool = field(default=True, metadata=_help("compile the training and evaluation steps"))
    progress_bar: bool = field(default=True, metadata=_help(PROGRESS_BAR_HELP))
    processes: int = field(
        default=0,
        metadata=_help(
            "train and demo on a CPU: processes to train in, one per core, the batch split between them "
            "(0: one per core, up to 4, when an MPI is installed; 1: this process alone)"
        ),
    )
    data: ChordDataConfig = field(default_factory=ChordDataConfig)
    features: ChordFeatureConfig = field(default_factory=ChordFeatureConfig)
    # Without dropout, and 34 epochs in the time 30 took with it: on the independent held-out style level or
    # better on the six metrics (six-seed means), on the training style's held-out songs majmin_inv +1.7 and
    # sevenths_inv +3.0, higher on every seed (tenth round in `benchmarks/chords_rounds.md`).
    model: ChordModelConfig = field(default_factory=lambda: ChordModelConfig(n_bins=216, dropout=0.0))
    loss: LossConfig = field(default_factory=LossConfig)
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)

    def __post_init__(self):
        settle_fields(self)  # checkpoint_dir=Path(...) as text; data={...} as a ChordDataConfig, or refused
        # Named as a flag (--name) and as the key of a --config file when set through them (merge_config).
        check_setting("learning_rate", self.learning_rate, above=0)
        check_setting("batch_size", self.batch_size, integer=True, above=0, at_most=MAX_BATCH_SIZE)
        check_setting("num_epochs", self.num_epochs, integer=True, above=0, at_most=MAX_EPOCHS)
        check_setting("log_every", self.log_every, integer=True, above=0, at_most=MAX_STEPS)
        for name in ("weight_decay", "gradient_clip", "min_delta"):
            check_setting(name, getattr(self, name), at_least=0)
        check_setting("warmup_epochs", self.warmup_epochs, at_least=0, at_most=MAX_EPOCHS)
        for name in ("save_every", "save_keep", "patience"):
            check_setting(name, getattr(self, name), integer=True, at_least=0, at_most=MAX_EPOCHS)
        check_setting("seed", self.seed, integer=True, at_least=0, at_most=SEED_MAX)
        check_setting("processes", self.processes, integer=True, at_least=0)
        # As every path flag (--run_dir ""): an empty one is an unset shell variable, not the run folder
        # itself, where best/ and last/ landed among evaluation/ and config.json.
        if not str(self.checkpoint_dir).strip():
            raise SettingError(
                "checkpoint_dir",
                self.checkpoint_dir,
                "a path, not empty (an unset shell variable?); leave it out for RUN/checkpoints",
            )
        if self.scheduler not in ("cosine", "onecycle", "constant"):
            raise ValueError(
                f"TrainingConfig.scheduler must be 'cosine', 'onecycle' or 'constant', got {self.scheduler!r}"
            )
        if not 0 <= self.label_smoothing < 1:
            raise ValueError(f"TrainingConfig.label_smoothing must be in [0, 1), got {self.label_smoothing}")
        self.training_device()  # an unknown device, or a GPU this MLX has not, is an error now, not at fit
        self._check_some_loss_weighed()
        # The model reads every feature bin: its input width follows the features section.
        if (
            self.model.n_bins != self.features.n_bins
            or self.model.bass_view_bins != self.features.bass_view_bins
        ):
            self.model = replace(
                self.model, n_bins=self.features.n_bins, bass_view_bins=self.features.bass_view_bins
            )

    def _check_some_loss_weighed(self) -> None:
        """Refuse loss weights that are all 0 for the model's heads: the loss is then 0 and its gradients
        too, and a run trained nothing yet wrote a checkpoint and scores (chord_weight counts with a chord
        head)."""
        names = ["chord_type_weight", "root_weight", "bass_weight"]
        names += ["chord_weight"] if self.model.chord_head else []
        if any(getattr(self.loss, name) > 0 for name in names):
            return
        flags = ", ".join(f"loss.{name} (--loss.{name})" for name in names)
        lacking = "" if self.model.chord_head else " (loss.chord_weight is unused: model.chord_head is false)"
        raise ValueError(
            f"{flags} are all 0{lacking}: the loss is 0 and nothing trains; give at least one of them a "
            "weight > 0"
        )

    def to_dict(self) -> dict[str, Any]:
        """The settings as JSON data (tuples as lists), the form config.json and checkpoints hold."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> TrainingConfig:
        """The settings of ``--preset NAME`` (one of `PRESETS`), then `overrides` as flags would give them:
        ``TrainingConfig.from_preset("quick_test", num_epochs=3, data={"demo_songs": 8})`` keeps the
        preset's other data settings (``**{"data.demo_songs": 8}``, the flag's dotted name, does the same).
        An unknown preset or override is a ValueError naming it (`config_cli.config_from_preset`)."""
        return config_from_preset(cls(), PRESETS, name, overrides)

    def training_device(self) -> str:
        """``device`` as the Trainer's accelerator: "cpu" or "gpu" ("auto": the GPU where MLX has one)."""
        if self.device not in DEVICES:
            raise ValueError(
                f"TrainingConfig.device (--device) must be 'auto', 'cpu' or 'gpu' ('cuda', 'mps' and 'metal' "
                f"mean 'gpu'), got {self.device!r}"
            )
        try:
            return flags.accelerator(self.device)
        except ValueError:  # a GPU asked for where MLX has none
            raise ValueError(
                f"TrainingConfig.device (--device) is {self.device!r}, but this MLX has no GPU backend "
                f"({GPU_BACKEND_HINT}): use 'cpu' or 'auto'"
            ) from None


#: The demo training styles of a run from before `ChordDataConfig.demo_styles` existed: every song was the
#: train style's (what its config.json, without the field, and its checkpoint mean).
DEMO_STYLES_BEFORE_MIXES = ["train"]


def older_record_meanings() -> dict[str, Any]:
    """What a run record (config.json) of an older audiotrain meant by a setting it does not hold, where that
    is known (dotted name → value): the setting did not exist yet, and the run had none of what it turns on.
    The same readings as the checkpoint loaders' (`ChordFeatureConfig.from_stored`,
    `ChordModelConfig.from_dict`, the song record's demo mix), and one process (before `processes`, the
    recipe trained in this one). ``--config`` applies them; every other setting such a record lacks takes
    today's default, and the run says which."""
    meanings: dict[str, Any] = {"processes": 1, "data.demo_styles": tuple(DEMO_STYLES_BEFORE_MIXES)}
    for name, then, today in _older_readings():
        if then != today:
            meanings[name] = then
    return meanings


def older_record_readings_as_today() -> frozenset[str]:
    """The model and feature settings a run record of an older audiotrain may lack whose reading as that
    version ran is today's default (``features.kind``: the CQT, the only kind before mel; ``mel_fmax``, which
    the CQT does not use): the run is repeated as it ran, so ``--config`` does not name them as settings that
    may differ."""
    return frozenset(name for name, then, today in _older_readings() if then == today)


def _older_readings() -> Iterator[tuple[str, Any, Any]]:
    """(dotted name, the checkpoint loaders' reading of its absence, today's default) of every model and
    feature setting."""
    readings = (
        ("features", ChordFeatureConfig(), ChordFeatureConfig.from_stored({})),
        ("model", ChordModelConfig(), ChordModelConfig.from_dict({})),
    )
    for section, today, then in readings:
        for f in fields(today):
            yield f"{section}.{f.name}", getattr(then, f.name), getattr(today, f.name)


def check_model_fits_memory(config: TrainingConfig, processes: int = 1) -> None:
    """Refuse (naming the --model.* flags) a model too big to train on this machine (`check_fits_memory`):
    ``--model.d_model 100000`` asked for 40 G parameters, and MLX ended the process with a segfault.
    `processes`: the local processes that will each train a copy (``--model.d_model 8192`` fit one process's
    share and was killed by the OOM killer in two)."""
    from audiotrain.models.chord_model import ChordRecognitionModel
    from audiotrain.train.callers_random import CALLERS_GENERATORS

    m = config.model
    sized_by = ", ".join(
        f"--model.{name} {getattr(m, name)}" for name in ("d_model", "n_layers", "ff_dim", "bass_dim")
    )
    # (Building it draws its weights: from generators put back after, not the caller's, as a run's own.)
    with CALLERS_GENERATORS.kept():
        model = ChordRecognitionModel(m)
    check_fits_memory(model, sized_by, processes)


def derived_settings(config: TrainingConfig) -> dict[str, tuple[Any, str]]:
    """The fields of `config` that follow others and have no flag: dotted name → (value, what it follows).
    A ``--config`` file may hold them (a run's config.json does) only with these values: a model head sized
    otherwise trains to the end, then fails to decode; an input width otherwise would be replaced."""
    return {
        "model.n_bins": (config.features.n_bins, "features.n_bins"),
        "model.bass_view_bins": (config.features.bass_view_bins, "features.bass_view_bins"),
        "model.num_chord_types": (NUM_CHORD_TYPES, "the chord vocabulary's types"),
    }


#: The shipped presets (``--preset NAME``, or ``preset: NAME`` in a ``--config`` file): nested changes to the
#: defaults above. The defaults themselves train the demo in a few minutes on a 2-core CPU.
PRESETS: dict[str, dict[str, Any]] = {
    # Seconds: 4 short demo songs, one epoch of a one-block model; checks a setup end to end, learns nothing.
    "quick_test": {
        "num_epochs": 1,
        "batch_size": 4,
        "save_every": 0,
        "progress_bar": False,
        "data": {"demo_songs": 4, "demo_test_songs": 1, "demo_seconds": 6.0, "window_frames": 32},
        "model": {"d_model": 32, "n_layers": 1, "n_heads": 2, "ff_dim": 64},
    },
    # Short iterations while changing code or data: a third of the default epochs, earlier stopping.
    "development": {"num_epochs": 10, "patience": 5, "save_every": 0},
    # Real data (hundreds of songs): a wider, deeper model, longer training with a gentler peak rate, chord
    # types weighted against the long tail (majors and minors dominate real annotations); the bigger model for
    # 100 epochs keeps dropout (the demo default trains without: measured there only).
    "production": {
        "learning_rate": 1e-3,
        "batch_size": 32,
        "num_epochs": 100,
        "warmup_epochs": 2.0,
        "patience": 20,
        "save_every": 10,
        "data": {"num_workers": 2},
        "model": {"d_model": 256, "n_layers": 4, "n_heads": 8, "ff_dim": 1024, "dropout": 0.1},
        "loss": {"balance_classes": True},
    },
}


def benchmark_config(**overrides: Any) -> TrainingConfig:
    """The longer setting of `benchmarks/chords.py` and of ``--benchmark``: 1024 songs for 40 epochs, 4.8x the
    optimizer steps of the default run's 224 songs for 38 epochs. On the independent held-out style (six
    seeds, seventeenth round in `benchmarks/chords_rounds.md`) it scored +1.3 root, +0.8 majmin, +1.0 sevenths
    and +1.7 tetrads over the default of the time (224 songs for 34 epochs) on the yardstick's 16 songs (+1.2,
    +0.4, +1.6 and +2.5 on 48 more); the default's 38 epochs are level with its 34 there.
    Against 512 songs, root, sevenths and tetrads rose by 0.3 to 1.0 on both sets while majmin and majmin_inv
    moved by 0.35 or less: more songs no longer raise those two. On the band held-out style (nineteenth round)
    it scored +2.0 majmin and +4.5 majmin_inv over the 34-epoch default on its 16 songs (+1.4 and +2.9 on 32;
    about +1.7 and +3.3 over the 38-epoch one, six-seed means): the bass carries over to unseen music better
    after more songs and steps. More songs for the default's steps did not help (eighteenth round), and the
    default's songs for these steps gave about half of it. About 9-10 minutes of training in two processes on
    a 2-core CPU (564 s, against 636 s before the twentieth round's faster step, back to back; about 1.8x that
    in one process), and 1.3 GB of demo songs in the cache."""
    config = TrainingConfig(
        num_epochs=40,
        patience=15,
        data=ChordDataConfig(demo_songs=1024, demo_test_songs=12),
    )
    from audiotrain.recipes.config_cli import merge_config

    return merge_config(config, overrides, source="benchmark_config") if overrides else config
