"""Spectral features in MLX (batched) with numpy reference paths, the CLAP front end and a disk cache.

- `stft`, `spectrogram`, `get_window` (module ``features.stft``)
- `mel_filterbank`, `melspectrogram`, `power_to_db`, `hz_to_mel`, `mel_to_hz`, `MelConfig` (``features.mel``)
- `cqt`, `hcqt`, `cqt_frequencies`, `CQTConfig`, `C1_HZ` (``features.cqt``)
- `chroma_cqt`, `cq_to_chroma` (``features.chroma``)
- `ClapFeatureExtractor` (``features.clap``), `FeatureCache` (``features.cache``)

The functions `stft` and `cqt` share their names with their modules. Loading a submodule sets the package
attribute of its name, so the functions are imported last, after the modules that load those two, and the
package attributes end up being the functions; ``from audiotrain.features.cqt import CQTConfig`` still works
(it reads the module from ``sys.modules``). The two modules are not imported by name here: mypy reads a
name's first binding in the package, and ``features.cqt(y)`` was then "Module not callable".
"""

from audiotrain.features import cache, chroma, clap, mel  # noqa: F401  (modules first)
from audiotrain.features.cache import FeatureCache
from audiotrain.features.chroma import chroma_cqt, cq_to_chroma
from audiotrain.features.clap import ClapFeatureExtractor
from audiotrain.features.cqt import C1_HZ, CQTConfig, cqt, cqt_frequencies, hcqt
from audiotrain.features.mel import (
    MelConfig,
    hz_to_mel,
    mel_filterbank,
    mel_frequencies,
    mel_to_hz,
    melspectrogram,
    power_to_db,
)
from audiotrain.features.stft import get_window, spectrogram, stft

__all__ = [
    "stft",
    "spectrogram",
    "get_window",
    "mel_filterbank",
    "melspectrogram",
    "power_to_db",
    "hz_to_mel",
    "mel_to_hz",
    "mel_frequencies",
    "MelConfig",
    "cqt",
    "hcqt",
    "cqt_frequencies",
    "CQTConfig",
    "C1_HZ",
    "chroma_cqt",
    "cq_to_chroma",
    "ClapFeatureExtractor",
    "FeatureCache",
]
