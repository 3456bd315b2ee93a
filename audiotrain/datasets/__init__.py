"""Datasets for the recipes: chord songs and clips, caption folders, and the offline demo generators.

Imported lazily so `import audiotrain.datasets.captions` does not load the chord stack and vice versa.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from audiotrain._lazy import lazy_attributes

_PUBLIC = {
    "scan_song_folder": "chord_songs",
    "split_songs": "chord_songs",
    "frame_targets": "chord_songs",
    "ChordSongConfig": "chord_songs",
    "ChordSongDataset": "chord_songs",
    "ChordClipDataset": "chord_clips",
    "generate_demo_songs": "chord_demo",
    "scan_caption_folder": "captions",
    "holdout_split": "captions",
    "CaptionDataset": "captions",
    "CaptionFolderError": "captions",
    "make_caption_demo": "caption_demo",
    "CaptionDemoConfig": "caption_demo",
}


if TYPE_CHECKING:
    # The lazy names spelled out for type checkers and editors, which do not run `__getattr__`
    # (`X as X`: an explicit re-export, also under mypy --strict). tests/test_typing.py keeps them
    # equal to `_PUBLIC`.
    from audiotrain.datasets.caption_demo import CaptionDemoConfig as CaptionDemoConfig
    from audiotrain.datasets.caption_demo import make_caption_demo as make_caption_demo
    from audiotrain.datasets.captions import CaptionDataset as CaptionDataset
    from audiotrain.datasets.captions import CaptionFolderError as CaptionFolderError
    from audiotrain.datasets.captions import holdout_split as holdout_split
    from audiotrain.datasets.captions import scan_caption_folder as scan_caption_folder
    from audiotrain.datasets.chord_clips import ChordClipDataset as ChordClipDataset
    from audiotrain.datasets.chord_demo import generate_demo_songs as generate_demo_songs
    from audiotrain.datasets.chord_songs import ChordSongConfig as ChordSongConfig
    from audiotrain.datasets.chord_songs import ChordSongDataset as ChordSongDataset
    from audiotrain.datasets.chord_songs import frame_targets as frame_targets
    from audiotrain.datasets.chord_songs import scan_song_folder as scan_song_folder
    from audiotrain.datasets.chord_songs import split_songs as split_songs

__all__ = sorted(_PUBLIC)


# Hidden from type checkers, which would take any name from a module `__getattr__` (a typo included).
# `lazy_attributes` also gives the `__dir__` that lists the lazy names before their first use (tab
# completion).
if not TYPE_CHECKING:
    __getattr__, __dir__ = lazy_attributes(
        __name__, {name: f"{__name__}.{module}" for name, module in _PUBLIC.items()}
    )
