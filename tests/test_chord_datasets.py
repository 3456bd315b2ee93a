"""Chord datasets: song folder scanning, song splits, frame targets, windows with pitch shift, clips."""

import json
import math
import os
import re
import subprocess
import sys
import unicodedata
import warnings
from pathlib import Path

from audiotrain.chords.harte import parse_harte
from audiotrain.chords.lab import AnnotationError, ChordSegment, read_lab, write_jams, write_lab
from audiotrain.chords.vocabulary import CHORD_TYPES, decode_label, encode_label
from audiotrain.data import DataLoader
from audiotrain.datasets.chord_clips import ChordClipDataset
from audiotrain.datasets.chord_songs import (
    ChordSongConfig,
    ChordSongDataset,
    SongEntry,
    apply_eq,
    crop_bins,
    frame_targets,
    random_eq_db,
    scan_song_folder,
    split_group,
    split_position,
    split_songs,
    split_songs_as_given,
    split_songs_shuffled,
    transpose_targets,
)

import numpy as np
import pytest
import soundfile as sf
from child_processes import child_env

FRAME_RATE = 10.0
BPS = 2  # bins per semitone
LOWEST_PC = 9  # the lowest bin of what feature_fn returns is an A


def _wav(path, seconds=0.1, sr=8000):
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.zeros(int(seconds * sr), np.float32), sr)
    return path


