"""Datasets for the recipes: chord songs and clips, caption folders, and the offline demo generators.

Imported lazily so `import audiotrain.datasets.captions` does not load the chord stack and vice versa.
"""

from __future__ import annotations

import importlib

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

__all__ = sorted(_PUBLIC)


def __getattr__(name: str):
    if name in _PUBLIC:
        value = getattr(importlib.import_module(f"audiotrain.datasets.{_PUBLIC[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'audiotrain.datasets' has no attribute {name!r}")