def _fake_cqt(config):
    """A feature_fn whose 'CQT' lights up the bins of the annotated chord's pitch classes, every octave."""

    def feature_fn(path):
        segments = read_lab(path.with_suffix(".lab"))
        n_frames = int(segments[-1].end * FRAME_RATE) + 3  # a little audio after the annotation
        targets = frame_targets(segments, n_frames, FRAME_RATE)
        features = np.zeros((config.total_bins, n_frames), np.float32)
        pcs_of_bin = (LOWEST_PC + np.arange(config.total_bins) // BPS) % 12
        for t in range(n_frames):
            if targets["root"][t] >= 0:
                label = decode_label(targets["chord_type"][t], targets["root"][t], targets["bass"][t])
                features[:, t] = np.isin(pcs_of_bin, list(parse_harte(label).pitch_classes))
        return features

    return feature_fn


def _song(tmp_path, name, segments):
    write_lab(tmp_path / f"{name}.lab", segments)
    return SongEntry(name, _wav(tmp_path / f"{name}.wav"), tmp_path / f"{name}.lab")


SEGMENTS = [
    ChordSegment(0.0, 1.0, "N"),
    ChordSegment(1.0, 3.0, "C:maj7/3"),
    ChordSegment(3.0, 4.5, "A:min"),
    ChordSegment(4.5, 6.0, "F#:hdim7"),
    ChordSegment(6.0, 7.0, "X"),
    ChordSegment(7.0, 9.0, "Bb:7(b9)"),
]


# ------------------------------------------------------------------------------------------- scanning


def test_scan_pairs_lists_unpaired_and_invalid(tmp_path):
    song_seconds = SEGMENTS[-1].end
    write_lab(tmp_path / "a.lab", SEGMENTS)
    _wav(tmp_path / "a.wav", song_seconds)
    write_jams(tmp_path / "sub" / "b.jams", SEGMENTS)
    _wav(tmp_path / "sub" / "b.flac", song_seconds - 1.5)  # within the tolerated overhang
    _wav(tmp_path / "c.wav")  # no annotation
    write_lab(tmp_path / "d.lab", SEGMENTS)  # no audio
    _wav(tmp_path / "e.wav", song_seconds)
    (tmp_path / "e.lab").write_text("0.0 1.0 C\n1.0 2.0 Cmaj7\n")
    _wav(tmp_path / "f.wav", song_seconds)
    write_lab(tmp_path / "f.lab", SEGMENTS)
    write_jams(tmp_path / "f.jams", SEGMENTS)
    (tmp_path / "g.wav").write_bytes(b"")  # empty audio
    write_lab(tmp_path / "g.lab", SEGMENTS)
    (tmp_path / "h.wav").write_bytes(np.random.default_rng(0).bytes(4000))  # not audio at all
    write_lab(tmp_path / "h.lab", SEGMENTS)
    _wav(tmp_path / "i.wav", song_seconds / 2)  # another recording: the annotation runs far past its end
    write_lab(tmp_path / "i.lab", SEGMENTS)
    (tmp_path / "notes.txt").write_text("ignored")
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["a", "f", "sub/b"]
    assert index.unpaired_audio == [tmp_path / "c.wav"]
    assert index.unpaired_annotations == [tmp_path / "d.lab"]
    assert len(index.invalid) == 1 and "e.lab, line 2" in index.invalid[0][1]
    assert [p.name for p, _ in index.unreadable_audio] == ["g.wav", "h.wav"]
    assert "empty" in index.unreadable_audio[0][1]
    assert [p.name for p, _ in index.mismatched] == ["i.lab"]
    assert index.duplicates[0][0] == tmp_path / "f.jams"
    report = index.report()
    fragments = ("3 annotated songs", "c.wav", "d.lab", "line 2", "f.jams", "g.wav", "h.wav", "ends at 9.0 s")
    for fragment in fragments:
        assert fragment in report
    assert index.problems == 7
    # Without validation nothing is read: broken files are only found when loaded.
    assert len(scan_song_folder(tmp_path, validate=False)) == 7
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_song_folder(tmp_path / "nowhere")
    # A file given as the folder was "does not exist or is not a folder": it exists, and it is a file.
    with pytest.raises(NotADirectoryError, match=r"song folder .*c\.wav is a file, not a folder"):
        scan_song_folder(tmp_path / "c.wav")
    with pytest.raises(NotADirectoryError, match=r"annotations folder .*d\.lab is a file, not a folder"):
        scan_song_folder(tmp_path, annotations_dir=tmp_path / "d.lab")


def test_an_annotations_folder_inside_the_song_folder_holds_no_annotation_without_audio(tmp_path):
    """The annotations folder may lie inside the data folder (data/chordlab/): its files pair through it,
    and are not also annotations beside audio, each of which would be "an annotation without an audio
    file" (a problem counted) though its song trains."""
    data = tmp_path / "data"
    _wav(data / "album" / "01 song.wav", 3.0)
    write_lab(data / "chordlab" / "album" / "01_song.lab", [ChordSegment(0.0, 2.0, "C:maj")])
    index = scan_song_folder(data, annotations_dir=data / "chordlab")
    assert [s.name for s in index.songs] == ["album/01 song"]
    assert index.unpaired_annotations == [] and index.unused_annotations == []
    assert index.problems == 0 and index.skipped_songs() == {}


def test_skipped_songs_name_each_song_as_the_data_folder_does(tmp_path):
    """`skipped_songs` (evaluate's list of songs left out) names a song by its audio under the data folder,
    also where its annotation lies in an annotations folder outside it (not ../ann/album/x), and lists an
    annotation whose audio is missing, and audio without an annotation with where one was looked for: a
    reference left out of the scores is named, never dropped."""
    data = tmp_path / "data"
    _wav(data / "album" / "x.wav", 3.0)
    (tmp_path / "ann" / "album").mkdir(parents=True)
    (tmp_path / "ann" / "album" / "x.lab").write_text("0.0 1.0 C:maj\n1.0 2.0 Q:zz\n")
    _wav(data / "y.wav", 3.0)
    write_lab(data / "y.lab", [ChordSegment(0.0, 2.0, "C:maj")])
    write_lab(data / "z.lab", [ChordSegment(0.0, 2.0, "C:maj")])  # its audio is missing
    _wav(data / "w.wav", 3.0)  # its annotation is missing: the reason names both places looked in
    skipped = scan_song_folder(data, annotations_dir=tmp_path / "ann").skipped_songs()
    assert sorted(skipped) == ["album/x", "w", "z"]
    assert skipped["w"] == (
        f"{data / 'w.wav'}: no annotation (.lab/.jams/.jamz with the same stem, or named alike in "
        f"{tmp_path / 'ann'})"
    )
    assert "x.lab, line 2: invalid chord label 'Q:zz'" in skipped["album/x"]
    assert skipped["z"] == f"{data / 'z.lab'}: an annotation without an audio file"


def test_two_recordings_of_one_name_beside_one_annotation_pair_neither(tmp_path):
    """dup.wav and dup.flac beside dup.lab paired the annotation with dup.flac, the first in name order, and
    listed dup.wav as an ignored duplicate (exit status 0): a guess at whose ground truth it is. As with an
    annotations folder that two audio files match, neither is paired, and the song is a counted skip naming
    both files, in both layouts."""
    beside, apart = tmp_path / "beside", tmp_path / "apart"
    for audio, annotations in ((beside, beside), (apart / "audio", apart / "chordlab")):
        for name in ("dup.wav", "dup.flac", "ok.wav"):
            _wav(audio / name, SEGMENTS[-1].end)
        for name in ("dup.lab", "ok.lab"):
            write_lab(annotations / name, SEGMENTS)
    for root, annotations_dir in ((beside, None), (apart / "audio", apart / "chordlab")):
        index = scan_song_folder(root, annotations_dir=annotations_dir)
        assert [song.name for song in index.songs] == ["ok"]
        assert [path.name for path, _ in index.ambiguous] == ["dup.flac", "dup.wav"]
        assert index.duplicates == [] and index.unpaired_annotations == [] and index.problems == 2
        skipped = index.skipped_songs()
        assert list(skipped) == ["dup"] and "dup.flac" in skipped["dup"] and "dup.wav" in skipped["dup"]
        assert "neither is paired" in skipped["dup"] and "pairs file" in skipped["dup"]
        assert "2 audio files that match several annotations, or share one (song skipped" in index.report()
    # Without an annotation of that name, the one not used is listed as before.
    (beside / "dup.lab").unlink()
    index = scan_song_folder(beside)
    assert [path.name for path, _ in index.duplicates] == ["dup.wav"] and index.ambiguous == []


def test_an_annotation_that_labels_no_time_skips_its_song_naming_the_file(tmp_path):
    """A .lab of zero-length lines was counted as a good song, then crashed training with a raw
    IndexError."""
    write_lab(tmp_path / "a.lab", SEGMENTS)
    _wav(tmp_path / "a.wav", SEGMENTS[-1].end)
    (tmp_path / "zero.lab").write_text("0.0\t0.0\tC:maj\n")
    _wav(tmp_path / "zero.wav", SEGMENTS[-1].end)
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["a"]
    assert index.skipped_songs() == {
        "zero": f"{tmp_path / 'zero.lab'}: no chord segments (its one segment is zero-length)"
    }
    assert "1 annotation with errors (song skipped)" in index.report()


def test_the_scan_counts_the_annotated_time_in_chords_outside_the_chord_types(tmp_path):
    """Such chords train as X: a dataset in a notation the vocabulary does not read trained without a word
    said. An annotated X is the annotator's own and is not counted."""
    write_lab(tmp_path / "a.lab", SEGMENTS)  # 1 s of X among 9 s
    _wav(tmp_path / "a.wav", SEGMENTS[-1].end)
    shell = [
        ChordSegment(0.0, 2.0, "C:7(*3)"),
        ChordSegment(2.0, 3.0, "C:(1,b3)"),
        ChordSegment(3.0, 4.0, "C:(1,b3)"),
    ]
    write_lab(tmp_path / "b.lab", shell)
    _wav(tmp_path / "b.wav", 4.0)
    index = scan_song_folder(tmp_path)
    assert index.annotated_seconds == pytest.approx(13.0)
    assert index.outside_vocabulary == {"C:7(*3)": (1, 2.0), "C:(1,b3)": (2, 2.0)}
    report = index.report()
    assert "2 chord labels outside the 32 chord types (4.0 s, 30.8% of the annotated time)" in report
    assert (
        "they train as X (unknown chord), keeping the root and bass; mir_eval scores them as written"
        in report
    )
    assert report.index("C:(1,b3): 2 segments, 2.0 s") < report.index("C:7(*3): 1 segment, 2.0 s")
    assert scan_song_folder(tmp_path, validate=False).outside_vocabulary == {}


def test_the_scan_counts_the_labels_reduced_to_a_chord_of_other_notes(tmp_path):
    """C:aug(b7) trains as C:aug, C:7(#5) as C:7: only the labels that became X were reported, so a jazz
    set's simplified labels went unseen. A label a chord type holds exactly, however spelled, is not one."""
    reduced = [
        ChordSegment(0.0, 1.5, "C:aug(b7)"),
        ChordSegment(1.5, 3.0, "C:7(#5)"),
        ChordSegment(3.0, 4.0, "C:min6(9)"),
        ChordSegment(4.0, 4.5, "C:maj/b7"),  # the notes of C:7/b7
        ChordSegment(4.5, 5.0, "C:7(#5)"),
        ChordSegment(5.0, 6.0, "C:7(*3)"),  # X, listed apart
    ]
    write_lab(tmp_path / "r.lab", reduced)
    _wav(tmp_path / "r.wav", 6.0)
    index = scan_song_folder(tmp_path)
    assert index.reduced_labels == {
        "C:7(#5)": ("C:7", 2, 2.0),
        "C:aug(b7)": ("C:aug", 1, 1.5),
        "C:min6(9)": ("C:min6", 1, 1.0),
    }
    report = index.report()
    assert (
        "3 chord labels reduced to one of the 32 chord types (4.5 s, 75.0% of the annotated time)" in report
    )
    lab = tmp_path / "r.lab"
    listed = f"C:7(#5) → C:7: 2 segments, 2.0 s, at 1.50 s of {lab}\n    C:aug(b7) → C:aug: 1 segment, 1.5 s"
    assert listed in report
    assert "1 chord label outside the 32 chord types (1.0 s, 16.7% of the annotated time)" in report
    assert "C:maj/b7" not in report


def test_the_scan_does_not_list_a_bass_outside_its_chord_type_as_a_reduction(tmp_path):
    """A:min7/4 trains as min7 over D, which writes back as A:min7/4, its own notes: the data report listed it
    as reduced to a chord of other notes, 'A:min7/4 → A:min7/4', and C:maj/#4 as 'C:maj/#4 → C:maj/b5'."""
    segments = [
        ChordSegment(0.0, 1.0, "A:min7/4"),
        ChordSegment(1.0, 2.0, "C:maj/#4"),
        ChordSegment(2.0, 3.0, "C:maj/b3"),
        ChordSegment(3.0, 4.0, "C:9/b2"),  # drops the 9 it holds: still a reduction
    ]
    write_lab(tmp_path / "s.lab", segments)
    _wav(tmp_path / "s.wav", 4.0)
    index = scan_song_folder(tmp_path)
    assert index.reduced_labels == {"C:9/b2": ("C:7(b9)/b2", 1, 1.0)}
    report = index.report()
    assert "A:min7/4" not in report and "C:maj/#4" not in report and "C:maj/b3" not in report


def test_the_scan_says_where_each_label_it_changes_is_found(tmp_path):
    """The report listed 'B:7(*3): 3 segments, 6.0 s' and 'C:aug(b7) → C:aug' with no file: in a set of
    hundreds of annotations a musician could not find the chords to correct or check."""
    first = [
        ChordSegment(0.0, 2.0, "N"),
        ChordSegment(2.0, 4.0, "B:7(*3)"),
        ChordSegment(4.0, 6.0, "C:aug(b7)"),
    ]
    second = [
        ChordSegment(0.0, 1.5, "B:7(*3)"),
        ChordSegment(1.5, 3.0, "B:7(*3)"),
        ChordSegment(3.0, 6.0, "N"),
    ]
    for name, segments in (("a", first), ("b", second)):
        write_lab(tmp_path / f"{name}.lab", segments)
        _wav(tmp_path / f"{name}.wav", 6.0)
    report = scan_song_folder(tmp_path).report()
    assert f"B:7(*3): 3 segments, 5.0 s, first at 2.00 s of {tmp_path / 'a.lab'}, in 2 files" in report
    assert f"C:aug(b7) → C:aug: 1 segment, 2.0 s, at 4.00 s of {tmp_path / 'a.lab'}" in report


def test_split_by_song_is_disjoint_deterministic_and_order_free():
    songs = [SongEntry(f"s{i:02d}", None, None) for i in range(20)]
    train, val, test = split_songs(songs, 0.1, 0.2, seed=1)
    names = [s.name for part in (train, val, test) for s in part]
    assert sorted(names) == sorted(s.name for s in songs)
    assert split_songs(songs[::-1], 0.1, 0.2, seed=1) == (train, val, test)
    assert split_songs(songs, 0.1, 0.2, seed=2) != (train, val, test)
    assert len(split_songs(songs[:3], 0.05, 0.05)[1]) == 1  # a requested split is never empty
    with pytest.raises(ValueError, match="sum to less than 1"):
        split_songs(songs, 0.5, 0.5)
    # The demo's split (its published figures come from it): exact shares of a seeded shuffle, as before.
    assert [len(part) for part in split_songs_shuffled(songs, 0.1, 0.2, seed=1)] == [14, 2, 4]


def test_the_demo_splits_its_songs_into_train_and_val_with_demo_seed(monkeypatch):
    """The demo's train/val split is the seeded shuffle of `data.demo_seed` (a run with another demo_seed
    validates on other songs), not of a fixed seed. The songs are stand-ins, the same whatever the seed, so
    only the split can differ."""
    from audiotrain.recipes.chords import data as chord_data
    from audiotrain.recipes.chords.config import ChordDataConfig

    def make(kind, n, seed, timbres, style):
        return [SongEntry(f"{kind}-{i:02d}", None, None) for i in range(n)]

    monkeypatch.setattr(chord_data, "_demo_set_maker", lambda data, sr, together: make)
    vals = []
    for seed in (0, 1, 2):
        data = ChordDataConfig(
            demo_songs=20, demo_test_songs=2, demo_styles=("train",), val_fraction=0.25, demo_seed=seed
        )
        splits = chord_data.demo_splits(data, sr=8000)
        songs = make("train", 20, seed, None, "train")
        train, val, _ = split_songs_shuffled(songs, 0.25, 0.0, seed=seed)
        assert (splits.train, splits.val) == (train, val)
        vals.append({s.name for s in splits.val})
    assert len({frozenset(v) for v in vals}) == 3  # (each seed validates on other songs)


def test_the_demo_holds_out_songs_of_another_seed_and_scores_the_same_ones_alone(monkeypatch):
    """The held-out demo songs are rendered with demo_seed + 1000: with the training songs' seed they would be
    the training songs' audio again, and the scores would count songs the model trained on. `demo_test_songs`
    (a checkpoint scored without rendering its training songs) gives that same set."""
    from audiotrain.recipes.chords import data as chord_data
    from audiotrain.recipes.chords.config import ChordDataConfig

    made = []

    def make(kind, n, seed, timbres, style="train"):
        made.append((kind, n, seed, style))
        return [SongEntry(f"{kind}-{seed}-{i:02d}", None, None) for i in range(n)]

    monkeypatch.setattr(chord_data, "_demo_set_maker", lambda data, sr, together: make)
    data = ChordDataConfig(demo_songs=8, demo_test_songs=2, demo_seed=5)
    splits = chord_data.demo_splits(data, sr=8000)
    assert {seed for kind, _, seed, _ in made if kind == "train"} == {5}
    assert made[-1] == ("test", 2, 1005, "train")  # (demo_seed 5: the "test-...-seed1005-..." set)
    assert chord_data.demo_test_songs(data, sr=8000) == splits.test


def test_a_songs_part_stays_the_same_as_other_songs_come_and_go():
    """The split was a seeded shuffle of all the names: adding or removing one song moved about a third of
    the test songs into training, so a --init_from run on the grown folder scored "held-out" songs its
    starting weights had trained on."""
    songs = [SongEntry(f"artist{i % 7}/album{i % 3}/track{i:03d}", None, None) for i in range(300)]
    parts = [{s.name for s in part} for part in split_songs(songs, 0.15, 0.15, seed=0)]
    # About the shares asked for (each song's part is a hash of its name: not exact shares).
    assert all(abs(len(p) / 300 - share) < 0.06 for p, share in zip(parts, (0.7, 0.15, 0.15)))
    for changed in (songs[1:], songs[:150], [*songs, SongEntry("new/song", None, None)]):
        now = [{s.name for s in part} for part in split_songs(changed, 0.15, 0.15, seed=0)]
        for before, after in zip(parts, now):
            assert after - {"new/song"} <= before  # no song changed its part
    # The names as macOS writes them (decomposed) are the same songs, each in the same part: a folder copied
    # off a Mac must not reshuffle its split (test songs becoming training songs of an --init_from run).
    accented = [f"Café Noël/chanson {i:02d} été" for i in range(40)]

    def part_of_each(form):
        songs = [SongEntry(unicodedata.normalize(form, name), None, None) for name in accented]
        parts = split_songs(songs, 0.25, 0.25, seed=3)
        return {unicodedata.normalize("NFC", s.name): p for p, part in enumerate(parts) for s in part}

    composed = part_of_each("NFC")
    assert set(composed.values()) == {0, 1, 2}  # songs in each of train, val and test
    assert part_of_each("NFD") == composed


@pytest.mark.parametrize("by", ["folder", "top_folder"])
def test_split_by_folder_keeps_each_folders_songs_in_one_part(by):
    songs = [
        SongEntry(f"artist{a}/album{b}/track{t}", None, None)
        for a in range(6)
        for b in range(4)
        for t in range(5)
    ]
    songs += [SongEntry(f"loose{i}", None, None) for i in range(10)]  # directly in the data folder: alone
    train, val, test = split_songs(songs, 0.2, 0.2, seed=0, by=by)
    assert train and val and test
    part_of = {}
    for part, members in (("train", train), ("val", val), ("test", test)):
        for song in members:
            parts = song.name.split("/")
            group = song.name if len(parts) == 1 else "/".join(parts[:2] if by == "folder" else parts[:1])
            assert part_of.setdefault(group, part) == part, f"{group} is split between parts"
    loose = {part_of[f"loose{i}"] for i in range(10)}
    assert len(loose) > 1  # the songs outside any folder are not one group
    # Named as the Python argument is (it said "split_by", the recipes' flag, which split_songs has not).
    with pytest.raises(ValueError, match=r"^by must be one of song, folder, top_folder .*got 'album'"):
        split_songs(songs, by="album")


def test_a_small_folder_still_gets_every_part_asked_for():
    for n in range(1, 12):
        songs = [SongEntry(f"s{i}", None, None) for i in range(n)]
        for seed in range(20):
            train, val, test = split_songs(songs, 0.15, 0.15, seed=seed)
            # At least half the training share, but for the one song each other part gets.
            least = min(math.ceil(0.7 * n / 2), n - (n >= 2) - (n >= 3))
            assert len(train) >= least and len(train) + len(val) + len(test) == n
            assert (len(val) >= 1) == (n >= 2) and (len(test) >= 1) == (n >= 3), (n, seed)
            assert not split_songs(songs, 0.0, 0.0, seed=seed)[1]  # a fraction 0 gets nothing


def test_a_small_folder_moves_the_group_nearest_the_part_it_fills():
    """A part left empty takes a group from the part most over its share, the one of its groups whose
    position is nearest the empty part's range: the song that moves back first as songs are added."""
    songs = [SongEntry(f"song{i}", None, None) for i in range(4)]
    # Seed 0: song1 (0.67) and song0 (0.83) both fall in train; validation takes song1, nearer its range.
    assert 0.2 < split_position("song:song1", 0) < split_position("song:song0", 0)
    assert [[s.name for s in part] for part in split_songs(songs[:2], 0.1, 0.1, seed=0)] == [
        ["song0"],
        ["song1"],
        [],
    ]
    # Seed 2: song3 (0.011) and song2 (0.096) fall in test, song1 (0.57) and song0 (0.70) in train. Test is
    # the part most over its share (2 songs for 0.4), so validation takes its song nearest: song2.
    positions = [split_position(f"song:song{i}", 2) for i in range(4)]
    assert positions[3] < positions[2] < 0.1 < positions[1] < positions[0]
    assert [[s.name for s in part] for part in split_songs(songs, 0.1, 0.1, seed=2)] == [
        ["song0", "song1"],
        ["song2"],
        ["song3"],
    ]


@pytest.mark.parametrize(
    "n, val_fraction, test_fraction, sizes",
    [(9, 0.3, 0.0, [6, 3, 0]), (2, 0.1, 0.0, [1, 1, 0]), (2, 0.1, 0.1, [1, 0, 1]), (3, 0.1, 0.1, [1, 1, 1])],
)
def test_the_demos_shuffled_split_cuts_rounded_shares(n, val_fraction, test_fraction, sizes):
    """`split_songs_shuffled` (the demo's published split) rounds each share (2.7 of 9 songs is 3), and gives
    a fraction above 0 one song once there are three songs, or two that leave one to train on (the 2 demo
    songs `--data.demo_songs` allows at least: one trains, one validates)."""
    songs = [SongEntry(f"s{i}", None, None) for i in range(n)]
    parts = split_songs_shuffled(songs, val_fraction, test_fraction, seed=0)
    assert [len(part) for part in parts] == sizes


def test_a_split_refuses_two_songs_of_one_name_and_a_pattern_leaves_a_song_it_misses_alone():
    with pytest.raises(ValueError, match="song names are not unique"):
        split_songs([SongEntry("a", None, None), SongEntry("a", None, None)])
    # (with a pattern, the folder rule of split_by is not applied to a name the pattern misses)
    assert split_group("artist/album/x", "folder", r"take(\d)") == "song:artist/album/x"


def test_two_recordings_sharing_one_annotation_file_are_kept_in_one_part(tmp_path):
    """A pairs file may pair two recordings of one take with its one annotation (GuitarSet's _mic and _mix
    share a .jams). Split by their names alone, one trained and the other was tested for some seeds: the test
    scores then measured the model's memory of the take. They go to the part of the smaller name's group
    (take_mic's), and every other song stays where it was."""
    others = [SongEntry(f"s{i:02d}", None, tmp_path / f"s{i:02d}.lab") for i in range(30)]
    mic = SongEntry("take_mic", None, tmp_path / "take.jams")
    (tmp_path / "rows").mkdir()
    mix = SongEntry("take_mix", None, tmp_path / "rows" / ".." / "take.jams")  # (another spelling of it)
    apart = SongEntry("take_mix", None, tmp_path / "take_mix.jams")
    parted = []
    for seed in range(20):
        before = [{s.name for s in part} for part in split_songs([*others, mic, apart], 0.2, 0.2, seed=seed)]
        now = [{s.name for s in part} for part in split_songs([*others, mix, mic], 0.2, 0.2, seed=seed)]
        mics = next(p for p, names in enumerate(before) if "take_mic" in names)
        if "take_mix" not in before[mics]:
            parted.append(seed)
        expected = [
            names | {"take_mix"} if p == mics else names - {"take_mix"} for p, names in enumerate(before)
        ]
        assert now == expected, seed
    assert 5 in parted  # (seed 5 trained on take_mic and tested take_mix; 17 of these 20 parted them)


@pytest.mark.parametrize("by, pattern", [("song", None), ("folder", None), ("song", r"^(\d\d)/")])
def test_a_split_where_no_annotation_file_is_shared_is_the_split_of_the_names(tmp_path, by, pattern):
    """Songs in folders of their own, each with an annotation of the same file name (Billboard's
    0003/majmin.lab): different files, so no song moves from the part its group's name gives it."""
    songs = [
        SongEntry(
            f"{n:02d}/{k}/audio", tmp_path / f"{n:02d}/{k}/audio.wav", tmp_path / f"{n:02d}/{k}/majmin.lab"
        )
        for n in range(8)
        for k in range(4)
    ]
    names_alone = [SongEntry(song.name, None, None) for song in songs]  # (no file: names alone)
    for seed in range(5):
        parts = split_songs(songs, 0.2, 0.2, seed=seed, by=by, pattern=pattern)
        given_the_names = split_songs(names_alone, 0.2, 0.2, seed=seed, by=by, pattern=pattern)
        assert [[s.name for s in part] for part in parts] == [[s.name for s in p] for p in given_the_names]


# ------------------------------------------------------------------------------------------- targets


def test_frame_targets_at_frame_centres():
    targets = frame_targets(SEGMENTS, n_frames=95, frame_rate=FRAME_RATE)
    assert targets["chord_type"].dtype == np.int32
    c_maj7 = encode_label("C:maj7/3")
    assert (targets["chord_type"][0], targets["root"][0], targets["bass"][0]) == (0, -1, -1)
    assert targets["chord_type"][9] == 0 and targets["chord_type"][10] == c_maj7.chord_type
    assert (targets["root"][10], targets["bass"][10]) == (0, 4)
    assert targets["chord_type"][65] == CHORD_TYPES.index("X") and targets["root"][65] == -1
    # After the annotation ends nobody said what plays: ignored by every head, not trained as N.
    assert [int(targets[k][90]) for k in ("chord_type", "root", "bass")] == [-1, -1, -1]
    moved = transpose_targets(targets, 3)
    assert moved["root"][10] == 3 and moved["bass"][10] == 7 and moved["root"][0] == -1


@pytest.mark.parametrize(
    "n_frames, frame_rate, name",
    [(4, 0, "frame_rate"), (4, -2.0, "frame_rate"), (4, float("nan"), "frame_rate"), (-1, 2.0, "n_frames")],
)
def test_frame_targets_refuses_a_frame_rate_or_count_that_places_no_frames_naming_it(
    n_frames, frame_rate, name
):
    # frame_rate=0 labelled every frame ignored (with numpy's divide-by-zero warnings), -2.0 labelled the
    # frames at 0, -0.5, -1 and -1.5 s (the first as C:maj, the rest ignored), and n_frames=-1 was numpy's
    # bare "negative dimensions are not allowed".
    segments = [ChordSegment(0.0, 1.0, "C:maj"), ChordSegment(1.0, 2.0, "A:min")]
    with pytest.raises(ValueError, match=f"frame_targets: {name} must be"):
        frame_targets(segments, n_frames, frame_rate)
    assert frame_targets(segments, np.int64(4), 2.0)["chord_type"].tolist() == [2, 2, 3, 3]


def test_a_chord_change_between_frames_labels_each_frame_by_the_time_of_its_centre():
    # CQT frame i is centred at i / frame_rate (audiotrain.features.cqt), so its label is the chord there,
    # not the one half a frame later or earlier. (Changes on the frame grid cannot tell these apart.) G
    # holds only from 0.98 to 1.03 s: the frame at 1.0 s alone is G, and only if it is read at its centre.
    segments = [ChordSegment(0.0, 0.98, "C"), ChordSegment(0.98, 1.03, "G"), ChordSegment(1.03, 2.0, "F")]
    targets = frame_targets(segments, n_frames=20, frame_rate=FRAME_RATE)
    assert targets["root"][8:12].tolist() == [0, 0, 7, 5]  # frames at 0.8, 0.9, 1.0 and 1.1 s


def test_an_omitted_third_label_trains_as_x_with_its_root_and_bass():
    """Isophonics' B:7(*3) trained as X with root and bass ignored, so the root head was never taught the
    root the annotator gave; the loss masks each head by its own target, so only the chord type is X."""
    segments = [ChordSegment(0.0, 1.0, "B:7(*3)/b7"), ChordSegment(1.0, 2.0, "X")]
    targets = frame_targets(segments, n_frames=20, frame_rate=FRAME_RATE)
    x = CHORD_TYPES.index("X")
    assert [int(targets[k][5]) for k in ("chord_type", "root", "bass")] == [x, 11, 9]
    assert [int(targets[k][15]) for k in ("chord_type", "root", "bass")] == [x, -1, -1]  # no root given
    moved = transpose_targets(targets, 2)
    assert [int(moved[k][5]) for k in ("chord_type", "root", "bass")] == [x, 1, 11]


def test_crop_bins_shifts_content_up():
    config = ChordSongConfig(
        frame_rate=FRAME_RATE, n_bins=24, bins_per_semitone=BPS, spare_bins=12, pitch_shifts=(-6, 6)
    )
    features = np.zeros((config.total_bins, 1), np.float32)
    features[20] = 1  # in the unshifted view at bin 20 - 12 = 8
    assert np.argmax(crop_bins(features, config, 0)[0]) == 8
    assert np.argmax(crop_bins(features, config, 2)[0]) == 8 + 2 * BPS
    assert np.argmax(crop_bins(features, config, -3)[0]) == 8 - 3 * BPS


def test_crop_bins_shifts_the_bass_view_with_the_chord_view():
    """A bass view (its own bins and spare bins, stacked under the first view's) is cut at the same shift,
    and comes after the n_bins in each frame."""
    config = ChordSongConfig(
        frame_rate=FRAME_RATE,
        n_bins=24,
        bins_per_semitone=BPS,
        spare_bins=12,
        pitch_shifts=(-6, 6),
        bass_view_bins=8,
    )
    assert config.total_bins == 24 + 24 + 8 + 24 and config.input_bins == 32
    features = np.zeros((config.total_bins, 1), np.float32)
    features[20] = 1  # the chord view's bin 8
    features[48 + 12 + 3] = 2  # the bass view's bin 3
    for shift in (0, 2, -1):
        frame = crop_bins(features, config, shift)[0]
        assert frame.shape == (32,)
        assert np.flatnonzero(frame == 1).tolist() == [8 + shift * BPS]
        assert np.flatnonzero(frame == 2).tolist() == [24 + 3 + shift * BPS]


def test_config_checks_spare_bins():
    with pytest.raises(ValueError, match="spare_bins >= 18"):
        ChordSongConfig(frame_rate=10, bins_per_semitone=3, spare_bins=12)
    # A fraction of a semitone was cut to a whole one (-2.5 became -2): refused, naming the argument.
    with pytest.raises(ValueError, match=r"ChordSongConfig.pitch_shifts must be whole semitones .* got -2.5"):
        ChordSongConfig(frame_rate=10, pitch_shifts=(-2.5, 0.5, 2.5))
    assert ChordSongConfig(frame_rate=10, pitch_shifts=(-2.0, 0, np.int64(2))).pitch_shifts == (-2, 0, 2)
    assert ChordSongConfig(
        frame_rate=10, bins_per_semitone=3, spare_bins=0, pitch_shifts=()
    ).pitch_shifts == (0,)


# ------------------------------------------------------------------------------------------- dataset


def _config(**kwargs):
    defaults = dict(frame_rate=FRAME_RATE, n_bins=48, bins_per_semitone=BPS, spare_bins=12, window_frames=16)
    return ChordSongConfig(**{**defaults, **kwargs})


def _check_item_is_consistent(item, config):
    """The lit bins of every labelled frame are exactly the pitch classes of its (transposed) label."""
    pcs_of_bin = (LOWEST_PC + (config.spare_bins + np.arange(config.n_bins)) // BPS) % 12
    for t in range(len(item["mask"])):
        if item["mask"][t] == 0 or item["root"][t] < 0:
            continue
        label = decode_label(item["chord_type"][t], item["root"][t], item["bass"][t])
        lit = set(pcs_of_bin[item["features"][t] > 0].tolist())
        assert lit == set(parse_harte(label).pitch_classes), (t, label)


def test_training_windows_shift_features_and_labels_together(tmp_path):
    config = _config()
    dataset = ChordSongDataset(
        [_song(tmp_path, "a", SEGMENTS)], _fake_cqt(config), config, train=True, seed=0
    )
    assert len(dataset) == 6  # ceil(9 s * 10 fps / 16 frames)
    shifts_seen = set()
    for epoch in range(6):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            item = dataset[i]
            assert item["features"].shape == (16, 48) and item["features"].dtype == np.float32
            assert item["chord_type"].dtype == np.int32 and item["mask"].sum() == 16
            _check_item_is_consistent(item, config)
            labelled = item["root"] >= 0
            if labelled.any():
                untransposed = dataset.song_targets(0)["root"]
                shifts_seen.add(int((item["root"][labelled][0] - untransposed[untransposed >= 0][0]) % 12))
    assert len(shifts_seen) > 3


def test_training_windows_draw_every_shift_of_the_config(tmp_path):
    """Each configured shift is drawn, the tritone (+6, the last of the 12 keys) included: bin b of frame t
    holds 1000 t + b, so a window's first value says its start and its shift."""
    config = _config(pitch_shifts=tuple(range(-5, 7)))  # 12 spare bins: 6 semitones each way
    frames = 90
    rows = np.arange(config.total_bins, dtype=np.float32)[:, None] + 1000 * np.arange(frames)[None, :]
    dataset = ChordSongDataset([_song(tmp_path, "a", SEGMENTS)], lambda path: rows, config, seed=0)
    seen = set()
    for epoch in range(30):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            first_bin = int(dataset[i]["features"][0, 0]) % 1000
            seen.add((config.spare_bins - first_bin) // BPS)
    assert seen == set(config.pitch_shifts)


def test_the_config_may_be_a_dict_and_wrong_argument_types_are_named(tmp_path):
    """Each used to fail inside as an AttributeError ('str' object has no attribute 'read_segments',
    'dict' object has no attribute 'allow_gaps') or, for feature_fn, at the first item."""
    config = _config()
    song = _song(tmp_path, "a", SEGMENTS)
    fields = {
        "frame_rate": FRAME_RATE,
        "n_bins": 48,
        "bins_per_semitone": BPS,
        "spare_bins": 12,
        "window_frames": 16,
    }
    assert ChordSongDataset([song], _fake_cqt(config), fields).config == config
    refused = [
        (
            (str(tmp_path), _fake_cqt(config), config),
            TypeError,
            r"songs=\.\.\.\): expected SongEntry .*got the path",
        ),
        (([str(song.audio_path)], _fake_cqt(config), config), TypeError, r"songs=\.\.\.\): item 0 is a str"),
        (([song], None, config), TypeError, r"feature_fn=\.\.\.\): expected a function .*got NoneType"),
        (
            ([song], _fake_cqt(config), None),
            TypeError,
            r"config=\.\.\.\): expected a ChordSongConfig .*NoneType",
        ),
        (
            ([song], _fake_cqt(config), {**fields, "window": 8}),
            ValueError,
            r"unknown field 'window'; did you mean",
        ),
        (([song], _fake_cqt(config), {"window_frames": 64}), ValueError, r"the dict needs 'frame_rate'"),
    ]
    for args, error, message in refused:
        with pytest.raises(error, match=r"ChordSongDataset\(.*" + message):
            ChordSongDataset(*args)
    with pytest.raises(ValueError, match="ChordSongDataset needs at least one song"):
        ChordSongDataset([], _fake_cqt(config), config)  # (an empty part of a split)


def test_windows_are_deterministic_and_change_with_epoch(tmp_path):
    config = _config()
    song = _song(tmp_path, "a", SEGMENTS)
    a = ChordSongDataset([song], _fake_cqt(config), config, train=True, seed=3)
    b = ChordSongDataset([song], _fake_cqt(config), config, train=True, seed=3)
    for i in range(len(a)):
        np.testing.assert_array_equal(a[i]["features"], b[i]["features"])
    first = [a[i]["features"].copy() for i in range(len(a))]
    a.set_epoch(1)
    assert any(not np.array_equal(f, a[i]["features"]) for i, f in enumerate(first))
    # inside a DataLoader the draws follow the loader's seed and epoch
    batches = [
        [batch["root"].tolist() for batch in DataLoader(ds, batch_size=2, seed=7)]
        for ds in (ChordSongDataset([song], _fake_cqt(config), config, seed=3),) * 2
    ]
    assert batches[0] == batches[1]


def test_training_windows_lie_within_the_annotated_span_of_a_partly_annotated_song(tmp_path):
    """Windows were drawn over the whole recording while their count came from where the annotation ends:
    on 60 s of audio annotated from 20 s to 30 s, most windows held no labelled frame (all ignored by the
    loss). Now each window lies within the annotated span (or covers all of a span shorter than a window),
    and a song gets windows for its annotated seconds."""
    config = _config()
    audio_frames = 600  # 60 s at 10 fps
    late = _song(tmp_path, "late", [ChordSegment(20.0, 25.0, "C:maj"), ChordSegment(25.0, 30.0, "G:min")])
    brief = _song(tmp_path, "brief", [ChordSegment(40.0, 41.0, "A:min")])  # 10 frames: under a window
    dataset = ChordSongDataset(
        [late, brief], lambda path: np.ones((config.total_bins, audio_frames), np.float32), config, seed=0
    )
    assert len(dataset) == math.ceil(10 * FRAME_RATE / 16) + 1  # 7 windows for 10 s, 1 for the brief one
    for epoch in range(20):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            labelled = int((dataset[i]["chord_type"] >= 0).sum())
            assert labelled == (16 if i < 7 else 10), (epoch, i)


def test_windows_of_a_song_annotated_throughout_are_drawn_as_before(tmp_path):
    """On a fully annotated song (every demo song) the draws are those of earlier versions, start ~
    U[0, frames - window]: the demo's windows, losses and figures stay the same."""
    config = _config(pitch_shifts=(0,))
    frames = 90  # 9 s, annotated throughout
    rows = np.arange(frames, dtype=np.float32)[None, :].repeat(config.total_bins, axis=0)
    dataset = ChordSongDataset([_song(tmp_path, "a", SEGMENTS)], lambda path: rows, config, seed=5)
    assert (dataset.song_targets(0)["chord_type"] >= 0).all()
    for epoch in range(3):
        dataset.set_epoch(epoch)
        for i in range(len(dataset)):
            start = np.random.default_rng([5, epoch, i]).integers(0, frames - 16 + 1)
            assert dataset[i]["features"][0, 0] == start


def test_evaluation_chunks_cover_whole_songs(tmp_path):
    config = _config(eval_chunk_frames=20)
    songs = [_song(tmp_path, "a", SEGMENTS), _song(tmp_path, "b", SEGMENTS[:3])]
    dataset = ChordSongDataset(songs, _fake_cqt(config), config, train=False)
    frames = [dataset.n_frames(0), dataset.n_frames(1)]
    assert frames == [93, 48]
    assert len(dataset) == 5 + 3
    items = [dataset[i] for i in range(len(dataset))]
    assert {item["features"].shape for item in items} == {(20, 48)}  # one shape for a compiled eval step
    for song in range(2):
        chunks = {int(it["start_frame"]): it for it in items if it["song_index"] == song}
        assert sum(it["mask"].sum() for it in chunks.values()) == frames[song]
        in_order = np.concatenate([chunks[s]["chord_type"] for s in sorted(chunks)])[: frames[song]]
        np.testing.assert_array_equal(in_order, dataset.song_targets(song)["chord_type"])
        padded = [it for it in chunks.values() if it["mask"].min() == 0]
        assert all((it["chord_type"][it["mask"] == 0] == -1).all() for it in padded)
    for item in items:
        _check_item_is_consistent(item, config)
    with pytest.raises(IndexError, match="index -1 out of range for 8 items"):
        dataset[-1]
    for wrong in (1.5, True, "0"):  # (numpy's and Python's own errors, naming neither)
        with pytest.raises(
            TypeError, match=rf"ChordSongDataset index must be a whole number .*{type(wrong).__name__}"
        ):
            dataset[wrong]
    assert int(dataset[np.int64(7)]["song_index"]) == 1


def test_evaluation_chunks_keep_a_songs_last_frame_alone_in_a_chunk(tmp_path):
    """A song one frame longer than a whole number of chunks is scored on that frame too, and a song of one
    frame on its one frame."""
    config = _config(eval_chunk_frames=4)
    songs = [
        _song(tmp_path, "nine", [ChordSegment(0.0, 0.9, "C")]),
        _song(tmp_path, "one", [ChordSegment(0.0, 0.1, "C")]),
    ]
    frames = {songs[0].audio_path: 9, songs[1].audio_path: 1}
    feature_fn = lambda path: np.zeros((config.total_bins, frames[path]), np.float32)  # noqa: E731
    dataset = ChordSongDataset(songs, feature_fn, config, train=False)
    chunks = [(int(dataset[i]["song_index"]), int(dataset[i]["start_frame"])) for i in range(len(dataset))]
    assert chunks == [(0, 0), (0, 4), (0, 8), (1, 0)]
    assert [float(dataset[i]["mask"].sum()) for i in (2, 3)] == [1.0, 1.0]


def test_evaluation_chunks_are_the_songs_unshifted_whatever_the_training_shifts(tmp_path):
    """Validation measures the songs as they are: each chunk holds its song's own labels and unshifted
    features, even where the training shifts leave out 0."""
    config = _config(eval_chunk_frames=20, pitch_shifts=(3, 6))
    dataset = ChordSongDataset([_song(tmp_path, "a", SEGMENTS)], _fake_cqt(config), config, train=False)
    features, targets = dataset.song_features(0), dataset.song_targets(0)
    for i in range(len(dataset)):
        item = dataset[i]
        start, real = int(item["start_frame"]), int(item["mask"].sum())
        for key in ("chord_type", "root", "bass"):
            np.testing.assert_array_equal(item[key][:real], targets[key][start : start + real])
        unshifted = crop_bins(features[:, start : start + real], config, 0)
        np.testing.assert_array_equal(item["features"][:real], unshifted)


def test_random_eq_changes_levels_not_pitches_of_training_windows(tmp_path):
    """With `eq_db`, a training window is the same window, shift and labels as without it, its features
    as if the audio had passed an equaliser (silence stays silent, every lit bin stays lit at another
    level, one gain per bin across time); evaluation chunks are untouched."""
    song = _song(tmp_path, "a", SEGMENTS)
    plain, equalised = (
        ChordSongDataset([song], _fake_cqt(_config()), _config(eq_db=eq), train=True, seed=1)
        for eq in (0, 12)
    )
    changed = 0
    for i in range(len(plain)):
        a, b = plain[i], equalised[i]
        np.testing.assert_array_equal(a["root"], b["root"])
        np.testing.assert_array_equal(a["features"] > 0, b["features"] > 0)
        _check_item_is_consistent(b, _config(eq_db=12))
        lit = a["features"] > 0
        gain = np.where(lit, np.expm1(b["features"]) / np.where(lit, np.expm1(a["features"]), 1.0), np.nan)
        assert np.nanmax(np.nanstd(gain[:, lit.any(axis=0)], axis=0)) < 1e-4  # one gain per bin
        changed += not np.allclose(a["features"], b["features"])
    assert changed == len(plain)
    evaluation = ChordSongDataset([song], _fake_cqt(_config()), _config(eq_db=12), train=False)
    reference = ChordSongDataset([song], _fake_cqt(_config()), _config(), train=False)
    np.testing.assert_array_equal(evaluation[0]["features"], reference[0]["features"])
    curves = np.stack([random_eq_db(np.random.default_rng(k), 216, 36, 12.0) for k in range(50)])
    assert np.abs(curves).max() <= 2.5 * 12.0 and curves.std(axis=0).min() > 2.0
    x = np.random.default_rng(0).random((4, 216)).astype(np.float32)
    np.testing.assert_allclose(apply_eq(x, np.zeros(216)), x, atol=1e-6)
    with pytest.raises(ValueError, match="eq_db"):
        _config(eq_db=-1.0)


def test_random_eq_gives_the_bass_view_the_gains_of_its_frequencies(tmp_path):
    """The bass view's bins sit at the frequencies of the first view's lowest bins: an equaliser must change
    them alike, at every pitch shift."""
    config = _config(bass_view_bins=12, eq_db=12.0)
    chord_view = _fake_cqt(_config())

    def feature_fn(path):
        first = chord_view(path) + 0.1  # (every bin at some level)
        return np.concatenate([first, first[: config.bass_view_bins + 2 * config.spare_bins]])

    song = _song(tmp_path, "a", SEGMENTS)
    dataset = ChordSongDataset([song], feature_fn, config, train=True, seed=0)
    plain = ChordSongDataset([song], feature_fn, _config(bass_view_bins=12), train=True, seed=0)
    for i in range(len(dataset)):
        x = dataset[i]["features"]
        assert not np.allclose(x, plain[i]["features"])
        np.testing.assert_allclose(x[:, 48:], x[:, :12], rtol=1e-6)


def test_short_song_is_padded_and_masked(tmp_path):
    config = _config(window_frames=64)
    dataset = ChordSongDataset([_song(tmp_path, "a", SEGMENTS[:2])], _fake_cqt(config), config)
    item = dataset[0]
    assert item["mask"].sum() == 33 and (item["chord_type"][33:] == -1).all()


FEWER_FILES_THAN_SONGS = """
import resource, sys
from pathlib import Path
import numpy as np
from audiotrain.chords.lab import ChordSegment, write_lab
from audiotrain.data import DataLoader
from audiotrain.datasets.chord_songs import ChordSongConfig, ChordSongDataset, SongEntry
from audiotrain.features.cache import FeatureCache

resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
root = Path(sys.argv[1])
config = ChordSongConfig(frame_rate=10.0, n_bins=48, bins_per_semitone=2, spare_bins=12, window_frames=16)
cache = FeatureCache(root / "cache", {"test": 1})
songs = []
for i in range(150):
    (root / f"s{i}.wav").write_bytes(b"audio")
    write_lab(root / f"s{i}.lab", [ChordSegment(0.0, 4.0, "C:maj")])
    songs.append(SongEntry(f"s{i}", root / f"s{i}.wav", root / f"s{i}.lab"))

def feature_fn(path):  # memory-mapped cache entries, as the chord recipe reads them
    return cache.get_or_compute(path, lambda: np.ones((config.total_bins, 40), np.float32))

train = ChordSongDataset(songs, feature_fn, config, train=True)
windows = sum(len(batch["mask"]) for batch in DataLoader(train, batch_size=8, shuffle=True, num_workers=2))
chunks = len(ChordSongDataset(songs, feature_fn, config, train=False))
print(f"epoch of {windows} windows; {chunks} chunks")
"""


def test_an_epoch_over_more_cached_songs_than_the_open_file_limit_completes(tmp_path):
    # Songs read from the feature cache are memory-mapped, and a map holds an open file: a dataset that
    # kept one per song failed with "Too many open files" once it had more songs than `ulimit -n`.
    script = tmp_path / "epoch.py"
    script.write_text(FEWER_FILES_THAN_SONGS)
    env = child_env()
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "epoch of 450 windows; 450 chunks"


def test_dataset_errors_name_the_file(tmp_path):
    config = _config()
    song = _song(tmp_path, "a", SEGMENTS)
    dataset = ChordSongDataset([song], lambda path: np.zeros((10, 5)), config)
    with pytest.raises(ValueError, match=r"a.wav: feature_fn returned shape \(10, 5\), expected \[72"):
        dataset[0]
    (tmp_path / "bad.lab").write_text("0 1 C\n2 3 G\n")
    with pytest.raises(AnnotationError, match="bad.lab, line 2: gap"):
        ChordSongDataset([SongEntry("bad", song.audio_path, tmp_path / "bad.lab")], _fake_cqt(config), config)


def test_a_dataset_with_allow_gaps_reads_a_gap_as_n(tmp_path):
    """--data.allow_gaps lets the scan take an annotation with a gap; the training set must read it the same
    way, not refuse it as the scan did not."""
    config = _config(allow_gaps=True)
    song = _song(tmp_path, "a", SEGMENTS)
    (tmp_path / "gap.lab").write_text("0 1 C\n2 3 G\n")
    gapped = SongEntry("gap", song.audio_path, tmp_path / "gap.lab")
    dataset = ChordSongDataset([gapped], lambda path: np.zeros((config.total_bins, 30), np.float32), config)
    chord_type = dataset.song_targets(0)["chord_type"]
    n, c, g = (encode_label(label).chord_type for label in ("N", "C", "G"))
    assert chord_type[:10].tolist() == [c] * 10
    assert chord_type[10:20].tolist() == [n] * 10  # the gap, 1 s to 2 s
    assert chord_type[20:].tolist() == [g] * 10


# ------------------------------------------------------------------------------------------- clips


def test_a_song_shorter_than_the_features_need_is_skipped_by_the_scan_and_named(tmp_path):
    """`min_duration` (what one window of features needs): a 0.7 s song is listed as too short when 1 s is
    needed, a song of exactly 1 s is kept."""
    for name, seconds in (("short", 0.7), ("enough", 1.0)):
        _wav(tmp_path / f"{name}.wav", seconds)
        (tmp_path / f"{name}.lab").write_text(f"0.0 {seconds} C\n")
    index = scan_song_folder(tmp_path, min_duration=1.0)
    assert [s.name for s in index.songs] == ["enough"]
    [(path, why)] = index.unreadable_audio
    assert path == tmp_path / "short.wav" and "(700 ms); the features need 1 s" in why, why


def test_a_song_of_a_few_samples_is_named_by_its_samples_not_as_lasting_zero_seconds(tmp_path):
    """A 10-sample file was "too short (0.000 s, the features need 0.003 s)" in the scan, where predict said
    "10 samples at 22050 Hz (0.454 ms); the features need 2.9 ms"."""
    _wav(tmp_path / "tiny.wav", seconds=10 / 22050, sr=22050)
    (tmp_path / "tiny.lab").write_text("0.0 1.0 C\n")
    index = scan_song_folder(tmp_path, min_duration=0.0029)
    [(path, why)] = index.unreadable_audio
    assert why == f"{path}: audio is too short (10 samples at 22050 Hz (0.454 ms); the features need 2.9 ms)"


def test_clip_dataset_csv_with_indices_names_and_labels(tmp_path):
    _wav(tmp_path / "clips" / "a.wav", seconds=0.5, sr=22050)
    _wav(tmp_path / "clips" / "b.wav", seconds=0.25, sr=22050)
    _wav(tmp_path / "clips" / "c.wav", seconds=0.25, sr=22050)
    (tmp_path / "metadata.csv").write_text(
        "file_name,chord_type,root,bass_note,label\n"
        "clips/a.wav,min,9,0,\n"  # (a chord_type column is names or indices throughout, as it is here)
        "clips/b.wav,min7,F#,F#,\n"
        "clips/c.wav,,,,C:maj7/3\n"
    )
    dataset = ChordClipDataset(tmp_path, sr=22050, feature_fn=lambda audio, sr: audio[None, :10])
    assert len(dataset) == 3 and dataset.clip_samples == 11025
    items = [dataset[i] for i in range(3)]
    assert [(int(i["chord_type"]), int(i["root"]), int(i["bass"])) for i in items] == [
        (3, 9, 0),
        (12, 6, 6),
        (11, 0, 4),
    ]
    assert {i["audio"].shape for i in items} == {(11025,)} and items[0]["features"].shape == (1, 10)
    # The documented dtypes: int32 targets (as the frame datasets give them, so batches stack) and float32.
    assert {i[k].dtype for i in items for k in ("chord_type", "root", "bass")} == {np.dtype(np.int32)}
    assert {i[k].dtype for i in items for k in ("audio", "features")} == {np.dtype(np.float32)}


def test_clips_recorded_at_another_rate_are_resampled_to_the_datasets(tmp_path):
    """A clip at 44.1 kHz in a 22.05 kHz dataset is resampled: read at its own rate, its first half would play
    an octave down (a 440 Hz tone's peak at 220 Hz)."""
    t = np.arange(44100) / 44100
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    (tmp_path / "metadata.csv").write_text("file_name,label\na.wav,A:maj\n")
    dataset = ChordClipDataset(tmp_path, sr=22050)
    assert dataset.clip_samples == 22050
    audio = dataset[0]["audio"]
    assert audio.shape == (22050,)
    assert np.argmax(np.abs(np.fft.rfft(audio))) * 22050 / len(audio) == pytest.approx(440, abs=2)


def test_a_clip_dataset_at_16_khz_loads_and_describes_its_audio_at_16_khz(tmp_path):
    """Only the default 22.05 kHz was tried: audio loaded at 22.05 kHz into a 16 kHz buffer would put a 440 Hz
    tone at 319 Hz, and feature_fn told 22050 would compute the wrong frequencies."""
    t = np.arange(22050) / 44100
    sf.write(tmp_path / "a.wav", (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 44100)
    (tmp_path / "metadata.csv").write_text("file_name,label\na.wav,A:maj\n")
    dataset = ChordClipDataset(tmp_path, sr=16000, feature_fn=lambda audio, sr: np.array([sr]))
    assert dataset.clip_samples == 8000
    item = dataset[0]
    assert item["audio"].shape == (8000,) and item["features"].tolist() == [16000]
    assert np.argmax(np.abs(np.fft.rfft(item["audio"]))) * 16000 / 8000 == pytest.approx(440, abs=2)
    # 0.57 * 100 is 56.99999...: rounded, not cut to 56 samples.
    assert ChordClipDataset(tmp_path, sr=100, clip_seconds=0.57).clip_samples == 57


def test_clip_metadata_errors_name_the_line(tmp_path):
    _wav(tmp_path / "a.wav")
    rows = [
        {"file_name": "a.wav", "chord_type": 40, "root": 0, "bass_note": 0},
        {"file_name": "missing.wav", "chord_type": 2, "root": 0, "bass_note": 0},
        {"file_name": "a.wav", "chord_type": "maj", "root": "H", "bass_note": 0},
        {"file_name": "a.wav", "chord_type": "N", "root": "", "bass_note": ""},
    ]
    (tmp_path / "metadata.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(ValueError) as info:
        ChordClipDataset(tmp_path)
    message = str(info.value)
    assert "3 bad rows" in message
    assert "metadata.jsonl, line 1: chord_type 40 is outside 0..31" in message
    assert f"line 2: audio file {tmp_path / 'missing.wav'} does not exist" in message
    assert "line 3: root 'H'" in message


def test_annotation_longer_than_the_audio_is_reported(tmp_path):
    config = _config()
    song = _song(tmp_path, "a", SEGMENTS)
    short_features = lambda path: np.zeros((config.total_bins, 40), np.float32)  # noqa: E731  (4 s of 9)
    dataset = ChordSongDataset([song], short_features, config)
    with pytest.warns(UserWarning, match=r"a.lab ends at 9.0 s but the features of .*a.wav cover 4.0 s"):
        dataset.song_targets(0)


def test_an_annotation_ending_over_2_s_past_its_audio_skips_its_song_wherever_it_starts(tmp_path):
    """The tolerance is 2 s past the audio's end, measured to the annotation's end: 2.5 s over is another
    version of the recording (its labels would train misaligned), 1.5 s over is the same one cut a little
    short; an annotation that starts late is measured to its end too, not by its length."""
    for name, seconds, segments in (
        ("over", 1.0, [ChordSegment(0.0, 3.5, "C")]),
        ("within", 1.0, [ChordSegment(0.0, 2.5, "C")]),
        ("late", 2.0, [ChordSegment(1.0, 4.5, "C")]),  # 3.5 s long, ends 2.5 s past the audio
    ):
        _wav(tmp_path / f"{name}.wav", seconds)
        write_lab(tmp_path / f"{name}.lab", segments)
    index = scan_song_folder(tmp_path, allow_gaps=True)
    assert [song.name for song in index.songs] == ["within"]
    assert [path.name for path, _ in index.mismatched] == ["late.lab", "over.lab"]
    skipped = index.skipped_songs()
    assert sorted(skipped) == ["late", "over"]
    assert "over.lab ends at 3.5 s but over.wav lasts 1.0 s" in skipped["over"]


def test_annotated_audio_in_an_unsupported_format_is_named_with_the_supported_extensions(tmp_path):
    write_lab(tmp_path / "song.lab", SEGMENTS)
    (tmp_path / "song.m4a").write_bytes(b"\x00\x00\x00\x20ftypM4A " + bytes(100))
    write_lab(tmp_path / "sub" / "clip.lab", SEGMENTS)
    (tmp_path / "sub" / "clip.wma").write_bytes(bytes(100))
    write_lab(tmp_path / "lonely.lab", SEGMENTS)  # really no audio
    (tmp_path / "lonely.txt").write_text("notes")
    index = scan_song_folder(tmp_path)
    assert index.songs == [] and index.unpaired_annotations == [tmp_path / "lonely.lab"]
    assert [p for p, _ in index.unsupported_audio] == [tmp_path / "song.m4a", tmp_path / "sub" / "clip.wma"]
    assert index.problems == 3
    report = index.report()
    assert "2 audio files in a format the loader does not read (songs skipped)" in report
    line = next(line for line in report.splitlines() if "song.m4a" in line)
    assert "song.lab" in line and ".m4a" in line and ".wav" in line and ".flac" in line
    assert "annotation without" not in line


def test_an_itunes_rip_renamed_mp3_is_skipped_as_a_format_not_read_not_as_corrupt(tmp_path):
    """An M4A renamed .mp3 beside its annotation was listed as 'file is corrupt or truncated (... Format not
    recognised.)': the user would download it again, or discard it; it is a format the loader does not read,
    with the ffmpeg command that converts it."""
    write_lab(tmp_path / "itunes.lab", SEGMENTS)
    (tmp_path / "itunes.mp3").write_bytes(
        b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(3000)
    )
    index = scan_song_folder(tmp_path)
    assert index.songs == []
    line = next(line for line in index.report().splitlines() if "itunes.mp3" in line)
    assert "corrupt" not in line, line
    assert "M4A/MP4" in line and f"ffmpeg -i {tmp_path / 'itunes.mp3'} {tmp_path / 'itunes.flac'}" in line, (
        line
    )


def test_mp3s_joined_into_one_are_skipped_saying_the_decoder_stops_early_not_that_the_annotation_overruns(
    tmp_path,
):
    """Two MP3s joined into one (`cat`) decode as the first alone: the song was skipped as an annotation
    running 8 s past its audio ('another version of the recording?'), and `predict` transcribed its first 2 s."""
    tone = (0.3 * np.sin(2 * np.pi * 220 * np.arange(10 * 8000) / 8000)).astype(np.float32)
    sf.write(tmp_path / "a.mp3", tone[:16000], 8000, format="MP3")
    sf.write(tmp_path / "b.mp3", tone[16000:], 8000, format="MP3")
    joined = (tmp_path / "a.mp3").read_bytes() + (tmp_path / "b.mp3").read_bytes()
    for part in ("a.mp3", "b.mp3"):
        (tmp_path / part).unlink()
    (tmp_path / "set.mp3").write_bytes(joined)
    write_lab(tmp_path / "set.lab", [ChordSegment(0.0, 5.0, "C:maj"), ChordSegment(5.0, 10.0, "G:maj")])
    index = scan_song_folder(tmp_path)
    assert index.songs == [] and index.mismatched == []
    line = next(line for line in index.report().splitlines() if "set.mp3" in line)
    assert "but the decoder stops at 2.0 s" in line and "ffmpeg -i" in line, line


@pytest.mark.parametrize(
    "name, container",
    [("logic export.caf", "CAF"), ("x.aifc", "AIFF"), ("x.w64", "W64"), ("x.rf64", "RF64"), ("x.au", "AU")],
)
def test_every_format_the_loader_reads_is_a_song_in_a_folder(name, container, tmp_path):
    """`predict x.caf` transcribed it, but a folder scan passed .caf and .aifc over: their annotation was "an
    annotation without an audio file", or the audio "in a format the loader does not read"."""
    sf.write(tmp_path / name, 0.1 * np.ones(9 * 8000, np.float32), 8000, format=container)
    write_lab((tmp_path / name).with_suffix(".lab"), SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [song.audio_path.name for song in index.songs] == [name] and index.problems == 0, index.report()


def test_scan_reads_gzipped_jamz_annotations(tmp_path):
    write_jams(tmp_path / "a.jamz", SEGMENTS)
    _wav(tmp_path / "a.wav", SEGMENTS[-1].end)
    write_jams(tmp_path / "b.jamz", SEGMENTS)
    write_lab(tmp_path / "b.lab", SEGMENTS)  # .lab wins
    _wav(tmp_path / "b.wav", SEGMENTS[-1].end)
    index = scan_song_folder(tmp_path)
    assert [(s.name, s.annotation_path.name) for s in index.songs] == [("a", "a.jamz"), ("b", "b.lab")]
    assert index.invalid == [] and [p.name for p, _ in index.duplicates] == ["b.jamz"]
    dataset = ChordSongDataset(index.songs, _fake_cqt(_config()), _config(), train=True)
    assert dataset.segments[0] == dataset.segments[1]  # the .jamz reads like the .lab


def test_a_jams_with_several_chord_annotations_is_listed_once_not_warned(tmp_path):
    import warnings

    write_jams(tmp_path / "two.jams", SEGMENTS)
    document = json.loads((tmp_path / "two.jams").read_text())
    document["annotations"].append(dict(document["annotations"][0], namespace="chord_harte"))
    (tmp_path / "two.jams").write_text(json.dumps(document))
    _wav(tmp_path / "two.wav", SEGMENTS[-1].end)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no raw Python warning with its source line
        index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["two"]
    report = index.report()
    assert report.count("two.jams") == 1 and "1 JAMS file with several chord annotations" in report, report
    assert "read_jams(" not in report  # no Python API a command-line user cannot reach


def test_a_jams_annotation_number_that_is_another_annotators_in_another_file_is_warned_of(tmp_path):
    """--data.jams_annotation N picks by position in each file: where two annotators' chords are stored in
    another order in some files, the run trained on a mix of both, each file listed apart and nothing said."""
    for name, annotators in (("a", ("Alice", "Bob")), ("b", ("Bob", "Alice")), ("c", ("Alice", "Bob"))):
        write_jams(tmp_path / f"{name}.jams", SEGMENTS)
        document = json.loads((tmp_path / f"{name}.jams").read_text())
        first = document["annotations"][0]
        document["annotations"] = [
            dict(first, annotation_metadata={**first["annotation_metadata"], "annotator": {"name": who}})
            for who in annotators
        ]
        (tmp_path / f"{name}.jams").write_text(json.dumps(document))
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
    report = scan_song_folder(tmp_path, jams_annotation=1).report()
    assert "2 annotators' chords used as chord annotation 1, which is not the same annotator's" in report
    assert f"chord by Alice: {tmp_path / 'b.jams'}\n" in report, report
    assert f"chord by Bob: {tmp_path / 'a.jams'}, {tmp_path / 'c.jams'}" in report, report
    # One annotator's in every file: nothing more to say than the files' list.
    (tmp_path / "b.jams").write_text((tmp_path / "a.jams").read_text())
    assert "not the same annotator's" not in scan_song_folder(tmp_path, jams_annotation=1).report()


def test_an_annotations_folders_file_that_a_file_beside_the_audio_overrides_is_named_as_such(tmp_path):
    """A stray .lab beside the audio paired it, and the annotations folder's one of the same song was listed
    as "matched by no audio file (another album's, perhaps)": it was matched, and passed over for the other.
    """
    audio, labs = tmp_path / "audio", tmp_path / "chordlab"
    _wav(audio / "Queen" / "01 - Intro.wav", SEGMENTS[-1].end)
    write_lab(audio / "Queen" / "01 - Intro.lab", SEGMENTS)
    (labs / "Queen").mkdir(parents=True)
    write_lab(labs / "Queen" / "01_-_Intro.lab", SEGMENTS)
    write_lab(labs / "Queen" / "02_-_Other_Album.lab", SEGMENTS)
    index = scan_song_folder(audio, annotations_dir=labs)
    assert [song.annotation_path for song in index.songs] == [audio / "Queen" / "01 - Intro.lab"]
    assert index.unused_annotations == [labs / "Queen" / "02_-_Other_Album.lab"], index.report()
    why = dict(index.duplicates)[labs / "Queen" / "01_-_Intro.lab"]
    assert why == "an annotation beside its audio (01 - Intro.wav) is used: 01 - Intro.lab", why


def test_nearly_paired_files_get_a_did_you_mean_hint(tmp_path):
    for audio, annotation in (
        ("Song0.wav", "song0.lab"),  # case
        ("song1.wav", "song1.wav.lab"),  # the audio suffix kept
        ("song2.wav", "song2.txt"),  # a .lab-format file under another suffix
        ("song 3.wav", "song_3.lab"),  # a space for an underscore
    ):
        _wav(tmp_path / audio, SEGMENTS[-1].end)
        write_lab(tmp_path / annotation, SEGMENTS)
    _wav(tmp_path / "alone.wav")
    report = scan_song_folder(tmp_path).report()
    for audio, annotation, stem in (
        ("Song0.wav", "song0.lab", "Song0"),
        ("song1.wav", "song1.wav.lab", "song1"),
        ("song2.wav", "song2.txt", "song2"),
        ("song 3.wav", "song_3.lab", "song 3"),
    ):
        assert f"{tmp_path / audio}: did you mean {annotation}? (pairs as {stem}.lab)" in report, report
    assert "alone.wav: did you mean" not in report


def test_a_did_you_mean_names_predicts_output_of_audio_sharing_a_stem(tmp_path):
    """predict on a folder names the outputs of tune.flac and tune.wav tune.flac.lab and tune.wav.lab: used
    as annotations, tune.flac (the one of its stem the scan pairs) was listed as "no annotation" with no hint,
    as both .lab files were near misses of its stem and the hint was dropped as ambiguous."""
    for name in ("tune.flac", "tune.wav"):
        _wav(tmp_path / name, SEGMENTS[-1].end)
        write_lab(tmp_path / f"{name}.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [(audio.name, near.name) for audio, near in index.near_misses] == [
        ("tune.flac", "tune.flac.lab")
    ], index.report()


def test_hidden_files_and_folders_are_ignored_and_counted(tmp_path):
    """A folder copied from a Mac: a deleted song in .Trashes was trained on (and leaked into the held-out
    songs beside its original), and each AppleDouble ._x.lab twin was a broken song quoted in a 16 KB line."""
    for name in ("song_0", "song_1"):
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / f"{name}.lab", SEGMENTS)
        for suffix in (".wav", ".lab"):  # AppleDouble: binary, a NUL-laden "line" of any length
            (tmp_path / f"._{name}{suffix}").write_bytes(b"\x00\x05\x16\x07Mac OS X  " + b"\x00" * 16000)
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    _wav(tmp_path / ".Trashes" / "501" / "old take.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / ".Trashes" / "501" / "old take.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["song_0", "song_1"]
    assert index.problems == 0 and not index.skipped_songs()
    report = index.report()
    assert "6 hidden files and folders ignored (names starting with '.': .DS_Store, .Trashes" in report
    assert max(len(line) for line in report.splitlines()) < 200


def test_binary_annotation_is_quoted_in_a_few_dozen_characters(tmp_path):
    _wav(tmp_path / "song.wav", SEGMENTS[-1].end)
    (tmp_path / "song.lab").write_bytes(b"\x00\x05\x16\x07Mac OS X  " + b"\x00" * 16000 + b"\n")
    _wav(tmp_path / "label.wav", SEGMENTS[-1].end)
    (tmp_path / "label.lab").write_text("0.0 1.0 " + "C" * 5000 + "\n")
    index = scan_song_folder(tmp_path)
    messages = dict((p.name, why) for p, why in index.invalid)
    assert "start and end must be numbers in seconds" in messages["song.lab"]
    assert "... (16014 characters)" in messages["song.lab"]
    assert "not a chord label" in messages["label.lab"] and "(5000 characters)" in messages["label.lab"]
    assert all(len(why) < 250 for why in messages.values()), messages


def test_a_broken_link_or_a_folder_beside_an_annotation_is_named_as_such(tmp_path):
    """Both were filtered out before pairing, so the user read 'an annotation without an audio file'."""
    _wav(tmp_path / "song_0.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "song_0.lab", SEGMENTS)
    (tmp_path / "song_9.wav").symlink_to("/media/usb/song_9.wav")
    write_lab(tmp_path / "song_9.lab", SEGMENTS)
    (tmp_path / "live.wav").mkdir()
    write_lab(tmp_path / "live.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["song_0"]
    assert index.unpaired_annotations == []
    skipped = index.skipped_songs()
    assert skipped["song_9"].endswith("(a symlink to /media/usb/song_9.wav, which does not exist)")
    assert skipped["live"].endswith("live.wav: path is not a regular file (a folder)")
    assert index.problems == 2


def test_a_fifo_or_a_device_named_like_audio_beside_an_annotation_is_named_as_such(tmp_path):
    """A FIFO (a read of it blocks) or a link to /dev/zero was left out before pairing, unnamed, so the user
    read 'an annotation without an audio file' though the audio file is there; neither is opened."""
    os.mkfifo(tmp_path / "pipe.wav")
    write_lab(tmp_path / "pipe.lab", SEGMENTS)
    (tmp_path / "zero.wav").symlink_to("/dev/zero")
    write_lab(tmp_path / "zero.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert index.songs == [] and index.unpaired_annotations == []
    skipped = index.skipped_songs()
    assert skipped["pipe"].endswith("pipe.wav: path is not a regular file")
    assert skipped["zero"].endswith("zero.wav: path is not a regular file")


def test_the_scan_report_shows_control_characters_in_file_names_escaped(tmp_path):
    """A file name holding ESC or BEL (a folder from someone else) recoloured the terminal and rang it where
    the scan report listed it: it is shown escaped, as repr writes it."""
    _wav(tmp_path / "song.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "song.lab", SEGMENTS)
    _wav(tmp_path / "s0\x1b[2J\x1b[31mRED\x07.wav")  # no annotation: listed
    report = scan_song_folder(tmp_path).report()
    assert "\x1b" not in report and "\x07" not in report
    assert "s0\\x1b[2J\\x1b[31mRED\\x07.wav" in report


def test_the_scan_report_shows_invisible_and_bidi_characters_in_file_names_escaped(tmp_path):
    """A zero-width space made "t\u200b.lab" look like "t.lab" in the report's "did you mean", and a
    right-to-left override showed the rest of the line reversed: both are shown escaped; an emoji's joiner is
    kept."""
    _wav(tmp_path / "t.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "t\u200b.lab", SEGMENTS)
    _wav(tmp_path / "a\u202ebal.wav")
    _wav(tmp_path / "\U0001f468\u200d\U0001f469.wav")
    report = scan_song_folder(tmp_path).report()
    assert "\u200b" not in report and "\u202e" not in report
    assert "t\\u200b.lab" in report and "a\\u202ebal.wav" in report
    assert "\U0001f468\u200d\U0001f469.wav" in report


def test_a_broken_link_beside_a_songs_audio_and_annotation_leaves_the_song_paired(tmp_path):
    """A leftover link of the song's stem (song.mp3 -> a file since moved) is not its audio: the song.wav
    beside it is, and the song is used."""
    _wav(tmp_path / "song.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "song.lab", SEGMENTS)
    (tmp_path / "song.mp3").symlink_to(tmp_path / "moved" / "song.mp3")
    index = scan_song_folder(tmp_path)
    assert [song.audio_path.name for song in index.songs] == ["song.wav"]
    assert index.unreadable_audio == [] and index.skipped_songs() == {}


def test_audio_and_annotation_named_in_different_unicode_forms_pair(tmp_path):
    """macOS writes 'Café' decomposed (NFD); a .lab written by a script is composed (NFC). The two were
    reported as audio without annotation and annotation without audio, under names that look identical."""
    composed = "Café Olé"
    _wav(tmp_path / f"{unicodedata.normalize('NFD', composed)}.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / f"{composed}.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == [unicodedata.normalize("NFD", composed)]  # as on disk
    assert index.problems == 0


def test_one_name_spelt_in_both_unicode_forms_is_reported_so_that_the_two_can_be_told_apart(tmp_path):
    """Beyoncé.wav + .lab composed and Beyoncé.wav + .lab decomposed (two songs on Linux): both recordings
    were listed as ambiguous under names that print alike, and one annotation as ignored because "another
    annotation with the same stem is used", while neither was."""
    for form in ("NFC", "NFD"):
        _wav(tmp_path / unicodedata.normalize(form, "Beyoncé.wav"), SEGMENTS[-1].end)
        write_lab(tmp_path / unicodedata.normalize(form, "Beyoncé.lab"), SEGMENTS)
    _wav(tmp_path / "ok.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "ok.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [song.name for song in index.songs] == ["ok"]
    reasons = [why for _, why in index.ambiguous]
    assert len(reasons) == 2
    assert "spelt Beyonc\\xe9.wav; Beyonce\\u0301.wav has the same stem" in "".join(reasons)
    [(path, why)] = index.duplicates
    assert path.suffix == ".lab" and "another annotation with the same stem is used" not in why
    assert "has the same stem, and neither is used: the audio files of that stem are ambiguous" in why
    assert "Beyonc\\xe9.lab" in why and "Beyonce\\u0301.lab" in why


def test_a_pairs_file_or_folder_typed_composed_finds_the_files_stored_decomposed(tmp_path):
    """Files copied from a Mac are named decomposed (NFD); a pairs file, --data or --data.annotations typed
    on Linux is composed (NFC). Each was "does not exist", naming a path that prints as the one on disk; on macOS,
    whose file systems ignore the form, the same rows and folder are read."""
    decomposed = tmp_path / unicodedata.normalize("NFD", "Dönerdata")
    _wav(decomposed / unicodedata.normalize("NFD", "Café.wav"), SEGMENTS[-1].end)
    write_lab(decomposed / unicodedata.normalize("NFD", "Café-chords.lab"), SEGMENTS)
    pairs = decomposed / "pairs.csv"
    pairs.write_text(unicodedata.normalize("NFC", "audio,annotation\nCafé.wav,Café-chords.lab\n"))
    composed = tmp_path / unicodedata.normalize("NFC", "Dönerdata")
    index = scan_song_folder(composed, pairs_file=composed / "pairs.csv")
    assert [(s.audio_path, s.annotation_path) for s in index.songs] == [
        (
            decomposed / unicodedata.normalize("NFD", "Café.wav"),
            decomposed / unicodedata.normalize("NFD", "Café-chords.lab"),
        )
    ]
    # So is an annotations folder (--data.annotations) typed composed.
    annotations = tmp_path / unicodedata.normalize("NFD", "Akkordö")
    write_lab(annotations / unicodedata.normalize("NFD", "Café.lab"), SEGMENTS)
    index = scan_song_folder(decomposed, annotations_dir=tmp_path / unicodedata.normalize("NFC", "Akkordö"))
    assert [s.annotation_path for s in index.songs] == [
        annotations / unicodedata.normalize("NFD", "Café.lab")
    ]


def test_a_pairs_file_pairs_the_file_it_names_of_two_whose_names_differ_only_in_unicode_form(tmp_path):
    """Beyoncé.wav composed and decomposed (two files on Linux): a pairs file naming the composed one was
    refused, "not an audio file the scan found", while one naming the other paired; which spelling worked
    depended on the order of the folder's names, and the file ignored was named as the one used, alike."""
    composed, decomposed = (unicodedata.normalize(form, "Beyoncé.wav") for form in ("NFC", "NFD"))
    for name in (composed, decomposed):
        _wav(tmp_path / name, SEGMENTS[-1].end)
    write_lab(tmp_path / "one.lab", SEGMENTS)
    write_lab(tmp_path / "two.lab", SEGMENTS)
    for name, other, escaped, other_escaped in (
        (composed, decomposed, "Beyonc\\xe9.wav", "Beyonce\\u0301.wav"),
        (decomposed, composed, "Beyonce\\u0301.wav", "Beyonc\\xe9.wav"),
    ):
        (tmp_path / "pairs.csv").write_text(f"audio,annotation\n{name},one.lab\n")
        index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
        assert [(s.audio_path.name, s.annotation_path.name) for s in index.songs] == [(name, "one.lab")]
        assert index.duplicates == [
            (
                tmp_path / other,
                f"spelt {other_escaped}; another audio file with the same stem is used: {escaped}",
            )
        ]
    # With a .lab beside each, neither used: neither is said to be "used".
    for name in (composed, decomposed):
        write_lab(tmp_path / name.replace(".wav", ".lab"), SEGMENTS)
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    labs = [why for path, why in index.duplicates if path.suffix == ".lab"]
    assert len(labs) == 2 and all(
        f"pairs.csv pairs {decomposed} with {tmp_path / 'one.lab'}" in why for why in labs
    )
    assert "spelt Beyonc\\xe9.lab; " in "".join(labs)
    (tmp_path / "pairs.csv").write_text(f"audio,annotation\n{composed},one.lab\n{decomposed},two.lab\n")
    with pytest.raises(ValueError) as caught:
        scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert str(caught.value) == (
        f"{tmp_path / 'pairs.csv'}: the audio files Beyonce\\u0301.wav and Beyonc\\xe9.wav are named by two rows, "
        "and the scan reads them as one stem (their names differ only in Unicode form): rename one of them"
    )


def test_audio_in_folders_whose_names_differ_only_in_unicode_form_is_told_apart(tmp_path):
    """Café/x.wav + x.lab, composed and decomposed: the two ambiguity lines printed alike, named no folder,
    and said "x.lab beside them" of a .lab beside only one of them."""
    composed, decomposed = (unicodedata.normalize(form, "Café") for form in ("NFC", "NFD"))
    for folder in (composed, decomposed):
        _wav(tmp_path / folder / "x.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / folder / "x.lab", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert index.songs == []
    reasons = dict(index.ambiguous)
    assert len(reasons) == 2
    why = reasons[tmp_path / composed / "x.wav"]
    assert (
        "spelt Caf\\xe9/x.wav; Cafe\\u0301/x.wav has the same stem, and Cafe\\u0301/x.lab, of that stem too, "
        in why
    )
    assert "could annotate either: neither is paired" in why and "beside" not in why
    why = reasons[tmp_path / decomposed / "x.wav"]
    assert (
        "spelt Cafe\\u0301/x.wav; Caf\\xe9/x.wav has the same stem, and Cafe\\u0301/x.lab, of that stem too, "
        in why
    )
    [(path, why)] = index.duplicates  # the other x.lab
    assert path == tmp_path / composed / "x.lab"
    assert why.startswith("spelt Caf\\xe9/x.lab; Cafe\\u0301/x.lab has the same stem, and neither is used")


def test_songs_in_symlinked_folders_are_scanned_once_and_the_report_names_the_links(tmp_path):
    """train / evaluate / cv left out the albums a library links in from another disk, without a word (predict
    entered them). A link back up the tree, or a second link to one album, is entered once and listed."""
    library, data = tmp_path / "library", tmp_path / "data"
    for album in ("Abbey Road", "Help!"):
        write_lab(library / album / "01 Song.lab", SEGMENTS)
        _wav(library / album / "01 Song.wav", SEGMENTS[-1].end)
    write_lab(data / "Local" / "take.lab", SEGMENTS)
    _wav(data / "Local" / "take.wav", SEGMENTS[-1].end)
    (data / "Abbey Road").symlink_to(library / "Abbey Road")
    (data / "Help!").symlink_to(library / "Help!")
    (data / "More Help").symlink_to(library / "Help!")  # the same real folder twice
    (data / "Local" / "up").symlink_to(data)  # a loop
    index = scan_song_folder(data)
    assert [s.name for s in index.songs] == ["Abbey Road/01 Song", "Help!/01 Song", "Local/take"]
    assert sorted(p.name for p in index.links_not_entered) == ["More Help", "up"]
    report = index.report()
    assert "3 annotated songs" in report
    assert "symlinked folders entered (Abbey Road, Help!" in report
    assert "2 folders reached through symlinks not entered" in report
    assert f"{data / 'Local' / 'up'} -> {data.resolve()}" in report


def test_one_recording_reached_twice_through_links_is_one_song_and_the_other_path_is_named(tmp_path):
    """A link to a song of the folder (``d1_again.wav -> d1.wav``), or a link to a file that a linked folder
    holds too, made two songs of one recording: a split could train on one and test on the other."""
    library, data = tmp_path / "lib", tmp_path / "data"
    for folder, name in ((library, "single"), (data, "d1"), (data, "d2")):
        write_lab(folder / f"{name}.lab", SEGMENTS)
        _wav(folder / f"{name}.wav", SEGMENTS[-1].end)
    (data / "library").symlink_to(library)
    for suffix in (".wav", ".lab"):
        (data / f"single{suffix}").symlink_to(library / f"single{suffix}")
        (data / f"d1_again{suffix}").symlink_to(f"d1{suffix}")
    index = scan_song_folder(data)
    assert [s.name for s in index.songs] == ["d1", "d2", "library/single"]
    assert index.links_not_used == [
        (data / "d1_again.wav", data / "d1.wav"),
        (data / "single.wav", data / "library" / "single.wav"),
    ]
    assert index.unpaired_annotations == [] and index.problems == 0  # (their annotations went with them)
    report = index.report()
    assert "3 annotated songs" in report
    assert "2 audio files reached through symlinks not used" in report
    assert (
        f"{data / 'd1_again.wav'} -> {data.resolve() / 'd1.wav'}: the same file as {data / 'd1.wav'}"
        in report
    )
    # A pairs file that names the link pairs the song under that name, still once.
    (data / "pairs.csv").write_text("single.wav,single.lab\nd1.wav,d1.lab\nd2.wav,d2.lab\n")
    index = scan_song_folder(data, pairs_file=data / "pairs.csv")
    assert sorted(s.name for s in index.songs) == ["d1", "d2", "single"]
    assert [p.relative_to(data).as_posix() for p, _ in index.links_not_used] == [
        "d1_again.wav",
        "library/single.wav",
    ]
    # Naming one recording twice, under two names, is refused as naming it twice under one is.
    (data / "pairs.csv").write_text("d1.wav,d1.lab\nd1_again.wav,d1_again.lab\n")
    with pytest.raises(
        ValueError, match=r"line 2: .*d1_again.wav \(the same file as .*d1.wav\) is paired on line 1"
    ):
        scan_song_folder(data, pairs_file=data / "pairs.csv")


def test_a_pairs_file_reads_a_quoted_name_starting_with_a_hash_and_skips_comment_lines(tmp_path):
    """A row naming "#1 Hit.wav", quoted, was read as a comment: the song was reported as audio without an
    annotation, and its annotation as not named in the pairs file, which names it."""
    for name in ("#1 Hit", "Other"):
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / "labels" / f"{name}-chords.lab", SEGMENTS)
    (tmp_path / "pairs.csv").write_text(
        '# made by hand, "a quote in a comment\n'
        "audio,annotation\n"
        '"#1 Hit.wav","labels/#1 Hit-chords.lab"\n'
        "  # Other.wav,labels/Other-chords.lab (left out for now)\n"
        "Other.wav,labels/Other-chords.lab\n"
        "missing.wav,labels/Other-chords.lab\n"
    )
    with pytest.raises(ValueError, match=r"pairs.csv, line 6: the audio .*missing.wav does not exist"):
        scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    text = (tmp_path / "pairs.csv").read_text()
    (tmp_path / "pairs.csv").write_text(text.replace("missing.wav,labels/Other-chords.lab\n", ""))
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert sorted(s.name for s in index.songs) == ["#1 Hit", "Other"]
    assert index.problems == 0 and index.unused_annotations == []


def test_a_pairs_file_reads_a_quoted_name_with_spaces_after_its_closing_quote(tmp_path):
    """A space after a closing quote (``"Song, Live.wav" ,...``, aligned columns, or a line's trailing spaces)
    was read as the name quoted (the cells are stripped) until the reader went strict, which refused the row
    as "a quoted cell goes on after its closing quote". The last row may end without a line break."""
    for name in ("Song, Live", "Other"):
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / f"{name}.lab", SEGMENTS)
    (tmp_path / "pairs.csv").write_text('"Song, Live.wav" ,"Song, Live.lab"  \n"Other.wav",Other.lab')
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert sorted(s.name for s in index.songs) == ["Other", "Song, Live"]


def test_broadcast_wav_pairs_and_an_unreadable_format_beside_an_annotation_is_named(tmp_path):
    """A field recorder's take1.bwf (a WAV, which the loader reads) was invisible to the scan: its take1.lab
    was "an annotation without an audio file". Audio in a format the loader does not read, under a suffix
    no list knows, is named as that, not as missing."""
    for name in ("take1.bwf", "take2.wav", "take3.xyz"):
        sf.write(tmp_path / name, np.zeros(8000 * 10, np.float32), 8000, format="WAV")
        write_lab((tmp_path / name).with_suffix(".lab"), SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [s.name for s in index.songs] == ["take1", "take2"]
    assert index.unpaired_annotations == []
    assert [p.name for p, _ in index.unsupported_audio] == ["take3.xyz"]
    assert (
        "the audio of take3.lab is in a format the loader does not read (.xyz)"
        in index.skipped_songs()["take3"]
    )
    assert "without an audio file" not in index.report()


def test_midi_or_a_playlist_beside_an_annotation_is_not_audio_to_convert(tmp_path):
    """RWC ships each song's MIDI beside it: beside an annotation without audio, it is no audio in a format
    the loader does not read (with advice to convert it with ffmpeg); the annotation has no audio file."""
    for name, head in (("rwc_001.mid", b"MThd\x00\x00\x00\x06"), ("album.m3u", b"#EXTM3U\n")):
        (tmp_path / name).write_bytes(head)
        write_lab((tmp_path / name).with_suffix(".lab"), SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert index.unsupported_audio == []
    assert index.unpaired_annotations == [tmp_path / "album.lab", tmp_path / "rwc_001.lab"]
    assert "ffmpeg" not in index.report()


def _guitarset_jams(path, lead, performed):
    """A GuitarSet-like JAMS: two chord annotations told apart only by their data_source, among others."""

    def annotation(namespace, segments, source=""):
        metadata = {"annotator": {}, "version": "", "annotation_rules": "", "data_source": source}
        data = [
            {"time": s.start, "duration": s.duration, "value": s.label, "confidence": None} for s in segments
        ]
        return {"namespace": namespace, "annotation_metadata": metadata, "data": data}

    annotations = [annotation("key_mode", [ChordSegment(0.0, 9.0, "C:major")])]
    annotations += [
        annotation("chord", lead, "leadsheet"),
        annotation("chord", performed, "performed chords"),
    ]
    path.write_text(json.dumps({"annotations": annotations}))


@pytest.mark.filterwarnings(
    "ignore::audiotrain.chords.lab.SeveralAnnotationsWarning"
)  # (the scan lists them)
def test_the_jams_annotation_setting_picks_which_chord_annotation_trains_and_scores(tmp_path):
    """GuitarSet's JAMS hold the lead sheet's chords and the performed ones: the report said "chord, chord",
    and neither train nor evaluate could use the second. A file with fewer skips its song, named."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    performed = [ChordSegment(0.0, 4.5, "G:maj"), ChordSegment(4.5, 9.0, "D:min")]
    for name in ("00_BN1", "01_Jazz", "02_Rock"):
        _guitarset_jams(tmp_path / f"{name}.jams", SEGMENTS, performed)
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
    write_jams(tmp_path / "03_one.jams", SEGMENTS)  # a single chord annotation
    _wav(tmp_path / "03_one.wav", SEGMENTS[-1].end)

    first = scan_song_folder(tmp_path)
    assert len(first) == 4
    report = first.report()
    held = "0: chord (data_source: leadsheet) (used), 1: chord (data_source: performed chords)"
    assert f"00_BN1.jams: {held}" in report
    assert "--data.jams_annotation N" in report
    assert first.songs[0].read_segments() == SEGMENTS

    splits, screen = folder_splits(ChordDataConfig(data_dir=str(tmp_path), jams_annotation=1), seed=0)
    songs = splits.train + splits.val + splits.test
    assert sorted(s.name for s in songs) == ["00_BN1", "01_Jazz", "02_Rock"]
    assert all(s.read_segments() == performed for s in songs)
    assert "1: chord (data_source: performed chords) (used)" in screen
    assert (
        "03_one.jams: chord annotation 1 (counted from 0) asked for, but the file holds 1 (0: chord" in screen
    )
    with pytest.raises(ValueError, match="jams_annotation"):
        ChordDataConfig(jams_annotation=-1)


def test_an_annotations_folder_pairs_the_isophonics_layout_and_never_guesses(tmp_path):
    """Isophonics' `Album/01 - Come Together.wav` against `chordlab/Artist/11_-_Album/01_-_Come_Together.lab`
    did not pair (0 songs, every file listed). A name that two annotations, or two audio files, share is
    listed by name and its songs skipped."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    data, chordlab = tmp_path / "The Beatles", tmp_path / "chordlab" / "The Beatles"
    for audio, lab in [
        ("Abbey Road/01 - Come Together", "11_-_Abbey_Road/01_-_Come_Together"),
        ("Abbey Road/02 - Something", "11_-_Abbey_Road/02_-_Something"),
        ("Help!/01 - Help!", "05_-_Help!/01_-_Help!"),
        ("Live/03 - Yesterday", "06_-_Help!/03_-_Yesterday"),
        ("Anthology/03 - Yesterday", None),  # a second audio file of that name
        ("Odds/04 - Intro", "01_-_Please/04_-_Intro"),
        ("Odds/04 - Intro", "02_-_With/04_-_Intro"),  # a second annotation of that name
    ]:
        _wav(data / f"{audio}.wav", SEGMENTS[-1].end)
        if lab:
            write_lab(chordlab / f"{lab}.lab", SEGMENTS)
    write_lab(chordlab / "12_-_Let_It_Be/06_-_Let_It_Be.lab", SEGMENTS)  # no audio

    splits, screen = folder_splits(
        ChordDataConfig(data_dir=str(data), annotations=str(tmp_path / "chordlab")), seed=0
    )
    songs = sorted(splits.train + splits.val + splits.test, key=lambda s: s.name)
    assert [(s.name, s.annotation_path.relative_to(chordlab).as_posix()) for s in songs] == [
        ("Abbey Road/01 - Come Together", "11_-_Abbey_Road/01_-_Come_Together.lab"),
        ("Abbey Road/02 - Something", "11_-_Abbey_Road/02_-_Something.lab"),
        ("Help!/01 - Help!", "05_-_Help!/01_-_Help!.lab"),
    ]
    assert (
        "3 audio files that match several annotations, or share one (song skipped, never guessed)" in screen
    )
    assert "04 - Intro.wav: its name matches 2 annotations in" in screen
    assert "01_-_Please/04_-_Intro.lab, The Beatles/02_-_With/04_-_Intro.lab" in screen
    assert f"{data / 'Live/03 - Yesterday.wav'} matches the same annotation in" in screen
    assert "1 annotation not used" in screen and "06_-_Let_It_Be.lab" in screen  # no song is missing
    index = scan_song_folder(data, annotations_dir=tmp_path / "chordlab")
    assert set(index.skipped_songs()) == {
        "Odds/04 - Intro",
        "Live/03 - Yesterday",
        "Anthology/03 - Yesterday",
    }  # fmt: skip (Let It Be's annotation, of an album not scanned, is no song skipped)


def test_audio_without_any_annotation_names_the_annotations_and_pairs_flags(tmp_path):
    """A first run on Isophonics' audio, its chordlab/ apart, said only "0 annotated songs" and listed
    every audio file; it now names the flags that pair them. Not where an annotation was found, nor once
    --data.annotations is given."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    data = tmp_path / "The Beatles"
    for name in ("01 - Come Together", "02 - Something"):
        _wav(data / "Abbey Road" / f"{name}.wav", SEGMENTS[-1].end)
    (tmp_path / "chordlab").mkdir()
    flags = ("--data.annotations DIR", "--data.pairs FILE.csv")
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(ChordDataConfig(data_dir=str(data)), seed=0)
    assert "no annotation lies beside the audio" in str(raised.value)
    assert all(flag in str(raised.value) for flag in flags), raised.value
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(ChordDataConfig(data_dir=str(data), annotations=str(tmp_path / "chordlab")), seed=0)
    assert not any(flag in str(raised.value) for flag in flags), raised.value
    write_lab(data / "Abbey Road" / "01 - Come Together.lab", SEGMENTS)  # one annotated: not the hint
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(ChordDataConfig(data_dir=str(data)), seed=0)
    assert "no annotation lies beside" not in str(raised.value)


def test_a_pairs_file_pairs_the_billboard_and_guitarset_layouts(tmp_path):
    """McGill Billboard's `0003/audio.wav` beside five reductions, GuitarSet's `_mic` audio apart from its
    JAMS: no name rule fits them; a CSV of audio,annotation rows (relative to its folder) pairs them."""
    _wav(tmp_path / "0003" / "audio.wav", SEGMENTS[-1].end)
    _wav(tmp_path / "0004" / "audio.wav", SEGMENTS[-1].end)
    for reduction in ("full", "majmin", "majmin7inv"):
        write_lab(tmp_path / "0003" / f"{reduction}.lab", SEGMENTS)
        write_lab(tmp_path / "0004" / f"{reduction}.lab", SEGMENTS)
    _wav(tmp_path / "audio_mono-mic" / "00_BN1-129-Eb_comp_mic.wav", SEGMENTS[-1].end)
    write_jams(tmp_path / "annotation" / "00_BN1-129-Eb_comp.jams", SEGMENTS)
    (tmp_path / "pairs.csv").write_text(
        "audio,annotation\n0003/audio.wav,0003/majmin7inv.lab\n0004/audio.wav,0004/majmin7inv.lab\n"
        "audio_mono-mic/00_BN1-129-Eb_comp_mic.wav,annotation/00_BN1-129-Eb_comp.jams\n"
    )
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert [(s.name, s.annotation_path.name) for s in index.songs] == [
        ("0003/audio", "majmin7inv.lab"),
        ("0004/audio", "majmin7inv.lab"),
        ("audio_mono-mic/00_BN1-129-Eb_comp_mic", "00_BN1-129-Eb_comp.jams"),
    ]
    assert index.unpaired_audio == [] and len(index.unused_annotations) == 4  # the other reductions
    assert index.unpaired_annotations == [] and not index.skipped_songs()  # (not songs without audio)


#: The head of McGill Billboard's ``salami_chords.txt`` (song 0003), tabs as in the file.
SALAMI_CHORDS = (
    "# title: I Don't mind\n# artist: James Brown\n# metre: 6/8\n# tonic: C\n\n0.0\tsilence\n"
    "7.3469387e-2\tA, intro, | A:min | A:min | C:maj | C:maj |\n"
    "8.714013605\t| A:min | A:min | C:maj | C:maj |\n"
)


def test_billboards_salami_chords_in_a_pairs_file_names_its_format_and_the_lab_reductions(tmp_path):
    """A pairs file naming Billboard's salami_chords.txt (not one of the .lab reductions) failed on "line 6:
    expected 'start end label' (3 fields), got 2", which says nothing of the file picked."""
    _wav(tmp_path / "0003" / "audio.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "0003" / "full.lab", SEGMENTS)
    (tmp_path / "0003" / "salami_chords.txt").write_text(SALAMI_CHORDS)
    (tmp_path / "pairs.csv").write_text("audio,annotation\n0003/audio.wav,0003/salami_chords.txt\n")
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert index.songs == [] and len(index.invalid) == 1
    why = index.invalid[0][1]
    assert "salami_chords.txt: McGill Billboard's salami_chords.txt format" in why, why
    assert "pair the song's full.lab or majmin.lab instead" in why and "line 6" not in why


def test_a_txt_beside_the_audio_that_is_not_a_lab_gets_no_did_you_mean(tmp_path):
    """salami_chords.txt saved as x.txt beside x.wav got "did you mean x.txt? (pairs as x.lab)", and renamed
    so it failed on its first line; notes kept as .txt too. A .txt in the .lab format still gets the hint."""
    _wav(tmp_path / "billboard.wav", SEGMENTS[-1].end)
    (tmp_path / "billboard.txt").write_text(SALAMI_CHORDS)
    _wav(tmp_path / "notes.wav", SEGMENTS[-1].end)
    (tmp_path / "notes.txt").write_text("Recorded live, second take.\n")
    _wav(tmp_path / "rwc.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "rwc.txt", SEGMENTS)
    index = scan_song_folder(tmp_path)
    assert [(audio.name, near.name) for audio, near in index.near_misses] == [("rwc.wav", "rwc.txt")]
    report = index.report()
    assert "did you mean billboard.txt" not in report and "did you mean notes.txt" not in report, report


def test_an_annotation_ending_at_1e308_is_reported_in_a_short_number(tmp_path):
    """A damaged .lab ending at 1e308 was skipped as longer than its audio, printed with 309 digits."""
    _wav(tmp_path / "a.wav", 2.0)
    (tmp_path / "a.lab").write_text("0.0 1.0 C\n1.0 1e308 G\n")
    index = scan_song_folder(tmp_path)
    assert [p.name for p, _ in index.mismatched] == ["a.lab"]
    assert "a.lab ends at 1e+308 s but a.wav lasts 2.0 s" in index.mismatched[0][1]


def test_an_annotation_in_milliseconds_is_said_to_be_so(tmp_path):
    """A .lab in milliseconds (`0 1500 C`) over 3 s of audio was skipped as "another version of the
    recording?"; one that, read as milliseconds, still does not fit its audio keeps that guess."""
    _wav(tmp_path / "ms.wav", 3.0)
    (tmp_path / "ms.lab").write_text("0 1500 C:maj\n1500 3000 N\n")
    _wav(tmp_path / "other.wav", 3.0)
    (tmp_path / "other.lab").write_text("0 1.5 C:maj\n1.5 240 N\n")
    skipped = scan_song_folder(tmp_path).skipped_songs()
    assert skipped["ms"].endswith(
        "ms.lab ends at 3000.0 s but ms.wav lasts 3.0 s (its times in milliseconds? A .lab's and a JAMS "
        "file's times are seconds)"
    )
    assert skipped["other"].endswith(
        "other.lab ends at 240.0 s but other.wav lasts 3.0 s (another version of the recording?)"
    )


def test_an_annotation_in_hundredths_of_a_second_is_said_to_be_so(tmp_path):
    """RWC stand-ins written in 10 ms units (`0 150 C:maj` for 1.5 s) over 3 s of audio were
    skipped as "another version of the recording?", which sends the user looking for other audio."""
    _wav(tmp_path / "RM-P001.wav", 3.0)
    (tmp_path / "RM-P001.lab").write_text("0 150 C:maj\n150 300 N\n")
    skipped = scan_song_folder(tmp_path).skipped_songs()
    assert skipped["RM-P001"].endswith(
        "RM-P001.lab ends at 300.0 s but RM-P001.wav lasts 3.0 s (its times in hundredths of a second, 10 ms "
        "units? A .lab's and a JAMS file's times are seconds)"
    )


@pytest.mark.parametrize(
    "rows, line, fragment",
    [
        ("a.wav,a.lab\nb.wav\n", 2, "expected two columns, audio,annotation"),
        ("a.wav,a.lab\n\nmissing.wav,a.lab\n", 3, "missing.wav does not exist"),
        # A quoted cell spanning lines: the row's first line is named.
        ('a.wav,a.lab\n"missing\nsong.wav",a.lab\n', 2, "song.wav does not exist"),
        ("a.lab,a.lab\n", 1, "a.lab is not an audio file the scan of"),
        ("a.wav,gone.lab\n", 1, "gone.lab does not exist"),
        ("a.wav,a.lab\n./a.wav,a.lab\n", 2, "a.wav is paired on line 1 already"),
        # An unquoted comma in a name (the Beatles' "Ob-La-Di, Ob-La-Da") makes a row of three cells.
        ("a.wav,a.lab\nOb-La-Di, Ob-La-Da.wav,a.lab\n", 2, 'a name that holds a comma must be quoted: "'),
        ("Ob-La-Di, Ob-La-Da.wav,a.lab\n", 1, "must be quoted"),
        # A split column: in every row, naming a part.
        ("audio,annotation,split\na.wav,a.lab\n", 2, "expected three columns, audio,annotation,split"),
        ("a.wav,a.lab,train\nb.wav,b.lab\n", 2, "the first row names a split, so every row must"),
        ("a.wav,a.lab,training\n", 1, "the split 'training' is not one of train, val, test (or validation"),
        # A cell over csv's 128 KB: a quote left open, or one long line (a raw _csv.Error before).
        ('a.wav,a.lab\n"b.wav,b.lab\n' + "c.wav,c.lab\n" * 20_000, 2, "field larger than field limit"),
        ("a.wav,a.lab\n" + "x" * 200_000 + ".wav,a.lab\n", 2, "a quote left open or stray in the row"),
        # A quote left open near the end swallowed the rest into one cell with no error from a lax reader:
        # "expected two columns; got ['b.wav,b.lab\\nc.wav,...']", or an annotation named with the next rows.
        ('a.wav,a.lab\n"b.wav,b.lab\nc.wav,c.lab\n', 2, "the file ends inside a quoted cell"),
        ('a.wav,"a.lab\nb.wav,b.lab\n', 1, "the file ends inside a quoted cell"),
        # A NUL byte (a damaged file) was "embedded null byte" from os.path, naming neither file nor line.
        ("audio,annotation\na.wav,a.lab\nb\x00.wav,a.lab\n", 3, "the audio cell 'b\\x00.wav' contains a NUL"),
        ('a.wav,"a\x00.lab"\n', 1, "the annotation cell 'a\\x00.lab' contains a NUL character"),
        # A name over 255 bytes: a raw OSError (File name too long) from Path.exists, naming no line.
        ("a.wav,a.lab\n" + "x" * 300 + ".wav,a.lab\n", 2, ".wav cannot be used (File name too long)"),
        ("a.wav," + "x" * 300 + ".lab\n", 1, "the annotation path"),
        # A fourth cell in the first row is no file format of its own: it is refused as in a later row.
        ("a.wav,a.lab,train,x\n", 1, "expected two columns, audio,annotation; got"),
        # An empty cell: the row had its columns, yet 'expected three columns' was said of it.
        (",a.lab\n", 1, "the audio cell is empty; expected a path; got ['', 'a.lab']"),
        ("audio,annotation,split\na.wav,a.lab,\n", 2, "the split cell is empty; expected train, val or test"),
        # A spreadsheet saved in a German or French locale separates by ';': the separator is named.
        ("audio;annotation\na.wav;a.lab\n", 1, "got ['audio;annotation'] (its columns look separated by ';'"),
        ("a.wav\ta.lab\n", 1, "(its columns look separated by '\\t': a pairs file is comma-separated"),
        ("a.wav,pairs.csv\n", 1, "pairs.csv is not one of .lab, .jams"),
        # A '#' that starts a line inside a quoted cell is part of the name, not a comment.
        ('a.wav,"a\n#x.lab"\n', 1, "a\n#x.lab does not exist"),
    ],
)
def test_a_pairs_file_error_names_the_file_and_line(tmp_path, rows, line, fragment):
    _wav(tmp_path / "a.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "a.lab", SEGMENTS)
    (tmp_path / "pairs.csv").write_text(rows)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'pairs.csv'}, line {line}: ")) as raised:
        scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert fragment in str(raised.value)


@pytest.mark.skipif(os.sep == "\\", reason="backslashes are separators there already")
def test_a_pairs_file_written_on_windows_pairs_its_backslash_paths(tmp_path):
    """`audio\\song1.wav,annotations\\song1.lab` named files called so, which Linux and macOS have not: every
    row was 'does not exist'. A file that has the backslash name as written is still the one named."""
    _wav(tmp_path / "audio" / "song1.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "annotations" / "song1.lab", SEGMENTS)
    _wav(tmp_path / "odd\\name.wav", SEGMENTS[-1].end)  # a name with a backslash in it, on this system
    write_lab(tmp_path / "annotations" / "odd.lab", SEGMENTS)
    (tmp_path / "pairs.csv").write_text(
        "audio,annotation\naudio\\song1.wav,annotations\\song1.lab\nodd\\name.wav,annotations\\odd.lab\n"
    )
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert [(s.audio_path, s.annotation_path) for s in index.songs] == [
        (tmp_path / "audio" / "song1.wav", tmp_path / "annotations" / "song1.lab"),
        (tmp_path / "odd\\name.wav", tmp_path / "annotations" / "odd.lab"),
    ]
    for row, line, fragment in [
        (
            "audio\\song1.wav,annotations\\song2.lab",
            3,
            f"the annotation {tmp_path / 'annotations/song2.lab'}",
        ),
        ("C:\\Music\\song1.wav,annotations\\song1.lab", 3, "a Windows path from its drive or root: write it"),
    ]:
        (tmp_path / "pairs.csv").write_text(f"audio,annotation\nodd\\name.wav,annotations\\odd.lab\n{row}\n")
        with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'pairs.csv'}, line {line}: ")) as raised:
            scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
        assert fragment in str(raised.value)


def test_a_pairs_file_split_column_names_each_songs_part(tmp_path):
    """A dataset's published split (Billboard's train/val/test lists) in a third column; without it the
    recipe splits the songs itself."""
    for name in ("0003", "0004", "0005"):
        _wav(tmp_path / name / "audio.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / name / "majmin.lab", SEGMENTS)
    rows = "0003/audio.wav,0003/majmin.lab,train\n0004/audio.wav,0004/majmin.lab,Val\n"
    (tmp_path / "pairs.csv").write_text(
        f"audio,annotation,split\n{rows}0005/audio.wav,0005/majmin.lab,test\n"
    )
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    by_name = {song.name: song for song in index.songs}
    train, val, test = split_songs_as_given(index.songs, index.parts)
    assert (train, val, test) == ([by_name["0003/audio"]], [by_name["0004/audio"]], [by_name["0005/audio"]])
    # Each part in name order, whatever the order of the songs given
    all_train = {song.audio_path: "train" for song in index.songs}
    assert split_songs_as_given(index.songs[::-1], all_train)[0] == index.songs
    # A song the column does not list, paired by its name, is in no part (it crashed the split with a
    # KeyError): not used, counted and listed with why, and a song missing for an unused annotation's line.
    _wav(tmp_path / "0006" / "audio.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "0006" / "audio.lab", SEGMENTS)
    write_lab(tmp_path / "0003" / "full.lab", SEGMENTS)  # (another reduction, which no row names)
    index = scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert [song.name for song in index.songs] == ["0003/audio", "0004/audio", "0005/audio"]
    why = (
        f"{tmp_path / '0006' / 'audio.wav'}: paired with audio.lab by its name, but pairs.csv's split column"
    )
    assert index.problems == 1 and index.skipped_songs() == {"0006/audio": f"{why} lists it in no part"}
    report = index.report()
    assert "  1 song paired by its name that the pairs file's split column lists in no part" in report
    assert f"\n    {why} lists it in no part" in report
    assert "1 annotation not used: not named in the pairs file" in report  # (full.lab)
    assert "no song is missing" not in report
    assert split_songs_as_given(index.songs, index.parts) == (train, val, test)
    # Hugging Face's and the CLAP recipe's name of the validation part, and others for it, case ignored (in
    # the header too: a spreadsheet's capitalised column names)
    for name in ("validation", "Valid", "DEV"):
        (tmp_path / "pairs.csv").write_text(
            f"Audio,Annotation,Split\n0004/audio.wav,0004/majmin.lab,{name}\n"
        )
        assert list(scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv").parts.values()) == ["val"]
    (tmp_path / "pairs.csv").write_text("0003/audio.wav,0003/majmin.lab\n")
    assert scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv").parts == {}


def test_a_group_pattern_keeps_the_takes_of_a_player_in_one_part(tmp_path):
    """GuitarSet's comp and solo takes of one excerpt landed in train and test: a pattern groups them."""
    songs = [
        _song(tmp_path, f"{player:02d}_BN{n}-129-Eb_{take}", SEGMENTS[:2])
        for player in range(6)
        for n in range(2)
        for take in ("comp", "solo")
    ]
    for pattern, key in ((r"^(\d\d)_", lambda name: name[:2]), (r"^(.*)_(comp|solo)$", lambda n: n[:-5])):
        parts = split_songs(songs, 0.2, 0.2, seed=3, pattern=pattern)
        groups = [{key(song.name) for song in part} for part in parts]
        assert all(groups) and sum(len(g) for g in groups) == len({key(s.name) for s in songs})
    with pytest.raises(ValueError, match=re.escape("group_pattern 'x(\\d)' matches none of the 24 song")):
        split_songs(songs, pattern=r"x(\d)")
    # A given split that puts two takes of a group in two parts is refused, naming them.
    given = {song.audio_path: "test" if song.name.endswith("solo") else "train" for song in songs}
    with pytest.raises(ValueError, match="puts 00_BN0-129-Eb_comp in train and 00_BN0-129-Eb_solo in test"):
        split_songs_as_given(songs, given, pattern=r"^(.*)_(comp|solo)$")
    train, _, test = split_songs_as_given(songs, given)  # (each song alone: as given)
    assert len(train) == len(test) == 12


def test_a_pairs_file_that_is_not_utf8_is_named_with_its_line_and_offset(tmp_path):
    """The message gave the decoder's position in the chunk it was reading ('position 2238' for a byte at
    offset 35006, on line 1001) and no line."""
    (tmp_path / "pairs.csv").write_bytes("a.wav,Ä.lab\n".encode("utf-16"))  # (PowerShell 5's >: said so)
    with pytest.raises(ValueError, match=re.escape(f"{tmp_path / 'pairs.csv'}: a UTF-16 text file")):
        scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    comments = b"# a comment line of the pairs file\n" * 1000  # 35,000 bytes: past the decoder's first chunk
    (tmp_path / "pairs.csv").write_bytes(comments + "a.wav,Ä.lab\n".encode("latin-1"))
    with pytest.raises(ValueError) as raised:
        scan_song_folder(tmp_path, pairs_file=tmp_path / "pairs.csv")
    assert str(raised.value) == (
        f"{tmp_path / 'pairs.csv'}, line 1001: the byte 0xc4 at offset 35006 is not UTF-8; "
        'the pairs file must be saved as UTF-8 (Excel: "CSV UTF-8")'
    )


def test_the_scan_report_counts_one_file_in_the_singular(tmp_path):
    """quick_test's folder with one stray recording said "1 audio files without an annotation"."""
    for name in ("a", "b"):
        write_lab(tmp_path / f"{name}.lab", SEGMENTS)
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
    _wav(tmp_path / "orphan.wav")
    report = scan_song_folder(tmp_path).report()
    assert "  1 audio file without an annotation (" in report and "2 annotated songs" in report, report


# ------------------------------------------------------------------------- what the scan cannot pair

M4A_HEAD = b"\x00\x00\x00\x20ftypM4A " + bytes(100)


def test_audio_in_an_unsupported_format_is_named_with_an_annotations_folder_too(tmp_path, monkeypatch):
    """An iTunes rip (`.m4a`) with its annotation in Isophonics' chordlab/ was named nowhere: its annotation
    was filed as another album's, "no song is missing". Audio in such a format that no annotation names is
    named too."""
    _wav(tmp_path / "a" / "02 - Other.wav", SEGMENTS[-1].end)
    (tmp_path / "a" / "01 - Song.m4a").write_bytes(M4A_HEAD)
    (tmp_path / "a" / "bonus.wma").write_bytes(bytes(100))
    (tmp_path / "a" / "02 - Other.m4a").write_bytes(M4A_HEAD)  # a second copy of a song used
    for name in ("01_-_Song", "02_-_Other"):
        write_lab(tmp_path / "l" / f"{name}.lab", SEGMENTS)
    monkeypatch.chdir(tmp_path)
    index = scan_song_folder(Path("a"), annotations_dir=Path("l"))
    assert [song.name for song in index.songs] == ["02 - Other"]
    assert [path.name for path, _ in index.unsupported_audio] == ["01 - Song.m4a", "bonus.wma"]
    assert index.unused_annotations == [] and set(index.skipped_songs()) == {"01 - Song", "bonus"}
    report = index.report()
    assert "2 audio files in a format the loader does not read (songs skipped)" in report
    assert "the audio of 01_-_Song.lab is in a format the loader does not read (.m4a)" in report
    # The paths as pasted where the command ran: relative to it inside it, else absolute
    assert "ffmpeg -i 'a/01 - Song.m4a' 'a/01 - Song.flac'" in report and ".flac, .mp3" in report
    monkeypatch.chdir(tmp_path / "l")
    report = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l").report()
    assert f"ffmpeg -i '{tmp_path}/a/01 - Song.m4a' '{tmp_path}/a/01 - Song.flac'" in report
    assert "bonus.wma: audio (no annotation found for it either)" in report
    assert "02 - Other.m4a: another audio file with the same stem is used: 02 - Other.wav" in report
    assert "no song is missing" not in report


def test_annotations_not_used_say_no_song_is_missing_only_when_none_is(tmp_path):
    _wav(tmp_path / "a" / "Song.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "l" / "Song.lab", SEGMENTS)
    write_lab(tmp_path / "l" / "Other Album" / "Another.lab", SEGMENTS)
    report = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l").report()
    assert f"1 annotation not used: in the annotations folder {tmp_path / 'l'} matched by no audio" in report
    assert "no song is missing" in report and "pairs file" not in report
    _wav(tmp_path / "a" / "Lonely.wav", SEGMENTS[-1].end)
    report = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l").report()
    assert "1 audio file without an annotation" in report and "no song is missing" not in report


def test_rwc_chords_txt_annotations_get_a_did_you_mean_beside_the_audio_and_in_an_annotations_folder(
    tmp_path,
):
    """RWC-Popular's `RM-P001.CHORDS.TXT` beside `RM-P001.wav` was never named: "no annotation"."""
    for k in (1, 2):
        _wav(tmp_path / "rwc" / f"RM-P00{k}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / "rwc" / f"RM-P00{k}.CHORDS.TXT", SEGMENTS)
    for annotations_dir in (None, tmp_path / "rwc"):
        index = scan_song_folder(tmp_path / "rwc", annotations_dir=annotations_dir)
        assert index.songs == []
        report = index.report()
        assert "2 audio files with an annotation named nearly like them" in report, report
        assert (
            f"{tmp_path / 'rwc' / 'RM-P001.wav'}: did you mean RM-P001.CHORDS.TXT? (pairs as RM-P001.lab"
            in (report)
        )
        assert "did you mean RM-P002.CHORDS.TXT?" in index.skipped_songs()["RM-P002"]


def test_csv_annotations_are_named_with_how_to_convert_them(tmp_path):
    """Schubert Winterreise's `;`-separated CSV chords were passed over without a word."""
    _wav(tmp_path / "audio" / "Schubert_D911-01_HU33.wav", SEGMENTS[-1].end)
    csv_text = '"start";"end";"shorthand"\n0.0;3.0;"D:min"\n'
    (tmp_path / "ann").mkdir()
    (tmp_path / "ann" / "Schubert_D911-01_HU33.csv").write_text(csv_text)
    (tmp_path / "ann" / "Schubert_D911-02_HU33.csv").write_text(csv_text)  # of a song not scanned
    _wav(tmp_path / "audio" / "Schubert_D911-02_HU33.wav", SEGMENTS[-1].end)
    index = scan_song_folder(tmp_path / "audio", annotations_dir=tmp_path / "ann")
    assert [path.name for path in index.unread_annotations] == [
        "Schubert_D911-01_HU33.csv",
        "Schubert_D911-02_HU33.csv",
    ]
    report = index.report()
    assert (
        "2 files in an annotation format not read (convert each to .lab: one 'start end label' line" in report
    )
    assert (
        "Schubert_D911-01_HU33.wav: did you mean Schubert_D911-01_HU33.csv? (a .csv file is not read: "
        "convert it to Schubert_D911-01_HU33.lab"
    ) in report
    # Beside the audio: named where it is named like the audio, not every CSV (a dataset's metadata.csv)
    (tmp_path / "audio" / "Schubert_D911-01_HU33.csv").write_text(csv_text)
    (tmp_path / "audio" / "metadata.csv").write_text("title\n")
    index = scan_song_folder(tmp_path / "audio")
    assert [path.name for path in index.unread_annotations] == ["Schubert_D911-01_HU33.csv"]


def test_beat_labels_beside_audio_are_named_as_another_tasks_labels(tmp_path):
    """A Ballroom-style folder (song.wav + song.beats) scanned as "6 audio files without an annotation" and
    said nothing of the .beats files beside them."""
    for name in ("Albums-Chrono-01", "Albums-Chrono-02"):
        _wav(tmp_path / f"{name}.wav")
        (tmp_path / f"{name}.beats").write_text("0.208 1\n0.676 2\n")
    _wav(tmp_path / "Other.wav")
    (tmp_path / "Other.lab").write_text("0.0 0.1 C:maj\n")
    (tmp_path / "Other.beats").write_text("0.05 1\n")  # its song is paired: nothing to say of it
    (tmp_path / "Lonely.beats").write_text("0.05 1\n")  # beside no audio: not a song's
    index = scan_song_folder(tmp_path)
    assert [song.name for song in index.songs] == ["Other"]
    assert [path.name for path in index.other_task_labels] == [
        "Albums-Chrono-01.beats",
        "Albums-Chrono-02.beats",
    ]
    report = index.report()
    assert (
        "2 files of another task's labels beside audio without an annotation (not read: this scan pairs "
        "chord annotations alone):\n    " + str(tmp_path / "Albums-Chrono-01.beats")
    ) in report
    # The chord recipe's last line advised --data.annotations DIR or a pairs file, neither of which can help.
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    (tmp_path / "Other.lab").unlink()  # (its Other.beats is then one more)
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(ChordDataConfig(data_dir=str(tmp_path)), seed=0)
    assert "the 3 files beside the audio hold another task's labels (Albums-Chrono-01.beats" in str(
        raised.value
    )
    assert "no annotation lies beside" not in str(raised.value)


def test_near_miss_names_across_an_annotations_folder_get_a_hint_not_a_pairing(tmp_path):
    """`03. Anna (Go To Him).flac` against chordlab's `03_-_Anna_(Go_To_Him).lab` got no hint; a typographic
    apostrophe (MusicBrainz tags: `It Won’t Be Long`) did not pair with Isophonics' `It_Won't_Be_Long`."""
    for audio, lab in [
        ("With/01 - It Won\u2019t Be Long.wav", "With/01_-_It_Won't_Be_Long.lab"),
        ("Album/03. Anna (Go To Him).wav", "Album/03_-_Anna_(Go_To_Him).lab"),
        ("With/Misery.wav", "With/02_-_Misery.lab"),
        ("With/04 - Chains.wav", "With/05_-_Chains.lab"),  # another edition's numbering, perhaps
        ("With/06 - Hold Me Tight.wav", None),
    ]:
        _wav(tmp_path / "a" / audio, SEGMENTS[-1].end)
        if lab:
            write_lab(tmp_path / "l" / lab, SEGMENTS)
    index = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l")
    assert [song.name for song in index.songs] == ["With/01 - It Won\u2019t Be Long"]
    assert len(index.unpaired_audio) == 4  # never paired by the hint's looser comparison
    hints = dict(index.skipped_songs())
    assert (
        "did you mean Album/03_-_Anna_(Go_To_Him).lab? (pairs as 03. Anna (Go To Him).lab"
        in (hints["Album/03. Anna (Go To Him)"])
    )
    assert "did you mean With/02_-_Misery.lab?" in hints["With/Misery"]
    assert "did you mean With/05_-_Chains.lab?" in hints["With/04 - Chains"]
    assert "did you mean" not in hints["With/06 - Hold Me Tight"]


def test_a_name_without_its_accents_or_in_full_width_letters_gets_a_hint_not_a_pairing(tmp_path):
    """`Canção do Mar.wav` against an annotation typed without accents, `Cancao do Mar.lab` (as on a keyboard
    or system without them), and `Ｆｕｌｌ　Ｗｉｄｔｈ.wav` (a Japanese input method's full-width letters)
    against `Full Width.lab` were listed as audio without an annotation, with no "did you mean"."""
    for audio, lab in [
        ("Canção do Mar.wav", "Cancao do Mar.lab"),
        ("Ｆｕｌｌ　Ｗｉｄｔｈ.wav", "Full Width.lab"),
        ("ブルース.wav", "フルース.lab"),  # (another word: a kana's voicing mark is no accent)
    ]:
        _wav(tmp_path / "a" / audio, SEGMENTS[-1].end)
        write_lab(tmp_path / "l" / lab, SEGMENTS)
    index = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l")
    assert index.songs == [] and len(index.unpaired_audio) == 3  # never paired by the hint
    hints = dict(index.skipped_songs())
    assert "did you mean Cancao do Mar.lab?" in hints["Canção do Mar"]
    assert "did you mean Full Width.lab?" in hints["Ｆｕｌｌ　Ｗｉｄｔｈ"]
    assert "did you mean" not in hints["ブルース"]


def test_same_named_songs_in_mirrored_album_folders_pair_by_their_folder(tmp_path):
    """`Queen/Greatest Hits I/01 - Intro.wav` and `.../Greatest Hits II/01 - Intro.wav` with chordlab's
    mirrored `Greatest_Hits_I/01_-_Intro.lab` and `Greatest_Hits_II/...` were both refused as ambiguous."""
    for album in ("Greatest Hits I", "Greatest Hits II"):
        _wav(tmp_path / "audio" / "Queen" / album / "01 - Intro.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / "chordlab" / "Queen" / album.replace(" ", "_") / "01_-_Intro.lab", SEGMENTS)
    write_lab(tmp_path / "chordlab" / "Queen" / "Live" / "01_-_Intro.lab", SEGMENTS)  # of no audio
    for data in (tmp_path / "audio", tmp_path / "audio" / "Queen"):  # the artist's folder in both, or one
        index = scan_song_folder(data, annotations_dir=tmp_path / "chordlab")
        paired = [(s.audio_path.parent.name, s.annotation_path.parent.name) for s in index.songs]
        assert paired == [("Greatest Hits I", "Greatest_Hits_I"), ("Greatest Hits II", "Greatest_Hits_II")]
        assert index.ambiguous == [] and [p.parent.name for p in index.unused_annotations] == ["Live"]
    # No folder mirrors the audio's: still refused, never guessed
    _wav(tmp_path / "audio" / "Queen" / "Box Set CD1" / "01 - Intro.wav", SEGMENTS[-1].end)
    index = scan_song_folder(tmp_path / "audio", annotations_dir=tmp_path / "chordlab")
    assert [path.parent.name for path, _ in index.ambiguous] == ["Box Set CD1"]
    assert "its name matches 3 annotations" in index.ambiguous[0][1]


def test_two_annotations_in_folders_that_both_mirror_the_audios_pair_neither(tmp_path):
    """`Album/Intro.wav` with `Album/Intro.lab` and `Box Set/Album/Intro.lab`: both folders end as the
    audio's does, so which annotates it is not known, and neither is guessed."""
    _wav(tmp_path / "audio" / "Album" / "Intro.wav", SEGMENTS[-1].end)
    for folder in ("Album", "Box Set/Album"):
        write_lab(tmp_path / "chordlab" / folder / "Intro.lab", SEGMENTS)
    index = scan_song_folder(tmp_path / "audio", annotations_dir=tmp_path / "chordlab")
    assert index.songs == []
    assert [path.name for path, _ in index.ambiguous] == ["Intro.wav"]
    why = index.ambiguous[0][1]
    assert "its name matches 2 annotations" in why and "(Album/Intro.lab, Box Set/Album/Intro.lab)" in why


def test_an_annotations_folder_pairs_a_lab_beside_its_jams_an_upper_case_lab_and_nfd_names(tmp_path):
    """x.lab beside x.jams is one annotation, the .lab used and the .jams not listed as unused; RWC's
    upper-case .LAB is an annotation; macOS's decomposed `Café` (NFD) is chordlab's composed one (NFC); a
    folder named like an annotation is none."""
    data, ann = tmp_path / "data", tmp_path / "ann"
    nfd, nfc = "Cafe\u0301 Song", "Caf\u00e9_Song"
    for name in ("x", "rwc", nfd):
        _wav(data / f"{name}.wav", SEGMENTS[-1].end)
    write_lab(ann / "x.lab", SEGMENTS)
    write_jams(ann / "x.jams", SEGMENTS[:2])
    write_lab(ann / "rwc.LAB", SEGMENTS)
    write_lab(ann / f"{nfc}.lab", SEGMENTS)
    (ann / "folder.lab").mkdir()
    index = scan_song_folder(data, annotations_dir=ann)
    assert sorted((s.audio_path.name, s.annotation_path.name) for s in index.songs) == [
        (f"{nfd}.wav", f"{nfc}.lab"),
        ("rwc.wav", "rwc.LAB"),
        ("x.wav", "x.lab"),
    ]
    assert index.ambiguous == [] and index.unused_annotations == []


def test_a_did_you_mean_or_a_pairing_is_never_a_guess_between_folders(tmp_path):
    """Two annotations named nearly like the audio in two folders that do not mirror its folder give no hint;
    an annotation at the annotations folder's top mirrors no album; without an annotations folder, only the
    audio's own folder is searched for a hint."""
    _wav(tmp_path / "a" / "03. Anna.wav", SEGMENTS[-1].end)
    for folder in ("X", "Y"):
        write_lab(tmp_path / "l" / folder / "03_-_Anna.lab", SEGMENTS)
    index = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l")
    assert index.songs == [] and index.near_misses == []
    _wav(tmp_path / "b" / "Album I" / "x.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "m" / "x.lab", SEGMENTS)
    write_lab(tmp_path / "m" / "Album_II" / "x.lab", SEGMENTS)
    index = scan_song_folder(tmp_path / "b", annotations_dir=tmp_path / "m")
    assert index.songs == [] and [path.name for path, _ in index.ambiguous] == ["x.wav"]
    _wav(tmp_path / "c" / "A" / "03. Anna.wav", SEGMENTS[-1].end)
    write_lab(tmp_path / "c" / "B" / "03_-_Anna.lab", SEGMENTS)
    index = scan_song_folder(tmp_path / "c")
    assert index.songs == [] and index.near_misses == []


def test_a_pairs_file_saved_with_a_bom_or_naming_an_upper_case_lab_pairs_its_songs(tmp_path):
    """Excel's 'CSV UTF-8' starts the file with a BOM, which would make the header a row naming
    '\\ufeffaudio'; RWC's annotations end in .LAB."""
    for name, suffix in (("a", ".lab"), ("b", ".LAB")):
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / f"{name}{suffix}", SEGMENTS)
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("\ufeffaudio,annotation\na.wav,a.lab\nb.wav,b.LAB\n", encoding="utf-8")
    index = scan_song_folder(tmp_path, pairs_file=pairs)
    assert [(s.name, s.annotation_path.name) for s in index.songs] == [("a", "a.lab"), ("b", "b.LAB")]
    pairs.write_text("\ufeffa.wav,a.lab\n", encoding="utf-8")  # no header: the BOM is before a name
    assert ("a", "a.lab") in [
        (s.name, s.annotation_path.name) for s in scan_song_folder(tmp_path, pairs_file=pairs).songs
    ]


def test_a_pairs_file_that_is_missing_or_a_folder_is_named(tmp_path):
    _wav(tmp_path / "a.wav", SEGMENTS[-1].end)
    for pairs in (tmp_path / "nope.csv", tmp_path):
        with pytest.raises(FileNotFoundError, match=r"pairs file .* does not exist or is not a file"):
            scan_song_folder(tmp_path, pairs_file=pairs)


def test_one_recording_paired_twice_under_a_data_path_through_a_link_is_refused(tmp_path):
    """The data folder reached through a symlink (as /tmp is on macOS): a link to a.wav paired again was
    missed when the first row was kept under the path as written, and the second row dropped silently."""
    data = tmp_path / "real" / "data"
    _wav(data / "a.wav", SEGMENTS[-1].end)
    for name in ("a", "b"):
        write_lab(data / f"{name}.lab", SEGMENTS)
    (data / "l.wav").symlink_to("a.wav")
    (tmp_path / "via").symlink_to(tmp_path / "real")
    (data / "pairs.csv").write_text("a.wav,a.lab\nl.wav,b.lab\n")
    via = tmp_path / "via" / "data"
    with pytest.raises(
        ValueError, match=r"line 2: .*l\.wav \(the same file as .*a\.wav\) is paired on line 1"
    ):
        scan_song_folder(via, pairs_file=via / "pairs.csv")


def test_the_billboard_layout_without_a_pairs_file_names_the_pairs_flag(tmp_path):
    """Billboard's `0003/audio.wav` beside `full.lab`, `majmin.lab`: "no annotated songs" and no hint, the
    one line that names the pairs file being left out as soon as an annotation was found."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    for song in ("0003", "0004"):
        _wav(tmp_path / song / "audio.wav", SEGMENTS[-1].end)
        for reduction in ("full", "majmin"):
            write_lab(tmp_path / song / f"{reduction}.lab", SEGMENTS)
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(ChordDataConfig(data_dir=str(tmp_path)), seed=0)
    first = tmp_path / "0003" / "audio.wav"
    shared = "2 audio files share their folder with annotations of other names"
    assert f"{shared} ({first} beside full.lab, majmin.lab)" in str(raised.value)
    assert "--data.pairs FILE.csv" in str(raised.value)


def test_a_pairs_file_row_naming_unsupported_audio_is_a_song_skipped(tmp_path):
    """A pairs file naming an `.m4a` stopped the whole command with "is not an audio file the scan found",
    where the folder scan skips that song only, naming its format and how to convert it."""
    _wav(tmp_path / "a" / "02 - Other.wav", SEGMENTS[-1].end)
    (tmp_path / "a" / "01 - Song.m4a").write_bytes(M4A_HEAD)
    for name in ("01_-_Song", "02_-_Other"):
        write_lab(tmp_path / "l" / f"{name}.lab", SEGMENTS)
    (tmp_path / "p.csv").write_text(
        "audio,annotation,split\na/01 - Song.m4a,l/01_-_Song.lab,train\na/02 - Other.wav,l/02_-_Other.lab,test\n"
    )
    index = scan_song_folder(tmp_path / "a", pairs_file=tmp_path / "p.csv")
    assert [song.name for song in index.songs] == ["02 - Other"]
    assert list(index.parts.values()) == ["test"]
    assert list(index.skipped_songs()) == ["01 - Song"] and index.unused_annotations == []
    report = index.report()
    assert "1 audio file in a format the loader does not read (song skipped)" in report, report
    assert "the audio of 01_-_Song.lab is in a format the loader does not read (.m4a)" in report
    assert "ffmpeg -i " in report and "no annotation found" not in report


def test_an_annotations_folder_index_or_readme_is_not_advised_to_become_a_lab(tmp_path):
    """A dataset's index.csv and README.json beside its labels were "in an annotation format not read
    (convert each to .lab ...)": only a file named like audio is; the rest are counted as not used."""
    for name in ("01 - One", "02 - Two"):
        _wav(tmp_path / "audio" / f"{name}.wav", SEGMENTS[-1].end)
        write_lab(tmp_path / "lab" / f"{name.replace(' ', '_')}.lab", SEGMENTS)
    (tmp_path / "lab" / "index.csv").write_text("song,artist\n")
    (tmp_path / "lab" / "README.json").write_text("{}")
    (tmp_path / "lab" / "01_-_One.csv").write_text("0.0;3.0;C:maj\n")  # the chords of a song, as CSV
    index = scan_song_folder(tmp_path / "audio", annotations_dir=tmp_path / "lab")
    assert len(index.songs) == 2 and [path.name for path in index.unread_annotations] == ["01_-_One.csv"]
    report = index.report()
    assert "1 file in an annotation format not read (convert it to .lab" in report, report
    assert (
        "2 other files in the annotations folder not used, named like no audio (README.json, index.csv)"
        in (report)
    )
    assert "index.csv" not in report.split("named like no audio")[0] and index.problems == 1


def test_zero_length_segments_are_listed_by_the_scan_and_a_file_of_them_alone_is_a_song_skipped(tmp_path):
    """Audacity's point labels after region labels (`4.0 4.0 G:maj`) label no time: they were dropped without
    a word. The scan report now lists the file with each such line and label, once (not warned as well at
    every read); a file of point labels alone is a song skipped, the file named."""
    from audiotrain.chords import AnnotationWarning

    _wav(tmp_path / "regions.wav", 5.0)
    (tmp_path / "regions.lab").write_text("0.0\t4.0\tC:maj\n4.0\t4.0\tG:maj\n4.0\t5.0\tN\n")
    _wav(tmp_path / "points.wav", 5.0)
    (tmp_path / "points.lab").write_text("1.0\t1.0\tC:maj\n3.0\t3.0\tG:maj\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        index = scan_song_folder(tmp_path)
    assert not [w for w in caught if issubclass(w.category, AnnotationWarning)]
    assert [song.name for song in index.songs] == ["regions"]
    report = index.report()
    assert "1 annotation with zero-length segments, dropped" in report
    assert f"{tmp_path / 'regions.lab'}: line 2 (G:maj)" in report
    assert f"{tmp_path / 'points.lab'}: no chord segments (all 2 segments are zero-length)" in report


def test_billboards_lab_release_as_an_annotations_folder_names_the_pairs_flag(tmp_path):
    """Billboard's LAB release kept apart from the audio (`--data.annotations billboard-2.0-lab`, its
    `McGill-Billboard/0003/full.lab` and `majmin.lab`; the audio `audio/0003/audio.wav`): "need at least 2
    annotated songs", the 6 files listed as "another album's, perhaps", and no word of the pairs file that
    such a layout needs, which the same files beside the audio name."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    labs = tmp_path / "billboard-2.0-lab" / "McGill-Billboard"
    for song in ("0003", "0004"):
        _wav(tmp_path / "audio" / song / "audio.wav", SEGMENTS[-1].end)
        for reduction in ("full", "majmin"):
            write_lab(labs / song / f"{reduction}.lab", SEGMENTS)
    config = ChordDataConfig(
        data_dir=str(tmp_path / "audio"), annotations=str(tmp_path / "billboard-2.0-lab")
    )
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(config, seed=0)
    said = str(raised.value)
    assert "2 audio files share the name audio.wav" in said, said
    assert "numbered folders" in said and "--data.pairs FILE.csv" in said, said


def test_billboard_audio_named_by_song_number_beside_its_lab_release_names_the_pairs_flag(tmp_path):
    """Billboard's audio kept as `audio/0003.wav` and its LAB release as `--data.annotations`
    (`McGill-Billboard/0003/full.lab`, `majmin.lab`): "need at least 2 annotated songs", the annotations
    called "another album's, perhaps", and no word that the audio is named as the annotations' folders, nor
    of the pairs file such a layout needs."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    labs = tmp_path / "billboard-2.0-lab" / "McGill-Billboard"
    for song in ("0003", "0004"):
        _wav(tmp_path / "audio" / f"{song}.wav", SEGMENTS[-1].end)
        for reduction in ("full", "majmin"):
            write_lab(labs / song / f"{reduction}.lab", SEGMENTS)
    config = ChordDataConfig(
        data_dir=str(tmp_path / "audio"), annotations=str(tmp_path / "billboard-2.0-lab")
    )
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(config, seed=0)
    said = str(raised.value)
    assert (
        f"2 audio files are named as folders of annotations (0003.wav and {labs / '0003'}/: full.lab, "
        in said
    )
    assert "--data.pairs FILE.csv" in said, said


def test_isophonics_whole_annotations_folder_names_its_chordlab(tmp_path):
    """Isophonics' download holds chordlab/, keylab/ and seglab/ side by side, each with a `.lab` of every
    song's name. `--data.annotations` given the folder above them refused every song as matching 3
    annotations, each with "list its pair in a pairs file", where the fix is to name chordlab/."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    annotations = tmp_path / "The Beatles Annotations"
    for song in ("01_-_I_Saw_Her_Standing_There", "02_-_Misery"):
        _wav(tmp_path / "audio" / "01_-_Please_Please_Me" / f"{song}.wav", SEGMENTS[-1].end)
        for kind in ("chordlab", "keylab", "seglab"):
            write_lab(annotations / kind / "The Beatles" / "01_-_Please_Please_Me" / f"{song}.lab", SEGMENTS)
    config = ChordDataConfig(data_dir=str(tmp_path / "audio"), annotations=str(annotations))
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(config, seed=0)
    said = str(raised.value)
    assert (
        f"the annotations folder {annotations} holds chordlab/, keylab/, seglab/ side by side, whose files "
        f"share the songs' names (as Isophonics'): pass --data.annotations {annotations / 'chordlab'}"
    ) in said, said


def test_guitarsets_mic_audio_beside_its_annotation_folder_names_the_pairs_flag(tmp_path):
    """GuitarSet's `audio_mono-mic/00_BN1-129-Eb_comp_mic.wav` with `--data.annotations annotation`
    (`00_BN1-129-Eb_comp.jams`): "need at least 2 annotated songs", the annotations called "another album's,
    perhaps", and no word of the pairs file its README line asks for."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    for take in ("00_BN1-129-Eb_comp", "00_BN1-129-Eb_solo"):
        _wav(tmp_path / "audio_mono-mic" / f"{take}_mic.wav", SEGMENTS[-1].end)
        write_jams(tmp_path / "annotation" / f"{take}.jams", SEGMENTS)
    config = ChordDataConfig(
        data_dir=str(tmp_path / "audio_mono-mic"), annotations=str(tmp_path / "annotation")
    )
    with pytest.raises(ValueError, match="need at least 2 annotated songs") as raised:
        folder_splits(config, seed=0)
    said = str(raised.value)
    assert (
        "2 audio files are named as an annotation with a word added (00_BN1-129-Eb_comp_mic.wav and "
        "00_BN1-129-Eb_comp.jams, as GuitarSet's _mic and _mix), a layout no name rule pairs: list "
        "audio,annotation rows in a CSV file and pass --data.pairs FILE.csv"
    ) in said, said


def test_isophonics_white_album_names_with_their_disc_get_a_hint(tmp_path):
    """Isophonics names the White Album's songs with their disc (`10CD1_-_The_Beatles/CD1_-_01_-_Back_in_the
    _U.S.S.R.lab`), and a rip `01 - Back in the U.S.S.R..wav` or iTunes' `1-02 Dear Prudence.wav` got no
    "did you mean": the hint left out a leading track number, not a disc before it."""
    for audio, lab in [
        (
            "White Album CD1/01 - Back in the U.S.S.R..wav",
            "10CD1_-_The_Beatles/CD1_-_01_-_Back_in_the_U.S.S.R.lab",
        ),
        ("White Album CD1/1-02 Dear Prudence.wav", "10CD1_-_The_Beatles/CD1_-_02_-_Dear_Prudence.lab"),
    ]:
        _wav(tmp_path / "a" / audio, SEGMENTS[-1].end)
        write_lab(tmp_path / "l" / lab, SEGMENTS)
    index = scan_song_folder(tmp_path / "a", annotations_dir=tmp_path / "l")
    assert index.songs == [] and len(index.unpaired_audio) == 2  # a hint, never a pairing
    hints = dict(index.skipped_songs())
    wanted = "did you mean 10CD1_-_The_Beatles/CD1_-_01_-_Back_in_the_U.S.S.R.lab?"
    assert wanted in hints["White Album CD1/01 - Back in the U.S.S.R."], hints
    assert "CD1_-_02_-_Dear_Prudence.lab?" in hints["White Album CD1/1-02 Dear Prudence"], hints


def test_a_song_of_one_artist_never_pairs_the_same_named_song_of_another_in_the_annotations_folder(tmp_path):
    """Isophonics' Queen and Zweieck both have a `01_-_Intro.lab`. With Zweieck's chordlab alone and
    Queen's audio, `Queen/Greatest_Hits_II/01_-_Intro.wav` was paired with `Zweieck/Zwielicht/01_-_Intro.lab`
    (the only annotation of its name) and trained on another song's chords without a word. Where both lie in
    folders that share no folder name, the pair is refused and listed; where a folder name is shared (the
    artist, or an album as a ripper names it), or either lies at the top, the name still pairs."""
    audio, chordlab = tmp_path / "audio", tmp_path / "chordlab"
    _wav(audio / "Queen" / "Greatest_Hits_II" / "01_-_Intro.wav", SEGMENTS[-1].end)
    write_lab(chordlab / "Zweieck" / "Zwielicht" / "01_-_Intro.lab", SEGMENTS)
    _wav(audio / "The Beatles" / "Please Please Me" / "02 - Misery.wav", SEGMENTS[-1].end)  # ripper's names
    write_lab(chordlab / "The Beatles" / "01_-_Please_Please_Me" / "02_-_Misery.lab", SEGMENTS)
    _wav(audio / "Live" / "03 - Anna.wav", SEGMENTS[-1].end)  # another album, its artist in neither path
    write_lab(chordlab / "The Beatles" / "01_-_Please_Please_Me" / "03_-_Anna.lab", SEGMENTS)
    _wav(audio / "04 - Chains.wav", SEGMENTS[-1].end)  # no folder: nothing to tell it apart by
    write_lab(chordlab / "The Beatles" / "01_-_Please_Please_Me" / "04_-_Chains.lab", SEGMENTS)
    index = scan_song_folder(audio, annotations_dir=chordlab)
    paired = sorted(song.name for song in index.songs)
    assert paired == ["04 - Chains", "The Beatles/Please Please Me/02 - Misery"]
    refused = dict(index.ambiguous)
    assert set(refused) == {audio / "Queen/Greatest_Hits_II/01_-_Intro.wav", audio / "Live/03 - Anna.wav"}
    why = refused[audio / "Queen/Greatest_Hits_II/01_-_Intro.wav"]
    assert "Zweieck/Zwielicht/01_-_Intro.lab" in why and "shares no folder name" in why
    assert "--data.pairs" in why
    assert "Queen/Greatest_Hits_II/01_-_Intro" in index.skipped_songs()
    # --data "The Beatles": the audio folder's own name is the artist's
    index = scan_song_folder(audio / "The Beatles", annotations_dir=chordlab)
    assert [song.name for song in index.songs] == ["Please Please Me/02 - Misery"]


def test_the_same_artists_song_in_year_named_or_numbered_folders_still_pairs_by_its_name(tmp_path):
    """The folder check of 68a72cc9 refused songs it used to pair rightly: both roots the artist's folder
    (--data "The Beatles", --data.annotations chordlab/The_Beatles, its own name not counted), an album
    folder with its year where the annotation's has its place (1969 - Abbey Road, 12_-_Abbey_Road), and
    annotations in numbered folders (0012/), whose number names no artist. Another artist's still is not."""
    audio, chordlab = tmp_path / "audio" / "The Beatles", tmp_path / "chordlab" / "The_Beatles"
    _wav(audio / "1969 - Abbey Road" / "01 - Come Together.wav", SEGMENTS[-1].end)
    write_lab(chordlab / "12_-_Abbey_Road" / "01_-_Come_Together.lab", SEGMENTS)
    _wav(audio / "Rips" / "1963 - Please Please Me" / "02 - Misery.wav", SEGMENTS[-1].end)
    write_lab(chordlab / "01_-_Please_Please_Me" / "02_-_Misery.lab", SEGMENTS)
    _wav(audio / "Help!" / "03 - Yesterday.wav", SEGMENTS[-1].end)
    write_lab(chordlab / "0007" / "03 - Yesterday.lab", SEGMENTS)
    _wav(audio / "Queen" / "Greatest_Hits_II" / "01_-_Intro.wav", SEGMENTS[-1].end)
    write_lab(chordlab / "Zweieck" / "0001" / "01_-_Intro.lab", SEGMENTS)
    index = scan_song_folder(audio, annotations_dir=chordlab)
    assert sorted(song.name for song in index.songs) == [
        "1969 - Abbey Road/01 - Come Together",
        "Help!/03 - Yesterday",
        "Rips/1963 - Please Please Me/02 - Misery",
    ]
    assert set(dict(index.ambiguous)) == {audio / "Queen/Greatest_Hits_II/01_-_Intro.wav"}


def test_a_lab_with_a_header_line_or_its_label_first_says_so_in_the_scan(tmp_path):
    """uspop2002's `.lab` with a header line (`start_time end_time chord`), Schubert Winterreise's CSV renamed
    `.lab` (`"start";"end";"shorthand";...`) and RWC stand-ins written label first (`N 0.0 1.0`) were each
    skipped with "start and end must be numbers" or "expected 'start end label' (3 fields), got 1", which
    does not say what to change."""
    lines = "".join(f"{s.start} {s.end} {s.label}\n" for s in SEGMENTS)
    files = {
        "uspop": "start_time end_time chord\n" + lines,
        "winterreise": '"start";"end";"shorthand";"majmin"\n'
        + "".join(f'{s.start};{s.end};"{s.label}";"{s.label}"\n' for s in SEGMENTS),
        "rwc": "".join(f"{s.label}\t{s.start}\t{s.end}\n" for s in SEGMENTS),
    }
    for name, text in files.items():
        _wav(tmp_path / f"{name}.wav", SEGMENTS[-1].end)
        (tmp_path / f"{name}.lab").write_text(text)
    report = scan_song_folder(tmp_path).report()
    said = "uspop.lab, line 1: start and end must be numbers in seconds, got 'start_time end_time chord' (a "
    said += "header of column names, which a .lab does not have: delete the line, or start it with '#')"
    assert said in report
    assert "(a header of column names, separated by ';': a CSV file, as Schubert Winterreise's" in report
    assert "rwc.lab, line 1: start and end must be numbers in seconds, got 'N\\t0.0\\t" in report
    assert "(the label comes first: a .lab line is 'start end label', the label last)" in report


def test_a_header_line_with_a_comment_below_it_is_still_said_to_be_a_header(tmp_path):
    """The header hint of 924397ea looked at the next line that was not blank: a header with a comment
    below it (`start end chord`, then `# converted from uspop2002`) got the bare 'start and end must be
    numbers', which does not say what to change."""
    lab = tmp_path / "song.lab"
    lab.write_text("start end chord\n# converted from uspop2002\n\n0.0 1.0 C\n1.0 2.0 G\n")
    with pytest.raises(AnnotationError, match="line 1: .*a header of column names.*delete the line"):
        read_lab(lab)


def test_the_data_report_lists_which_annotation_kept_apart_each_recording_pairs_with(tmp_path):
    """With Isophonics' chordlab/ as --data.annotations (or a pairs file), the run's data_report.txt said only
    "10 annotated songs": which annotation each recording trained on could not be checked, where two albums
    hold a `01_-_Intro.lab` each."""
    from audiotrain.recipes.chords.config import ChordDataConfig
    from audiotrain.recipes.chords.data import folder_splits

    audio, chordlab = tmp_path / "audio", tmp_path / "chordlab"
    for album in ("Greatest_Hits_I", "Greatest_Hits_II"):
        _wav(audio / "Queen" / album / "01 - Intro.wav", SEGMENTS[-1].end)
        write_lab(chordlab / "Queen" / album / "01_-_Intro.lab", SEGMENTS)
    splits, _ = folder_splits(ChordDataConfig(data_dir=str(audio), annotations=str(chordlab)), seed=0)
    assert "2 songs paired with an annotation kept apart (audio <- annotation):" in splits.data_report
    for album in ("Greatest_Hits_I", "Greatest_Hits_II"):
        wav, lab = audio / "Queen" / album / "01 - Intro.wav", chordlab / "Queen" / album / "01_-_Intro.lab"
        assert f"  {wav} <- {lab}" in splits.data_report
