"""FeatureCache: a second epoch reads no audio and computes nothing; invalidation; concurrent fills; CLI."""

import dataclasses
import json
import multiprocessing
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

import audiotrain.audio
from audiotrain.audio import AudioError
from audiotrain.datasets import caption_demo, chord_demo
from audiotrain.features import CQTConfig, MelConfig
from audiotrain.features import cache as feature_cache
from audiotrain.features._config import FeatureConfigMixin
from audiotrain.features.cache import MARKER, FeatureCache, main
from audiotrain.recipes.chords import train as chords_train
from audiotrain.recipes.chords.config import ChordFeatureConfig, TrainingConfig

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
from child_processes import child_env, run_as_main
from file_size_limit import files_cannot_grow_past, needs_file_size_limit

from tests import deadlines

SR = 8000
CONFIG = MelConfig(sr=SR, n_fft=256, hop_length=128, n_mels=16, log=True)


def _song(folder: Path, index: int) -> Path:
    t = np.arange(SR // 2) / SR
    path = folder / f"song{index}.wav"
    sf.write(str(path), (0.3 * np.sin(2 * np.pi * (200 + 50 * index) * t)).astype(np.float32), SR)
    return path


class CountingExtractor:
    """Loads the audio with audiotrain.audio.load and computes mel features, counting both."""

    def __init__(self):
        self.computed = 0

    def __call__(self, path):
        self.computed += 1
        y, _ = audiotrain.audio.load(path, sr=SR)
        return np.asarray(CONFIG.compute(y, backend="numpy"))


@pytest.fixture
def songs(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    return [_song(folder, i) for i in range(4)]


def test_second_epoch_reads_no_audio_and_computes_nothing(tmp_path, songs, monkeypatch):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    first = [np.array(cache.get_or_compute(p, extract)) for p in songs]
    assert extract.computed == 4 and (cache.hits, cache.misses) == (0, 4)

    reads = []
    real_open = sf.SoundFile.__init__
    monkeypatch.setattr(
        audiotrain.audio, "load", lambda *a, **k: reads.append(a) or pytest.fail("audio read")
    )
    # (On SoundFile itself: audiotrain.audio opens files with a subclass made at import, which a double put
    # in soundfile's namespace in its place is never called for.)
    monkeypatch.setattr(
        sf.SoundFile, "__init__", lambda self, *a, **k: reads.append(a) or real_open(self, *a, **k)
    )
    second = [cache.get_or_compute(p, extract) for p in songs]
    assert reads == [] and extract.computed == 4 and (cache.hits, cache.misses) == (4, 4)
    for a, b in zip(first, second):
        assert isinstance(b, np.memmap) and not b.flags.writeable  # memory-mapped, read-only
        np.testing.assert_array_equal(a, b)
    report = cache.report()
    assert report["entries"] == 4 and report["bytes"] > 4 * first[0].nbytes
    assert report["config_key"] == CONFIG.key() and (report["hits"], report["misses"]) == (4, 4)


def test_a_changed_file_or_config_is_recomputed(tmp_path, songs):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    before = np.array(cache.get_or_compute(songs[0], extract))
    time.sleep(0.01)
    sf.write(str(songs[0]), np.zeros(SR, dtype=np.float32), SR)  # new content, size and mtime
    after = cache.get_or_compute(songs[0], extract)
    assert extract.computed == 2 and after.shape[-1] > before.shape[-1]
    assert cache.report()["entries"] == 1  # the stale entry was removed
    time.sleep(0.01)
    sf.write(str(songs[0]), np.zeros(2 * SR, dtype=np.float32), SR)  # changed again in the same run
    cache.get_or_compute(songs[0], extract)
    assert extract.computed == 3 and cache.report()["entries"] == 1  # the first change's entry went too
    other = FeatureCache(tmp_path / "cache", MelConfig(sr=SR, n_fft=256, hop_length=64, n_mels=16))
    other.get_or_compute(songs[0], extract)
    assert extract.computed == 4 and other.folder != cache.folder


#: Per feature configuration, the settings that do not change the features and may be left out of its cache
#: key (a new setting of that kind, e.g. a thread count, is listed here on purpose). None so far.
NOT_IN_THE_KEY: dict[type, set[str]] = {ChordFeatureConfig: set(), CQTConfig: set(), MelConfig: set()}


#: ChordFeatureConfig's settings that mean nothing for a kind: mel_fmax beside the CQT (refused there; left out
#: of its key so that keys written before mel existed stay the same), the bass view's filter scale for mel
#: (which has no bass view; refused beside mel at another value than its default, as bins_per_octave is).
_NOT_OF_THE_KIND = {("cqt", "mel_fmax"), ("mel", "bass_view_filter_scale")}


def test_every_setting_of_a_feature_configuration_is_in_its_cache_key():
    """A setting missing from the key served a cache filled under another value of it: MelConfig without
    top_db would give top_db=60 the features computed with 80. Every field of every configuration a cache is
    keyed by changes the key, this one and any added later (or it is listed in NOT_IN_THE_KEY)."""
    configs = [ChordFeatureConfig, *FeatureConfigMixin.__subclasses__()]
    assert set(configs) == set(NOT_IN_THE_KEY), "a new feature configuration: list it in NOT_IN_THE_KEY"
    mel = ChordFeatureConfig(kind="mel", max_pitch_shift=0, bass_view_bins=0, tuning_correction=False)
    for config in [*(config_class() for config_class in configs), mel]:
        config_class = type(config)
        for setting in dataclasses.fields(config_class):
            if setting.name in NOT_IN_THE_KEY[config_class]:
                continue
            if config_class is ChordFeatureConfig and (config.kind, setting.name) in _NOT_OF_THE_KIND:
                continue
            changed = dataclasses.replace(config)
            # key() hashes the settings as they are: a value no config would accept does for this check.
            object.__setattr__(changed, setting.name, f"not {getattr(config, setting.name)!r}")
            assert changed.key() != config.key(), f"{config_class.__name__}.{setting.name} is not in its key"
    assert MelConfig(log=True, top_db=60.0).key() != MelConfig(log=True, top_db=80.0).key()


def test_a_first_pass_lists_the_configuration_folder_once_not_per_entry(tmp_path, songs, monkeypatch):
    """Every new entry listed the whole folder to find the same file's earlier entry: a first pass over N
    songs made N listings and N²/2 name matches (4000 songs: 11x the time of 1000)."""
    listed = []
    real_scandir, real_listdir = os.scandir, os.listdir
    folder = tmp_path / "cache" / CONFIG.key()

    def note(path):
        if isinstance(path, (str, os.PathLike)) and os.path.abspath(path) == str(folder):
            listed.append(path)

    monkeypatch.setattr(os, "scandir", lambda path=".": (note(path), real_scandir(path))[1])
    monkeypatch.setattr(os, "listdir", lambda path=".": (note(path), real_listdir(path))[1])
    more = [_song(songs[0].parent, i) for i in range(4, 12)]
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    for song in songs + more:
        cache.get_or_compute(song, extract)
    assert extract.computed == 12 and len(listed) <= 2  # when it starts, and once for the index (was 13)
    time.sleep(0.01)
    sf.write(str(songs[0]), np.zeros(SR, dtype=np.float32), SR)  # changed: its earlier entry goes
    cache.get_or_compute(songs[0], extract)
    assert extract.computed == 13 and cache.report()["entries"] == 12 and len(listed) <= 2 + 1  # (report)
    sf.write(str(songs[1]), np.zeros(SR, dtype=np.float32), SR)  # changed, and cached by the next run
    later = FeatureCache(tmp_path / "cache", CONFIG)
    later.get_or_compute(songs[1], extract)
    assert extract.computed == 14 and later.report()["entries"] == 12


def test_an_entry_with_other_frames_than_its_audio_has_is_computed_again(tmp_path, songs):
    """A valid entry of part of a song (fewer frames than its header says) is not its features."""

    def frames(path):
        return CONFIG.n_frames(sf.info(str(path)).frames)

    cache = FeatureCache(tmp_path / "cache", CONFIG, expected_frames=frames)
    extract = CountingExtractor()
    whole = np.array(cache.get_or_compute(songs[0], extract))
    assert whole.shape[-1] == frames(songs[0])
    np.save(cache.path_for(songs[0]), np.ascontiguousarray(whole[..., :5]))
    cache = FeatureCache(tmp_path / "cache", CONFIG, expected_frames=frames)  # a later run
    np.testing.assert_array_equal(cache.get_or_compute(songs[0], extract), whole)
    assert (extract.computed, cache.replaced) == (2, 1)
    cache.get_or_compute(songs[0], extract)
    assert (extract.computed, cache.hits) == (2, 1)  # the whole entry is served
    # Nor is one with frames past the audio's end (another song's, longer).
    np.save(cache.path_for(songs[0]), np.concatenate([whole, whole[..., :3]], axis=-1))
    cache = FeatureCache(tmp_path / "cache", CONFIG, expected_frames=frames)
    np.testing.assert_array_equal(cache.get_or_compute(songs[0], extract), whole)
    assert (extract.computed, cache.replaced) == (3, 1)
    # Where the header cannot tell (None), the entry is served as it is.
    np.save(cache.path_for(songs[0]), np.ascontiguousarray(whole[..., :5]))
    cache = FeatureCache(tmp_path / "cache", CONFIG, expected_frames=lambda path: None)
    assert cache.get_or_compute(songs[0], extract).shape[-1] == 5 and extract.computed == 3
    # A single number (a foreign writer's) has no frames at all: computed again too, not an IndexError.
    np.save(cache.path_for(songs[0]), np.float32(1.0))
    cache = FeatureCache(tmp_path / "cache", CONFIG, expected_frames=frames)
    np.testing.assert_array_equal(cache.get_or_compute(songs[0], extract), whole)
    assert (extract.computed, cache.replaced) == (4, 1)


def test_an_entry_that_fails_the_callers_check_is_computed_again(tmp_path, songs):
    """`check` says what can be the features (here: finite values); an entry read from disk that fails it (bit
    rot, a foreign writer) is computed again and replaced, and counted as such."""

    def finite(array):
        return bool(np.isfinite(array).all())

    cache = FeatureCache(tmp_path / "cache", CONFIG, check=finite)
    extract = CountingExtractor()
    whole = np.array(cache.get_or_compute(songs[0], extract))
    damaged = whole.copy()
    damaged[0, 0] = np.nan
    np.save(cache.path_for(songs[0]), damaged)
    cache = FeatureCache(tmp_path / "cache", CONFIG, check=finite)  # a later run
    np.testing.assert_array_equal(cache.get_or_compute(songs[0], extract), whole)
    assert (extract.computed, cache.replaced) == (2, 1)
    cache.get_or_compute(songs[0], extract)
    assert (extract.computed, cache.hits) == (2, 1)


@pytest.mark.parametrize("samples, rate", [(8192, 22050), (8191, 22050), (12287, 44100), (12286, 44100)])
def test_the_chord_features_frames_are_known_from_the_audio_header(tmp_path, samples, rate):
    """What the cache checks an entry's frames against: the frames `compute` gives, from the header alone
    (8192 samples at 22050 Hz are 4 hops of 2048; 12287 at 44100 Hz are 6144 once resampled)."""
    features = ChordFeatureConfig()
    path = tmp_path / "song.wav"
    sf.write(str(path), (0.1 * np.sin(np.arange(samples) * 0.05)).astype(np.float32), rate)
    assert features.expected_frames(path) == features.compute(features.load(path)).shape[-1]


def test_the_chord_features_check_refuses_an_entry_compute_cannot_give():
    """What the cache serves a chord run only if `valid_features` holds: float [feature_rows, frames] with at
    least one frame, all finite. An entry of no frames (a truncated write) would be a song of nothing."""
    features = ChordFeatureConfig()
    entry = np.zeros((features.feature_rows, 5), dtype=np.float32)
    assert features.valid_features(entry)
    not_finite = entry.copy()
    not_finite[0, 0] = np.inf
    for bad in (entry[:, :0], entry[:-1], entry[0], entry.astype(np.int32), not_finite):
        assert not features.valid_features(bad), bad.shape


def test_content_identity_survives_touch(tmp_path, songs):
    cache = FeatureCache(tmp_path / "cache", "mykey", identity="content")
    extract = CountingExtractor()
    cache.get_or_compute(songs[1], extract)
    os.utime(songs[1], (time.time() + 100, time.time() + 100))
    cache.get_or_compute(songs[1], extract)
    assert extract.computed == 1 and cache.hits == 1


def test_content_identity_sees_a_change_anywhere_in_the_file(tmp_path):
    """The hash is of the whole file: a long recording edited after its first MiB (a fixed ending) is not the
    recording cached. The samples are edited in place: rewriting the file changes its header anyway."""
    song = tmp_path / "long.wav"
    t = np.arange(40 * SR) / SR  # 40 s of float samples: 1.28 MB
    sf.write(str(song), (0.3 * np.sin(2 * np.pi * 300 * t)).astype(np.float32), SR, subtype="FLOAT")
    cache = FeatureCache(tmp_path / "cache", CONFIG, identity="content")
    extract = CountingExtractor()
    before = np.array(cache.get_or_compute(song, extract))
    with open(song, "r+b") as handle:  # the last half second silenced: the same size and header
        handle.seek(-4 * SR // 2, os.SEEK_END)
        handle.write(bytes(4 * SR // 2))
    after = cache.get_or_compute(song, extract)
    assert extract.computed == 2 and not np.array_equal(before, after)


def test_damaged_entry_is_recomputed(tmp_path, songs):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    good = np.array(cache.get_or_compute(songs[2], extract))
    cache.path_for(songs[2]).write_bytes(b"\x93NUMPY garbage")
    np.testing.assert_array_equal(cache.get_or_compute(songs[2], extract), good)
    assert extract.computed == 2


def test_an_entry_that_links_elsewhere_is_computed_again_and_the_link_replaced(tmp_path, songs):
    """A link in an entry's place (another song's features, a file planted in a shared cache) was read and
    kept: it is computed again, counted as a wrong entry, and replaced by an entry of its own; the file it
    led to is left as it was."""
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    good = np.array(cache.get_or_compute(songs[0], extract))
    entry = cache.path_for(songs[0])
    outside = tmp_path / "other_song.npy"
    np.save(outside, np.full_like(good, 5.0))
    entry.unlink()
    entry.symlink_to(outside)
    again = FeatureCache(tmp_path / "cache", CONFIG)
    np.testing.assert_array_equal(again.get_or_compute(songs[0], extract), good)
    assert extract.computed == 2 and (again.hits, again.misses, again.replaced) == (0, 1, 1)
    assert not entry.is_symlink() and (np.load(outside) == 5.0).all()


def test_the_caches_own_files_are_never_written_through_a_link(tmp_path, songs):
    """A cache can be shared between users: a link planted as its sources.jsonl had the next entry appended to
    the file it led to, and a dangling link as the root's marker had the first write create its target. Each
    is replaced by a file of the cache's own, with a warning naming it; what it led to is left as it was."""
    root = tmp_path / "cache"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / MARKER).symlink_to(outside / "created.txt")  # dangling
    extract = CountingExtractor()
    with pytest.warns(UserWarning, match=rf"{MARKER} was a link to {outside / 'created.txt'}: .*replaced"):
        cache = FeatureCache(root, CONFIG)
        cache.get_or_compute(songs[0], extract)
    assert not (outside / "created.txt").exists() and not (root / MARKER).is_symlink()
    assert (root / MARKER).is_file()

    notes = outside / "notes.txt"
    notes.write_text("another user's file\n")
    config = cache.folder / "config.json"
    for name in ("sources.jsonl", "config.json"):
        (cache.folder / name).unlink()
        (cache.folder / name).symlink_to(notes)
    with pytest.warns(UserWarning) as said:
        FeatureCache(root, CONFIG).get_or_compute(songs[1], extract)
    assert sorted(str(w.message).split(" was a link")[0] for w in said) == [
        f"the feature cache's {config}",
        f"the feature cache's {cache.folder / 'sources.jsonl'}",
    ]
    assert notes.read_text() == "another user's file\n"
    sources = (cache.folder / "sources.jsonl").read_text().splitlines()
    assert [json.loads(line)[1] for line in sources] == [str(songs[1].resolve())]
    assert json.loads(config.read_text()) == CONFIG.to_dict()


def test_compute_fn_without_arguments_and_missing_files(tmp_path, songs):
    cache = FeatureCache(tmp_path / "cache", CQTConfig(sr=SR, n_bins=24, fmin=110.0, hop_length=256))
    value = cache.get_or_compute(songs[0], lambda: np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(value, np.arange(6).reshape(2, 3))
    assert (cache.folder / "config.json").is_file()
    # A compute_fn taking its arguments as *args is given the path too.
    np.testing.assert_array_equal(
        cache.get_or_compute(songs[2], lambda *args: np.array(args, str)), [str(songs[2])]
    )
    # MLX results are stored too; bfloat16 (which numpy lacks) as float32, exactly.
    half = mx.array([[0.5, -1.25, 3.0]], dtype=mx.bfloat16)
    stored = cache.get_or_compute(songs[1], lambda: half)
    assert stored.dtype == np.float32 and np.array_equal(stored, np.array(half.astype(mx.float32)))
    with pytest.raises(AudioError) as info:
        cache.get_or_compute(tmp_path / "gone.wav", lambda: np.zeros(1))
    assert info.value.cause == "missing"
    with pytest.raises(ValueError, match="identity"):
        FeatureCache(tmp_path, "k", identity="mtime")
    with pytest.raises(ValueError, match="config_key"):
        FeatureCache(tmp_path, "../escape")


def _fill(root: str, paths: list[str], seed: int) -> None:
    cache = FeatureCache(root, "concurrent")
    order = np.random.default_rng(seed).permutation(len(paths))
    for i in order:
        cache.get_or_compute(
            paths[i], lambda p: np.full((64, 256), float(Path(p).stem[4:]), dtype=np.float32)
        )


def test_two_processes_filling_at_once_leave_a_valid_cache(tmp_path):
    folder = tmp_path / "songs"
    folder.mkdir()
    paths = [str(_song(folder, i)) for i in range(24)]
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_fill, args=(str(tmp_path / "cache"), paths, seed)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
        assert worker.exitcode == 0
    cache = FeatureCache(tmp_path / "cache", "concurrent")
    for i, path in enumerate(paths):
        np.testing.assert_array_equal(cache.get_or_compute(path, lambda: pytest.fail("recomputed")), i)
    assert cache.report()["entries"] == 24
    assert not [p for p in cache.folder.iterdir() if p.name.startswith(".tmp-")]


def test_cli_info_and_clear(tmp_path, songs, capsys):
    root = tmp_path / "cache"
    mel = FeatureCache(root, CONFIG)
    other = FeatureCache(root, "other")
    for path in songs:
        mel.get_or_compute(path, CountingExtractor())
    other.get_or_compute(songs[0], lambda: np.zeros(10))
    assert main(["info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert CONFIG.key() in out and "mel" in out and "total: 2 configurations, 5 entries" in out
    assert main(["clear", "--root", str(root), "--key", "other"]) == 0
    assert "deleted 1 entry" in capsys.readouterr().out
    assert main(["clear", "--root", str(root), "--key", "other"]) == 1
    assert main(["clear", "--root", str(root)]) == 0
    assert "deleted 4 entries in 1 configuration" in capsys.readouterr().out
    assert mel.report()["entries"] == 0
    with pytest.raises(SystemExit):
        main(["defrag"])


def test_cli_refuses_a_cache_variable_that_names_a_file(tmp_path, capsys, monkeypatch):
    """AUDIOTRAIN_CACHE_DIR naming a file gave "total: 0 configurations" and "deleted 0 entries" (exit 0),
    where every run with it fails: it is refused as --root FILE is."""
    (tmp_path / "afile").write_text("mine")
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "afile"))
    for command, done in (("info", "listed"), ("clear", "deleted"), ("prune", "deleted")):
        assert main([command]) == 2
        captured = capsys.readouterr()
        assert not captured.out
        assert (
            f"error: AUDIOTRAIN_CACHE_DIR {tmp_path / 'afile'} is a file, not a folder; nothing was {done}"
            in (captured.err)
        )
    assert (tmp_path / "afile").read_text() == "mine"


def test_the_cache_commands_usage_names_the_command_as_started(capsys, monkeypatch):
    from audiotrain.__main__ import main as audiotrain_main

    for argv0, prog in (("/venv/bin/audiotrain", "audiotrain"), ("-m", "python -m audiotrain")):
        monkeypatch.setattr(sys, "argv", [argv0, "cache", "--help"])
        with pytest.raises(SystemExit) as exit:
            audiotrain_main()
        assert exit.value.code == 0
        assert capsys.readouterr().out.startswith(f"usage: {prog} cache [-h]")


def test_cli_refuses_a_root_that_is_missing_or_a_file_and_abbreviations(tmp_path, capsys):
    """A --root typo printed "deleted 0 entries" (exit 0), as if the cache were empty."""
    (tmp_path / "afile").write_text("mine")
    for command, root, problem in (
        ("clear", tmp_path / "no_such_cache", "does not exist; nothing was deleted"),
        ("info", tmp_path / "afile", "is a file, not a folder; nothing was listed"),
    ):
        assert main([command, "--root", str(root)]) == 2
        captured = capsys.readouterr()
        assert f"--root {root} {problem}" in captured.err and not captured.out
    assert (tmp_path / "afile").read_text() == "mine"
    with pytest.raises(SystemExit):
        main(["info", "--ro", str(tmp_path)])  # once taken as --root
    assert "unrecognized arguments: --ro" in capsys.readouterr().err
    # An unknown --key is an error, said on stderr.
    (tmp_path / "cache").mkdir()
    FeatureCache(tmp_path / "cache", "k").get_or_compute(tmp_path / "afile", lambda: np.ones(3))
    assert main(["clear", "--root", str(tmp_path / "cache"), "--key", "nope"]) == 1
    captured = capsys.readouterr()
    assert f"no configuration 'nope' under {tmp_path / 'cache'}; --key takes one of: k" in captured.err
    assert "demo set" not in captured.err and not captured.out  # (no chord-recipe wording for a mel cache)


def test_clear_method_and_env_root(tmp_path, songs, monkeypatch, capsys):
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "envcache"))
    cache = FeatureCache(tmp_path / "envcache" / "features", "k")
    cache.get_or_compute(songs[0], lambda: np.ones(3))
    assert main(["info"]) == 0
    assert "1 entry " in capsys.readouterr().out
    assert cache.clear() == 1 and cache.report()["entries"] == 0


def test_clear_deletes_only_what_the_cache_wrote(tmp_path, songs, capsys):
    """A mistyped --root (a project folder, ~) must not cost the user's files: only cache entries, their
    config.json and leftover temporary files go; other folders and files stay and are not counted."""
    root = tmp_path / "project"
    cache = FeatureCache(root, CONFIG)
    cache.get_or_compute(songs[0], CountingExtractor())
    (cache.folder / ".tmp-abc123.npy").write_bytes(b"half-written")  # left by a crash
    (cache.folder / "notes.txt").write_text("mine")  # not the cache's
    (root / "src").mkdir()
    (root / "src" / "model.py").write_text("important")
    (root / "src" / "weights.npy").write_bytes(b"not an entry name")
    backup = cache.folder / f"{'a' * 24}-{'b' * 12}.npy.bak"  # named as an entry, and then some
    backup.write_bytes(b"the user's copy")
    assert main(["info", "--root", str(root)]) == 0
    assert "total: 1 configuration, 1 entry" in capsys.readouterr().out  # the temp file is no entry
    assert main(["clear", "--root", str(root)]) == 0
    assert "deleted 1 entry in 1 configuration" in capsys.readouterr().out
    assert (root / "src" / "model.py").read_text() == "important" and (root / "src" / "weights.npy").exists()
    assert sorted(p.name for p in cache.folder.iterdir()) == [backup.name, "notes.txt"]
    assert main(["clear", "--root", str(root), "--key", "src"]) == 1  # not a cache configuration
    assert main(["clear", "--root", str(root), "--key", ".."]) == 2
    assert (root / "src" / "model.py").exists()


def test_clear_reports_files_it_could_not_delete(tmp_path, songs, monkeypatch, capsys):
    cache = FeatureCache(tmp_path / "cache", "k")
    entry = Path(cache.get_or_compute(songs[0], lambda: np.ones(3)).filename)
    unlink = Path.unlink

    def refuse_the_entry(self, *args, **kwargs):  # as a read-only file system or an immutable file would
        if self == entry:
            raise PermissionError(1, "Operation not permitted", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refuse_the_entry)
    assert main(["clear", "--root", str(tmp_path / "cache")]) == 1
    assert f"{entry}: Operation not permitted" in capsys.readouterr().err
    with pytest.raises(OSError, match="could not delete 1 cache files"):
        cache.clear()
    assert entry.exists()


def test_a_rewrite_that_keeps_size_and_mtime_is_recomputed(tmp_path, songs):
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    before = np.array(cache.get_or_compute(songs[0], extract))
    cache.get_or_compute(songs[0], extract)  # a plain re-read, nothing changed: a hit
    assert (extract.computed, cache.hits) == (1, 1)
    old = os.stat(songs[0])
    time.sleep(0.05)  # past the file system's timestamp granularity
    t = np.arange(SR // 2) / SR
    sf.write(str(songs[0]), (0.3 * np.sin(2 * np.pi * 900 * t)).astype(np.float32), SR)  # same size
    os.utime(songs[0], ns=(old.st_atime_ns, old.st_mtime_ns))  # like `touch -r` / `cp --preserve`
    new = os.stat(songs[0])
    assert (new.st_size, new.st_mtime_ns) == (old.st_size, old.st_mtime_ns)
    after = np.array(cache.get_or_compute(songs[0], extract))
    assert extract.computed == 2 and not np.array_equal(after, before)
    cache.get_or_compute(songs[0], extract)
    assert extract.computed == 2 and cache.report()["entries"] == 1  # a hit again; the stale entry is gone


def test_copied_songs_are_computed_once_in_their_new_folder(tmp_path, songs):
    import shutil

    cache = FeatureCache(tmp_path / "cache", CONFIG)
    extract = CountingExtractor()
    for path in songs:
        cache.get_or_compute(path, extract)
    copies = tmp_path / "copies"
    copies.mkdir()
    moved = [Path(shutil.copy2(path, copies / path.name)) for path in songs]  # times preserved
    first = [np.array(cache.get_or_compute(path, extract)) for path in moved]
    assert extract.computed == 8  # a new path is a new entry
    second = [cache.get_or_compute(path, extract) for path in moved + songs]
    assert extract.computed == 8 and cache.hits == 8  # both folders are served from the cache
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a, b)


def test_a_cache_from_before_the_marker_in_use_is_named_as_given_until_a_run_marks_it(
    tmp_path, songs, monkeypatch, capsys
):
    """The cache an audiotrain of before the marker left in AUDIOTRAIN_CACHE_DIR: `cache info` said
    "--root X is not a feature cache" though no --root was given, and told the user to pass the folder the
    cache writes to, X itself. It names the variable, not --root; a run's next entry marks it, and then
    `cache info` lists it."""
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "envcache"))
    root = tmp_path / "envcache" / "features"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    (root / MARKER).unlink()  # (as the cache was written before the marker)
    for command in ("info", "prune", "clear"):
        assert main([command]) == 2
        err = capsys.readouterr().err
        assert f"error: AUDIOTRAIN_CACHE_DIR {root} is not a feature cache" in err, err
        assert "--root" not in err and "Pass the folder" not in err, err
    FeatureCache(root, CONFIG).get_or_compute(songs[1], CountingExtractor())
    assert main(["info"]) == 0 and "2 entries" in capsys.readouterr().out


def test_cache_commands_refuse_a_folder_that_is_not_a_cache(tmp_path, songs, capsys):
    """`cache clear --root runs` (a folder of runs taken for the cache) once deleted every run's config.json:
    the cache marks its root, and both commands refuse a folder without the mark, changing nothing."""
    runs = tmp_path / "runs"
    for name in ("chords-1", "clap-2"):
        (runs / name).mkdir(parents=True)
        (runs / name / "config.json").write_text('{"config": {}}')
    (runs / "clap-2" / "0123456789abcdef01234567-0123456789ab.npy").write_bytes(b"looks like an entry")
    before = {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()}
    for command in ("clear", "info"):
        assert main([command, "--root", str(runs)]) == 2
        err = capsys.readouterr().err
        assert f"--root {runs} is not a feature cache" in err and MARKER in err
    assert {p: p.read_bytes() for p in runs.rglob("*") if p.is_file()} == before
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    cache.get_or_compute(songs[0], CountingExtractor())
    assert (tmp_path / "cache" / MARKER).is_file()  # written with the first entry
    assert main(["clear", "--root", str(tmp_path / "cache")]) == 0
    assert (tmp_path / "cache" / MARKER).is_file()  # clearing keeps the root a cache


@pytest.mark.parametrize("umask", [0o022, 0o002])
def test_entries_follow_the_umask_as_any_new_file(tmp_path, songs, umask):
    """A cache shared between users (CI, a team's AUDIOTRAIN_CACHE_DIR) was unreadable to all but each entry's
    writer: entries were 0o600 whatever the umask."""
    old = os.umask(umask)
    try:
        cache = FeatureCache(tmp_path / "cache", CONFIG)
        entry = Path(cache.get_or_compute(songs[0], CountingExtractor()).filename)
    finally:
        os.umask(old)
    for path in (entry, cache.folder / "config.json"):
        assert path.stat().st_mode & 0o777 == 0o666 & ~umask, path.name


def test_a_cache_that_cannot_be_written_computes_in_memory_and_warns_once(tmp_path, songs, make_read_only):
    """A read-only cache (a read-only mount, someone else's shared cache) aborted training with a raw OSError
    at the first miss, and a damaged entry there crashed when it was deleted."""
    root = tmp_path / "cache"
    extract = CountingExtractor()
    filled = FeatureCache(root, CONFIG)
    expected = [np.array(filled.get_or_compute(path, extract)) for path in songs[:2]]
    filled.path_for(songs[1]).write_bytes(b"\x93NUMPY damaged")
    make_read_only(root)
    cache = FeatureCache(root, CONFIG)
    with pytest.warns(UserWarning) as caught:
        served = [cache.get_or_compute(path, extract) for path in songs]
    assert len(caught) == 1, [str(w.message) for w in caught]
    message = str(caught[0].message)
    assert (
        str(cache.folder) in message and "AUDIOTRAIN_CACHE_DIR" in message and "--data.cache_dir" in message
    )
    assert (cache.hits, cache.misses) == (1, 3) and extract.computed == 2 + 3
    for value, want in zip(served, expected):
        np.testing.assert_array_equal(value, want)
    np.testing.assert_array_equal(served[3], CountingExtractor()(songs[3]))


def test_cli_shows_each_configurations_settings_and_lists_and_clears_demo_sets(tmp_path, songs, capsys):
    """`cache info` named configurations only by a hash, and the demo songs beside the cache (1.3 GB for
    --benchmark) were neither listed nor cleared."""
    from audiotrain.datasets.chord_demo import DEMO_FOLDER, generate_demo_songs

    root = tmp_path / "features"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    sets = [tmp_path / DEMO_FOLDER / name for name in ("set-a", "set-b")]
    for seed, folder in enumerate(sets):
        generate_demo_songs(folder, n_songs=1 + seed, seed=seed, sr=8000, song_seconds=4.0)
    (sets[0] / "mine.txt").write_text("not the demo writer's")
    assert main(["info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"hop_length={CONFIG.hop_length}" in out and f"n_mels={CONFIG.n_mels}" in out
    assert "set-a  1 song" in out and "set-b  2 songs" in out and "total: 2 sets, 3 songs" in out
    assert main(["clear", "--root", str(root), "--key", "set-b"]) == 0
    assert "deleted 2 demo songs of set-b" in capsys.readouterr().out and not sets[1].exists()
    assert main(["clear", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "deleted 1 entry in 1 configuration" in out and "deleted 1 demo song in 1 set" in out
    assert [p.name for p in sets[0].iterdir()] == ["mine.txt"]


def test_cli_lists_and_clears_the_clap_recipes_demo_sets_too(tmp_path, capsys):
    """The CLAP demo's sets (up to 5.7 MB each) sat at the top of the cache, where `cache info` and `cache
    clear` ("all entries and demo sets") never saw them."""
    from audiotrain.datasets.caption_demo import DEMO_FOLDER, CaptionDemoConfig, make_caption_demo

    root = tmp_path / "features"
    root.mkdir()
    (root / MARKER).write_text("")
    sets = [tmp_path / DEMO_FOLDER / f"caption_demo-n{n}-seed0" for n in (6, 8)]
    for folder in sets:
        make_caption_demo(folder, CaptionDemoConfig(n_clips=int(folder.name.split("-n")[1].split("-")[0])))
    (sets[0] / "clips" / "mine.wav").write_bytes(b"not the demo writer's")
    assert main(["info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"CLAP demo clip sets at {tmp_path / DEMO_FOLDER}" in out
    assert "caption_demo-n6-seed0  6 clips" in out and "total: 2 sets, 14 clips" in out
    assert main(["clear", "--root", str(root), "--key", "caption_demo-n8-seed0"]) == 0
    assert "deleted 8 demo clips of caption_demo-n8-seed0" in capsys.readouterr().out and not sets[1].exists()
    assert main(["clear", "--root", str(root)]) == 0
    assert "deleted 6 demo clips in 1 set" in capsys.readouterr().out
    assert [p.relative_to(sets[0]).as_posix() for p in sets[0].rglob("*")] == ["clips", "clips/mine.wav"]


class CachedSongs:
    """A Dataset of cached features: what a DataLoader's workers run."""

    def __init__(self, cache, songs):
        self.cache, self.songs, self.extract = cache, songs, CountingExtractor()

    def __len__(self):
        return len(self.songs)

    def __getitem__(self, index):
        return np.array(self.cache.get_or_compute(self.songs[index], self.extract))


def test_report_counts_thread_workers_lookups_and_says_when_copies_count_their_own(tmp_path, songs):
    """With process workers each worker updates its own copy, and report() said 0 hits and 0 misses with
    no caveat although every entry was computed and served."""
    from audiotrain import DataLoader

    cache = FeatureCache(tmp_path / "cache", CONFIG)
    loader = DataLoader(CachedSongs(cache, songs), batch_size=2, num_workers=2, worker_type="thread")
    for _ in range(2):
        for _ in loader:
            pass
    report = cache.report()
    assert (report["hits"], report["misses"], report["entries"]) == (4, 4, 4) and "note" not in report

    # A process worker's copy is this object pickled (as DataLoader(worker_type="process") sends it).
    copy = pickle.loads(pickle.dumps(cache))
    copy.get_or_compute(songs[0], CountingExtractor())
    assert copy.hits == 5 and cache.hits == 4
    report = cache.report()
    assert "count the lookups made through this object only" in report["note"]
    assert "process workers" in report["note"] and report["entries"] == 4


def test_a_cache_that_cannot_be_written_says_so_before_features_are_computed(tmp_path, songs, make_read_only):
    """`can_keep_new_entries` is asked before a recipe says the features it computes are kept: on a read-only
    cache it says no, with the warning a failed write gives (once)."""
    root = tmp_path / "cache"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    make_read_only(root)
    cache = FeatureCache(root, CONFIG)
    with pytest.warns(UserWarning, match="cannot be written") as caught:
        assert not cache.can_keep_new_entries() and not cache.can_keep_new_entries()
    assert len(caught) == 1 and cache.unwritable and cache.report()["unwritable"] == cache.unwritable


def test_a_cache_linked_to_a_folder_that_does_not_exist_says_so(tmp_path, songs):
    """A cache folder linked to a drive not mounted: the run said the features it computed were kept in the
    cache for later runs, then warned that the cache cannot be written, "(File exists)"."""
    root = tmp_path / "cache"
    root.symlink_to(tmp_path / "unmounted")
    cache = FeatureCache(root, CONFIG)
    with pytest.warns(UserWarning, match="cannot be written") as caught:
        assert not cache.can_keep_new_entries()
    assert f"({root} is a link to {tmp_path / 'unmounted'}, which does not exist)" in str(caught[0].message)
    assert cache.get_or_compute(songs[0], CountingExtractor()).shape  # computed in memory all the same
    assert not (tmp_path / "unmounted").exists()


@needs_file_size_limit
def test_a_full_disk_is_named_in_the_warning(tmp_path, songs):
    """The warning said 'cannot be written (25740 requested and 21472 written)' (numpy's words for a short
    write), not why the disk took no more."""
    cache = FeatureCache(tmp_path / "cache", CQTConfig(sr=SR, hop_length=64, n_bins=48))
    with (
        files_cannot_grow_past(2000),
        pytest.warns(UserWarning, match=r"cannot be written \(File too large\)"),
    ):
        features = cache.get_or_compute(songs[0], lambda path: np.ones((48, 200), np.float32))
    assert features.shape == (48, 200) and cache.report()["entries"] == 0


def _another_process(code: str) -> subprocess.Popen:
    """Python running `code` in another process (with this checkout's audiotrain), its stdin and stdout piped:
    a run that uses the cache until its stdin closes."""
    return subprocess.Popen(
        [sys.executable, "-c", code], env=_ENV, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )


_ENV = child_env()


def test_clear_refuses_while_a_run_uses_the_cache_unless_forced(tmp_path):
    """`cache clear` in another terminal deleted the demo sets under a training run, which then failed at its
    final evaluation with a bare '[Errno 2] No such file or directory' after all its epochs."""
    cache = tmp_path / "cache"
    run = _another_process(  # the chord recipe's demo data, then a long training (until its stdin closes)
        "import sys; from audiotrain.recipes.chords.config import ChordDataConfig\n"
        "from audiotrain.recipes.chords.data import demo_splits\n"
        f"data = ChordDataConfig(cache_dir={str(cache)!r}, demo_songs=2, demo_test_songs=1, demo_seconds=4)\n"
        "demo_splits(data, sr=8000)\nprint('training', flush=True)\nsys.stdin.read()\n"
    )
    try:
        assert deadlines.read_line(run, "'training' from the child", 120) == "training\n"
        songs = sorted((cache / "demo").rglob("*.wav"))
        assert len(songs) == 3
        clear = subprocess.run(
            [sys.executable, "-m", "audiotrain", "cache", "clear", "--root", str(cache / "features")],
            env=_ENV,
            capture_output=True,
            text=True,
        )
        assert clear.returncode == 1 and not clear.stdout, clear
        assert f"error: another process is using the cache at {cache / 'features'}" in clear.stderr
        assert "Nothing was deleted: wait until it ends, or pass --force" in clear.stderr
        assert all(song.is_file() for song in songs)
    finally:
        run.communicate("")
    assert main(["clear", "--root", str(cache)]) == 0  # the run has ended
    assert not any(song.exists() for song in songs)


def test_a_cache_collected_while_another_takes_its_hold_does_not_hang_the_thread(tmp_path, monkeypatch):
    """A worker of a test run hung for good in `FeatureCache.__init__`: the garbage collector ran the
    finalizer of an unreachable cache (its hold's release) inside an allocation `hold_cache` made while it
    held the lock of the process's holds, and the release waited for that lock. The collector is made to
    run at that point here; the release is counted once the new hold is taken, and the root's marker
    closed with its last hold."""
    import gc
    import threading

    first, second = tmp_path / "first", tmp_path / "second"
    feature_cache.hold_cache(first, create=True)()  # (its marker: a cache holds its root once it is there)
    collected = FeatureCache(first, "k")
    collected.cycle = collected  # (unreachable only through the collector, as a run's objects often are)
    assert first.absolute() in feature_cache._IN_USE
    del collected
    mark_root = feature_cache._mark_root

    def collecting_mark_root(root: Path) -> None:
        gc.collect()  # (as an allocation here may)
        mark_root(root)

    monkeypatch.setattr(feature_cache, "_mark_root", collecting_mark_root)
    held: list = []
    taking = threading.Thread(target=lambda: held.append(feature_cache.hold_cache(second, create=True)))
    taking.daemon = True  # (the hang this checks would otherwise keep pytest from exiting)
    taking.start()
    taking.join(timeout=60)
    assert not taking.is_alive(), "hold_cache waited for ever for the lock its own thread held"
    assert first.absolute() not in feature_cache._IN_USE  # the collected cache's hold, counted off
    assert feature_cache._RELEASED == []
    held[0]()
    assert second.absolute() not in feature_cache._IN_USE
    assert main(["clear", "--root", str(first)]) == 0  # nothing of this process holds it now


def test_clear_force_goes_on_while_the_cache_is_in_use(tmp_path, songs, capsys):
    root = tmp_path / "cache"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    user = _another_process(
        "import sys; from audiotrain.features.cache import FeatureCache\n"
        f"cache = FeatureCache({str(root)!r}, 'k'); print('using', flush=True); sys.stdin.read()\n"
    )
    try:
        assert deadlines.read_line(user, "'using' from the child", 120) == "using\n"
        assert main(["prune", "--root", str(root)]) == 1
        assert "another process is using the cache" in capsys.readouterr().err
        assert main(["clear", "--root", str(root), "--force"]) == 0
        captured = capsys.readouterr()
        assert "--force: clearing it all the same" in captured.err and "deleted 1 entry" in captured.out
    finally:
        user.communicate("")


#: What a process runs before it says 'using' (and waits), each a way its hold on the cache was once lost
#: while it still used the cache: `root` names the cache, `song` an audio file.
_STILL_USING = {
    # Its first entry marks a root no run had used yet: the hold is taken then, not at `FeatureCache(...)`.
    "first use": "cache = FeatureCache(root, 'k'); cache.get_or_compute(song, lambda: np.zeros(3))",
    # Two caches on one root (a train and a validation set), one of them collected: the other still holds.
    "one of two collected": (
        "kept = FeatureCache(root, 'k'); gone = FeatureCache(root, 'v')\ndel gone; gc.collect()"
    ),
    # A hold's release called twice gives up that hold only, not the other one on the same root.
    "a release called twice": "first = hold_cache(root); second = hold_cache(root); first(); first()",
    # Its cache deleted under it (`rm -rf`), then marked again by its next entry: it held the deleted marker.
    "its cache deleted under it": (
        "cache = FeatureCache(root, 'k'); cache.get_or_compute(song, lambda: np.zeros(3))\n"
        "shutil.rmtree(root); cache.get_or_compute(song, lambda: np.zeros(3))"
    ),
    # Its own `cache clear` (a notebook's) gives up its own hold for the clear, and takes it back after.
    "its own clear": (
        "cache = FeatureCache(root, 'k')\n"
        "with contextlib.redirect_stdout(io.StringIO()): main(['clear', '--root', root])"
    ),
}


@pytest.mark.parametrize("way", _STILL_USING)
def test_clear_refuses_while_another_process_still_uses_the_cache(tmp_path, songs, capsys, way):
    root = tmp_path / "cache"
    if way != "first use":
        FeatureCache(root, "mine").get_or_compute(songs[1], lambda: np.ones(2))  # (marks the root)
    user = _another_process(
        "import contextlib, gc, io, shutil, sys\nimport numpy as np\n"
        "from audiotrain.features.cache import FeatureCache, hold_cache, main\n"
        f"root, song = {str(root)!r}, {str(songs[0])!r}\n{_STILL_USING[way]}\n"
        "print('using', flush=True)\nsys.stdin.read()\n"
    )
    try:
        assert deadlines.read_line(user, "'using' from the child", 120) == "using\n"
        assert main(["clear", "--root", str(root)]) == 1
        assert f"another process is using the cache at {root}" in capsys.readouterr().err
    finally:
        user.communicate("")


def test_prune_keeps_the_entries_of_songs_looked_up_by_a_relative_path(tmp_path, songs, capsys, monkeypatch):
    """A dataset listed by paths relative to the folder it was run in: `cache prune` run from another folder
    must find its songs there still, not delete their features as of audio that no longer exists."""
    root = tmp_path / "cache"
    monkeypatch.chdir(songs[0].parent)
    FeatureCache(root, CONFIG).get_or_compute(songs[0].name, CountingExtractor())
    monkeypatch.chdir(tmp_path)
    assert main(["prune", "--root", str(root)]) == 0
    assert "pruned 0 entries" in capsys.readouterr().out
    assert FeatureCache(root, CONFIG).holds(songs[0])


def test_clear_of_one_configuration_leaves_the_demo_sets(tmp_path, songs, capsys):
    """`cache clear --key` deletes what it names alone: a feature configuration, not the demo songs beside
    the cache too (which the next run renders again: minutes)."""
    root = tmp_path / "features"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    demo_set = _chord_set(
        tmp_path / chord_demo.DEMO_FOLDER, chord_demo.DemoConfig(n_songs=1, song_seconds=6.0)
    )
    assert main(["clear", "--root", str(root), "--key", CONFIG.key()]) == 0
    out = capsys.readouterr().out
    assert f"deleted 1 entry of {CONFIG.key()}" in out and "demo" not in out
    assert (demo_set / "song_000.wav").is_file() and (demo_set / chord_demo.MANIFEST).is_file()


def test_a_key_that_names_a_path_is_refused_and_deletes_nothing(tmp_path, songs, capsys):
    """`--key` names a folder of the cache: one going through a configuration to a run folder's config.json
    must not delete it."""
    root = tmp_path / "features"
    FeatureCache(root, CONFIG).get_or_compute(songs[0], CountingExtractor())
    run_config = tmp_path / "runs" / "r1" / "config.json"
    run_config.parent.mkdir(parents=True)
    run_config.write_text("{}")
    assert main(["clear", "--root", str(root), "--key", f"{CONFIG.key()}/../../runs/r1"]) == 2
    assert "--key must be a configuration or set folder name" in capsys.readouterr().err
    assert run_config.is_file() and FeatureCache(root, CONFIG).holds(songs[0])


@pytest.mark.parametrize("key", ["mel/v2", ".hidden"])
def test_a_config_key_that_is_no_folder_name_is_refused(tmp_path, key):
    """A key with a '/' would put its entries in a folder `cache info`, `clear` and `prune` never see; one
    starting with '.' is hidden, or (`..`) the folder above the cache."""
    with pytest.raises(ValueError, match="config_key must be a non-empty folder name"):
        FeatureCache(tmp_path / "cache", key)


def test_clear_and_prune_of_a_cache_not_made_yet_delete_nothing(tmp_path, monkeypatch, capsys):
    """On a machine where no run has used the cache yet, `cache clear` and `cache prune` say there was
    nothing to delete (no marker to lock yet)."""
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "fresh"))
    assert main(["clear"]) == 0
    assert "deleted 0 entries in 0 configurations" in capsys.readouterr().out
    assert main(["prune"]) == 0
    assert "pruned 0 entries" in capsys.readouterr().out


def test_prune_deletes_the_entries_of_audio_that_no_longer_exists(tmp_path, songs, capsys):
    """Entries are found by the audio file's absolute path: a song deleted, or a data folder renamed, left
    its entries for good, and the only remedy (`clear --key`) deleted the whole configuration."""
    root = tmp_path / "cache"
    cache = FeatureCache(root, CONFIG)
    for path in songs:
        cache.get_or_compute(path, CountingExtractor())
    songs[3].unlink()
    moved = songs[2].rename(tmp_path / "moved.wav")
    cache.get_or_compute(moved, CountingExtractor())  # the same song under its new name: a new entry
    old = cache.folder / ("0" * 24 + "-" + "0" * 12 + ".npy")  # written before the cache recorded sources
    np.save(old, np.ones((16, 3), np.float32))
    assert main(["prune", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "pruned 2 entries (" in out and f"whose audio file no longer exists from {root}" in out
    assert "kept 1 entry whose audio file the cache did not record" in out
    assert cache.report()["entries"] == 4 and old.is_file()
    recorded = (cache.folder / "sources.jsonl").read_text()  # (the record keeps the songs still there)
    assert str(songs[0]) in recorded and str(songs[3]) not in recorded
    fresh = FeatureCache(root, CONFIG)
    for path in (*songs[:2], moved):
        fresh.get_or_compute(path, lambda: pytest.fail("pruned an entry whose audio exists"))
    assert main(["prune", "--root", str(root)]) == 0
    assert "pruned 0 entries" in capsys.readouterr().out


def test_prune_keeps_the_entries_of_songs_on_a_drive_that_is_not_mounted(
    tmp_path, songs, capsys, monkeypatch
):
    """A musician's songs on an external drive (/Volumes/Songs on a Mac): `cache prune` run while it was
    unplugged deleted every entry of them, "whose audio file no longer exists", and the next run computed
    them all again. A song deleted from a folder that is there is still pruned."""
    from audiotrain.features import cache as cache_module

    volumes = tmp_path / "Volumes"
    monkeypatch.setattr(cache_module, "DRIVE_FOLDERS", (str(volumes),), raising=False)
    (volumes / "Songs" / "album").mkdir(parents=True)
    on_drive = [songs[0].rename(volumes / "Songs" / "album" / "a.wav")]
    root = tmp_path / "cache"
    cache = FeatureCache(root, CONFIG)
    for path in (*on_drive, *songs[1:]):
        cache.get_or_compute(path, CountingExtractor())
    songs[3].unlink()
    (volumes / "Songs").rename(tmp_path / "unplugged")
    assert main(["prune", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "pruned 1 entry (" in out, out
    assert f"kept 1 entry of songs on {volumes / 'Songs'}, which is not mounted (a drive unplugged?)" in out
    (tmp_path / "unplugged").rename(volumes / "Songs")
    fresh = FeatureCache(root, CONFIG)
    fresh.get_or_compute(
        on_drive[0], lambda: pytest.fail("pruned the entry of a song on the unplugged drive")
    )
    # Linux keeps an fstab mount point (/mnt/Songs) as an empty folder while its drive is unplugged.
    (volumes / "Songs").rename(tmp_path / "unplugged")
    (volumes / "Songs").mkdir()
    assert main(["prune", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "pruned 0 entries" in out and "kept 1 entry of songs on" in out, out
    (volumes / "Songs").rmdir()
    (tmp_path / "unplugged").rename(volumes / "Songs")
    FeatureCache(root, CONFIG).get_or_compute(
        on_drive[0], lambda: pytest.fail("pruned the entry of a song under an empty mount point")
    )


def test_cache_commands_take_the_folder_given_to_data_cache_dir(tmp_path, songs, capsys):
    """`cache info --root DIR` with the DIR given --data.cache_dir was refused as 'not a feature cache': the
    cache is DIR/features."""
    FeatureCache(tmp_path / "mycache" / "features", CONFIG).get_or_compute(songs[0], CountingExtractor())
    assert main(["info", "--root", str(tmp_path / "mycache")]) == 0
    out = capsys.readouterr().out
    assert f"feature cache at {tmp_path / 'mycache' / 'features'}" in out and "1 entry " in out
    assert main(["clear", "--root", str(tmp_path / "mycache")]) == 0
    assert "deleted 1 entry" in capsys.readouterr().out


def test_songs_under_a_name_the_locale_cannot_encode_are_cached_as_in_any_locale(tmp_path, songs):
    """Under ``LC_ALL=C`` with Python's UTF-8 mode off, a song in ``My Songs ☃/`` stopped the run with "'utf-8'
    codec can't encode characters: surrogates not allowed" (the entry's name hashed the path as text)."""
    folder = tmp_path / "My Songs ☃"
    folder.mkdir()
    song = songs[0].rename(folder / "é.wav")
    root = tmp_path / "cache"
    entry = FeatureCache(root, "k").path_for(song)  # as a UTF-8 locale names it
    code = (
        "import os, sys; from pathlib import Path; import numpy as np\n"
        "from audiotrain.features.cache import FeatureCache\n"
        "assert sys.getfilesystemencoding() == 'ascii'\n"
        "song = next(next(p for p in Path('.').iterdir() if p.name.startswith('My Songs')).iterdir())\n"
        "cache = FeatureCache('cache', 'k')\n"
        "cache.get_or_compute(song, lambda: np.ones(3)); print(cache.path_for(song).name)\n"
    )
    env = {**_ENV, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0"}
    done = subprocess.run(
        [sys.executable, "-X", "utf8=0", "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == entry.name and entry.is_file()


def test_cli_root_expands_a_tilde_the_shell_left_alone(tmp_path, monkeypatch, capsys):
    """`cache info --root=~/c`: bash leaves a ~ after = as it is, and the root "did not exist"."""
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "a.wav").write_text("stands for audio")
    FeatureCache(tmp_path / "c", "k").get_or_compute(tmp_path / "a.wav", lambda: np.ones(3))
    assert main(["info", "--root=~/c"]) == 0
    assert f"feature cache at {tmp_path / 'c'}" in capsys.readouterr().out


def test_cache_info_into_a_closed_pipe_ends_quietly(tmp_path):
    """`python -m audiotrain cache info | head -1` ended in a 14-line BrokenPipeError traceback."""
    (tmp_path / "a.wav").write_text("stands for audio")
    FeatureCache(tmp_path / "c", "k").get_or_compute(tmp_path / "a.wav", lambda: np.ones(3))
    command = [sys.executable, "-m", "audiotrain", "cache", "info", "--root", str(tmp_path / "c")]
    reader = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    reader.stdout.close()  # as `head` does once it has its line
    status = reader.wait(timeout=120)
    assert status == 0 and b"Traceback" not in reader.stderr.read()


# ---- what an upgrade leaves: an earlier cache folder, entries this version never reads --------------------


class _Stopped(Exception):
    pass


def _stop(*args, **kwargs):
    raise _Stopped


def _home_cache(home: Path) -> Path:
    """An earlier version's cache in ``~/.cache/audiotrain``: a marked feature cache."""
    earlier = home / ".cache" / "audiotrain"
    (earlier / "features").mkdir(parents=True)
    (earlier / "features" / feature_cache.MARKER).write_text("")
    return earlier


def test_an_earlier_cache_left_behind_by_xdg_cache_home_is_named_once(tmp_path, monkeypatch, capsys):
    """Upgraded with XDG_CACHE_HOME set, every run rendered and computed everything again in a new folder,
    and `cache info` and `cache clear` never saw the old one (hundreds of MB)."""
    earlier = _home_cache(tmp_path / "home")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("AUDIOTRAIN_CACHE_DIR", raising=False)
    logged = []
    monkeypatch.setattr(chords_train, "demo_splits", _stop)
    with pytest.raises(_Stopped):
        chords_train._prepare_songs(TrainingConfig(), None, logged.append)
    assert len(logged) == 1 and logged[0].startswith(
        f"note: an audiotrain cache is at {earlier}, where versions before they followed $XDG_CACHE_HOME kept it"
    )
    assert f"AUDIOTRAIN_CACHE_DIR={earlier}" in logged[0]
    assert f"cache clear --root {earlier}` deletes it" in logged[0]
    assert feature_cache.main(["info"]) == 0
    assert f"an audiotrain cache is at {earlier}, where versions before" in capsys.readouterr().out
    # Once this version's cache holds something, a run says no more (`cache info` still does).
    (tmp_path / "xdg" / "audiotrain" / "features").mkdir(parents=True)
    (tmp_path / "xdg" / "audiotrain" / "features" / feature_cache.MARKER).write_text("")
    assert feature_cache.earlier_cache_note(quiet_unless_empty=True) is None
    assert feature_cache.earlier_cache_note() is not None
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(earlier))  # using it: nothing to say
    assert feature_cache.earlier_cache_note() is None


def test_an_earlier_cache_is_not_advised_into_a_folder_that_cannot_be_written(
    tmp_path, monkeypatch, make_read_only
):
    """With a read-only XDG_CACHE_HOME the note said to move the old cache into it."""
    earlier = _home_cache(tmp_path / "home")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    (tmp_path / "xdg").mkdir()
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.delenv("AUDIOTRAIN_CACHE_DIR", raising=False)
    assert "to move it, move its contents into" in feature_cache.earlier_cache_note()
    make_read_only(tmp_path / "xdg")
    note = feature_cache.earlier_cache_note()
    assert "to move it" not in note, note
    assert f"set AUDIOTRAIN_CACHE_DIR={earlier}" in note


def test_with_audiotrain_cache_dir_set_the_default_cache_is_not_called_an_earlier_ones(
    tmp_path, monkeypatch, capsys
):
    """Every run of a job with a fresh AUDIOTRAIN_CACHE_DIR, and every `cache info`, called this version's own
    default folder "an earlier audiotrain's cache"."""
    default = _home_cache(tmp_path / "home")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("AUDIOTRAIN_CACHE_DIR", str(tmp_path / "chosen"))
    logged = []
    monkeypatch.setattr(chords_train, "demo_splits", _stop)
    with pytest.raises(_Stopped):
        chords_train._prepare_songs(TrainingConfig(), None, logged.append)
    assert logged == []  # the user chose the folder: a run need not say where the default one is
    capsys.readouterr()
    assert feature_cache.main(["info"]) == 0
    out = capsys.readouterr().out
    assert "earlier" not in out
    assert (
        f"note: another audiotrain cache is at {default}, the default folder, which $AUDIOTRAIN_CACHE_DIR replaces "
        f"with {tmp_path / 'chosen'}: `python -m audiotrain cache info --root {default}` lists it, "
        f"`python -m audiotrain cache clear --root {default}` deletes it"
    ) in out


def _chord_set(folder: Path, config: chord_demo.DemoConfig, version: int | None = None) -> Path:
    """A chord demo set's files as its writer leaves them (one silent song), made by generator `version`
    (default: this version's), named as that version named it."""
    params = chord_demo.demo_set_params(config)
    name = f"train-{chord_demo.demo_set_name(config)}"
    if version is not None:  # an older generator's set, under the name that version gave it
        params["generator_version"] = version
        name = f"train-v{version}-train-seed{config.seed}-n{config.n_songs}-{config.song_seconds:g}s-pad"
    folder = folder / name
    folder.mkdir(parents=True)
    (folder / "song_000.wav").write_bytes(b"RIFF")
    (folder / chord_demo.MANIFEST).write_text(json.dumps({"params": params, "songs": ["song_000"]}))
    return folder


def test_cache_marks_what_this_version_never_reads_and_prune_deletes_it(tmp_path, monkeypatch, capsys):
    """Old CLAP demo sets in the top cache folder were never listed nor cleared, and configurations and
    demo sets of older feature code or generators were listed like current ones (and kept by prune)."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # (no earlier cache there)
    cache = tmp_path / "cache"
    root = cache / "features"
    root.mkdir(parents=True)
    (root / feature_cache.MARKER).write_text("")
    current = ChordFeatureConfig()
    for settings in (
        current.to_dict(),
        {k: v for k, v in current.to_dict().items() if k != "features_version"},
    ):
        key = current.key() if "features_version" in settings else "chordcqt-ce9ed4fb3551"
        (root / key).mkdir()
        (root / key / "config.json").write_text(json.dumps(settings))
        (root / key / f"{'a' * 24}-{'b' * 12}.npy").write_bytes(b"x")
    # One with a setting this version lacks (an older version's, since dropped): its key cannot be made now.
    lacking = root / "chordcqt-0123456789ab"
    lacking.mkdir()
    (lacking / "config.json").write_text(json.dumps({**current.to_dict(), "hcqt_harmonics": 3}))
    (lacking / f"{'a' * 24}-{'b' * 12}.npy").write_bytes(b"x")
    demo_config = chord_demo.DemoConfig(n_songs=1, song_seconds=6.0, timbres=("pad",))
    kept = _chord_set(cache / chord_demo.DEMO_FOLDER, demo_config)
    older = _chord_set(
        cache / chord_demo.DEMO_FOLDER, demo_config, version=chord_demo.generator_version("train") - 1
    )
    legacy = cache / "caption_demo-n12-seed42"  # where versions before demo/clap wrote the CLAP demo
    (legacy / "clips").mkdir(parents=True)
    (legacy / "demo.json").write_text(json.dumps({"n_clips": 12, "seed": 42}))
    (legacy / "metadata.jsonl").write_text("{}\n")
    (legacy / "clips" / "0000_sine_tone.wav").write_bytes(b"RIFF")
    assert feature_cache.main(["info", "--root", str(cache)]) == 0
    out = capsys.readouterr().out
    marked = [line.split()[0] for line in out.splitlines() if line.endswith(feature_cache.OUTDATED)]
    assert marked == [lacking.name, "chordcqt-ce9ed4fb3551", older.name, legacy.name], out
    assert f"CLAP demo clip sets of older versions at {cache}" in out
    # The hint names the cache listed: a bare `cache prune` would prune the default one.
    assert f"`cache prune --root {root}` deletes them" in out, out
    assert feature_cache.main(["prune", "--root", str(cache)]) == 0
    assert (
        "deleted 2 configurations (2 entries) and 2 demo sets (not read by this version)"
        in capsys.readouterr().out
    )
    assert not (root / "chordcqt-ce9ed4fb3551").exists() and not lacking.exists()
    assert not older.exists() and not legacy.exists()
    assert (root / current.key()).is_dir() and kept.is_dir()
    # `cache clear --key` and `cache clear` reach such a set too.
    (legacy / "clips").mkdir(parents=True)
    (legacy / "demo.json").write_text("{}")
    (legacy / "clips" / "0001_chirp.wav").write_bytes(b"RIFF")
    assert feature_cache.main(["clear", "--root", str(cache), "--key", legacy.name]) == 0
    assert not legacy.exists()


def test_a_demo_set_being_rendered_is_neither_marked_nor_pruned(tmp_path, monkeypatch, capsys):
    """A chord demo set whose manifest is not written yet (a run renders it, or was stopped doing so) is no
    older generator's: `cache prune` leaves it, as `cache info` does not mark it."""
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # (no earlier cache there)
    root = tmp_path / "cache" / "features"
    feature_cache.hold_cache(root, create=True)()  # (a marked cache, which no process holds)
    rendering = _chord_set(tmp_path / "cache" / chord_demo.DEMO_FOLDER, chord_demo.DemoConfig(n_songs=1))
    (rendering / chord_demo.MANIFEST).unlink()
    assert main(["info", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert f"{rendering.name}  1 song" in out and feature_cache.OUTDATED not in out
    assert main(["prune", "--root", str(root)]) == 0
    assert (rendering / "song_000.wav").is_file()


def test_a_clap_set_this_version_names_otherwise_is_outdated(tmp_path):
    config = caption_demo.CaptionDemoConfig(n_clips=8, seed=1)
    folder = tmp_path / caption_demo.demo_set_name(config)
    folder.mkdir()
    (folder / "demo.json").write_text(
        json.dumps({"version": caption_demo.DEMO_VERSION, **dataclasses.asdict(config)})
    )
    assert feature_cache._current_clap_set(folder) is True
    renamed = folder.rename(tmp_path / "caption_demo-v0-n8-seed1-00000000")
    assert feature_cache._current_clap_set(renamed) is False


def test_temporary_files_of_killed_writes_are_counted_and_pruned_never_a_live_writers(
    tmp_path, songs, capsys
):
    """A write killed outright (SIGKILL) left its ``.tmp-*.npy`` for good: `cache info` did not count it,
    `cache prune` kept it, and only `cache clear` (everything) removed it."""
    root = tmp_path / "cache"
    cache = FeatureCache(root, CONFIG)
    cache.get_or_compute(songs[0], CountingExtractor())
    killed = cache.folder / ".tmp-0123456789abcdef0123456789abcdef.npy"
    killed.write_bytes(b"\x93NUMPY" + bytes(3000))  # half an entry
    assert main(["info", "--root", str(root)]) == 0
    assert "and 1 temporary file (3.0 kB)" in capsys.readouterr().out  # (the units of every size said)
    live = cache.folder / ".tmp-fedcba9876543210fedcba9876543210.npy"
    user = _another_process(  # a run writing an entry now, as prune --force runs
        "import sys; from audiotrain.features.cache import FeatureCache\n"
        f"cache = FeatureCache({str(root)!r}, 'k'); print('using', flush=True); sys.stdin.read()\n"
    )
    try:
        assert deadlines.read_line(user, "'using' from the child", 120) == "using\n"
        live.write_bytes(b"being written")
        old = time.time() - 2 * feature_cache.STALE_TMP_SECONDS
        os.utime(killed, (old, old))  # (a killed write's file, as an hour later)
        assert main(["prune", "--root", str(root), "--force"]) == 0
        assert "deleted 1 temporary file" in capsys.readouterr().out
        assert not killed.exists() and live.exists()  # the running writer's is left
    finally:
        user.communicate("")
    assert main(["prune", "--root", str(root)]) == 0  # no process uses the cache: no write is live
    assert not live.exists() and cache.report()["entries"] == 1
    # A run's cache removes a killed write's file once it is that old, and leaves another run's live one.
    killed.write_bytes(b"")
    os.utime(killed, (old, old))
    live.write_bytes(b"being written")
    FeatureCache(root, CONFIG)
    assert not killed.exists() and live.exists()


def test_configs_that_compare_equal_share_one_cache_key():
    """`MelConfig(sr=22050.0) == MelConfig()`, but json wrote 22050.0 and 22050 apart: two cache folders
    for one configuration (a config file's ``fmin: 0`` against Python's ``fmin=0.0``)."""
    pairs = [
        (MelConfig(), MelConfig(sr=22050.0)),
        (MelConfig(), MelConfig(fmin=0, top_db=80)),
        (CQTConfig(), CQTConfig(hop_length=512.0, filter_scale=1)),
        (CQTConfig(harmonics=(0.5, 1.0, 2.0)), CQTConfig(harmonics=(0.5, 1, 2))),
        (ChordFeatureConfig(fmin=33.0, log_gain=100.0), ChordFeatureConfig(fmin=33, log_gain=100)),
    ]
    for a, b in pairs:
        assert a == b and a.key() == b.key(), (a, b)
    assert MelConfig(sr=16000).key() != MelConfig().key()
    # The defaults' keys are those written before numbers were normalised: users' caches stay valid.
    assert MelConfig().key() == "f0699c675fd9a457"
    assert CQTConfig().key() == "9cfd1b7d6a79185c"
    assert ChordFeatureConfig().key() == "chordcqt-d2ab05874144"
    assert ChordFeatureConfig(tuning_correction=False).key() == "chordcqt-4f9a490d8a3b"


@pytest.mark.parametrize("unreadable", ["its configuration", "the cache"])
def test_a_folder_another_user_cannot_read_is_computed_in_memory(
    tmp_path, songs, make_unreadable, unreadable
):
    """In a cache shared between users, a configuration folder (or the whole cache) another user made under
    umask 077 cannot be read: a run with those settings ended in a raw PermissionError at its first lookup. It
    is now as a cache that cannot be written: the features are computed in memory, with the warning that names
    the folder."""
    root = tmp_path / "cache"
    theirs = FeatureCache(root, CONFIG)
    theirs.get_or_compute(songs[0], CountingExtractor())
    make_unreadable(theirs.folder if unreadable == "its configuration" else root)
    extract = CountingExtractor()
    cache = FeatureCache(root, CONFIG)
    with pytest.warns(UserWarning, match="Permission denied") as caught:
        assert not cache.can_keep_new_entries()
        served = [cache.get_or_compute(path, extract) for path in songs]
    assert len(caught) == 1 and str(cache.folder) in str(caught[0].message)
    assert extract.computed == len(songs) and cache.report()["unwritable"] == "Permission denied"
    for value, path in zip(served, songs):
        np.testing.assert_array_equal(value, CountingExtractor()(path))


@pytest.mark.parametrize("unreadable", ["a configuration", "the cache"])
@pytest.mark.parametrize("command", ["info", "prune", "clear"])
def test_cache_commands_name_a_folder_they_cannot_read(
    tmp_path, songs, make_unreadable, capsys, command, unreadable
):
    """`cache info|prune|clear` on a shared cache holding another user's folder made under umask 077 (or on
    another user's whole cache) ended in a raw PermissionError traceback: now one line naming the folder and
    the permission, exit 1, and nothing deleted."""
    root = tmp_path / "cache"
    ours = FeatureCache(root, CONFIG)
    ours.get_or_compute(songs[0], CountingExtractor())
    theirs = FeatureCache(root, "other")
    theirs.get_or_compute(songs[1], lambda: np.zeros(10))
    folder = theirs.folder if unreadable == "a configuration" else root
    make_unreadable(folder)
    assert main([command, "--root", str(root)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1, err
    assert f"cannot read {folder}" in err and "(Permission denied)" in err
    if unreadable == "a configuration":
        assert ours.path_for(songs[0]).exists()


@pytest.mark.parametrize(
    "returned", [None, {"cqt": np.ones(3)}, [np.ones(3), np.ones(2)]], ids=["None", "dict", "ragged"]
)
def test_a_compute_fn_that_returns_no_array_is_named_and_nothing_is_stored(tmp_path, songs, returned):
    """A compute_fn that forgot its `return` (or returned a dict, or ragged lists) stopped with numpy's
    "Object arrays cannot be saved when allow_pickle=False", naming neither it nor the file."""
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    with pytest.raises(TypeError, match=rf"compute_fn returned {type(returned).__name__} for .*song0\.wav"):
        cache.get_or_compute(songs[0], lambda path: returned)
    assert cache.report()["entries"] == 0


def test_a_compute_fn_that_returns_an_object_array_is_told_its_dtype(tmp_path, songs):
    """An object array (per-song values of several kinds in one array) was refused as "compute_fn returned
    ndarray ...; it must return the features as an array": the error contradicted itself."""
    cache = FeatureCache(tmp_path / "cache", CONFIG)
    returned = np.array([np.ones(3), "beats"], dtype=object)
    with pytest.raises(
        TypeError, match=r"compute_fn returned an ndarray of dtype object \(not numbers\) for "
    ):
        cache.get_or_compute(songs[0], lambda path: returned)
    assert cache.report()["entries"] == 0


def test_a_config_key_of_none_is_refused_rather_than_shared_by_every_configuration(tmp_path):
    """FeatureCache(root, None) (a config_key left unset) stored its entries in a folder named "None", which
    every other configuration left unset shares: a second feature setting was served the first one's."""
    with pytest.raises(ValueError, match=r"config_key is None: name the feature configuration"):
        FeatureCache(tmp_path / "cache", None)


def test_info_and_report_count_around_an_entry_another_run_deletes(tmp_path, songs, capsys, monkeypatch):
    """`cache info` while a run rewrote the entries of edited songs ended in a raw FileNotFoundError naming
    an entry: the run deleted the song's earlier entry between the listing and its `stat`. So did a run's
    own `feature cache:` line (`report`), with another training on the same cache. The entry gone is not
    counted."""
    root = tmp_path / "cache"
    cache = FeatureCache(root, "k")
    for path in songs[:3]:
        cache.get_or_compute(path, lambda: np.zeros((2, 2), np.float32))
    listed = feature_cache._entries

    def listed_with_one_deleted_since(folder):
        # (the entry the other run deleted, having written its song's new state, as the listing saw it)
        return [*listed(folder), folder / f"{'0' * 24}-{'0' * 12}.npy"]

    monkeypatch.setattr(feature_cache, "_entries", listed_with_one_deleted_since)
    assert main(["info", "--root", str(root)]) == 0
    assert "total: 1 configuration, 3 entries" in capsys.readouterr().out
    assert cache.report()["entries"] == 3


def test_a_song_computed_again_adds_no_line_to_the_sources_record(tmp_path, songs, capsys):
    """sources.jsonl got the same line again for each new state of a song: a `touch` or `chmod -R` of the
    data folder (every song computed again) added a line per song, without end and outside `cache info`'s
    sizes. A record replaced (`prune` rewrites it; a cache deleted under the run) still gets its lines."""
    root = tmp_path / "cache"
    cache = FeatureCache(root, "k")
    sources = cache.folder / feature_cache.SOURCES
    for second in range(3):
        os.utime(songs[0], (1_000_000 + second, 1_000_000 + second))  # (a new state: computed again)
        cache.get_or_compute(songs[0], lambda: np.zeros(3))
        cache.get_or_compute(songs[1], lambda: np.zeros(3))
    assert len(sources.read_text().splitlines()) == 2
    assert FeatureCache(root, "k").get_or_compute(songs[2], lambda: np.zeros(3)) is not None
    assert len(sources.read_text().splitlines()) == 3  # (another object's song: added once)
    import shutil

    shutil.rmtree(root)  # deleted under the run: its next entries are recorded in the new record
    cache.get_or_compute(songs[0], lambda: np.zeros(3))
    cache.get_or_compute(songs[2], lambda: np.zeros(3))
    assert len(sources.read_text().splitlines()) == 2
    songs[0].unlink()
    assert main(["prune", "--root", str(root)]) == 0
    assert "pruned 1 entry" in capsys.readouterr().out
    cache.get_or_compute(songs[1], lambda: np.zeros(3))  # (after the record prune rewrote)
    assert [json.loads(line)[1] for line in sources.read_text().splitlines()] == [
        str(songs[2].resolve()),
        str(songs[1].resolve()),
    ]


def test_cli_info_lines_up_a_long_key_and_counts_one_entry_in_the_singular(tmp_path, songs, capsys):
    """The README's own key, "logmel-sr22050-hop441-v1", is longer than the 20 characters the name column
    had: its count stood four columns right of the others', and a configuration of one file read
    "1 entries"."""
    root = tmp_path / "cache"
    FeatureCache(root, "logmel-sr22050-hop441-v1").get_or_compute(songs[0], lambda: np.zeros(10))
    short = FeatureCache(root, "k2")
    for path in songs[:2]:
        short.get_or_compute(path, lambda: np.zeros(10))
    assert main(["info", "--root", str(root)]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " entr" in line and "total" not in line]
    assert len(lines) == 2, lines
    assert [line.split()[1:3] for line in lines] == [["2", "entries"], ["1", "entry"]], lines
    assert len({line.index(" entr") for line in lines}) == 1, lines


#: What a quick command must not import: scipy.signal alone took ~0.5 s of CPU (scipy with it ~1.5 s).
_HEAVY_FOR_CACHE_INFO = ("scipy", "librosa", "matplotlib", "torch", "transformers")


def test_cache_info_over_demo_sets_of_every_style_does_not_import_scipy(tmp_path):
    """`audiotrain cache info` took 1.8 s of CPU once the cache held a demo set of the patches, studio or band
    style: reading a set's manifest asked its style's timbres, whose module imported scipy.signal at its top
    (for rendering only). A later top-level import must not bring it back."""
    for style in chord_demo.STYLES:
        config = chord_demo.DemoConfig(style=style, n_songs=1, song_seconds=4.0)
        folder = tmp_path / "cache" / chord_demo.DEMO_FOLDER / f"train-{chord_demo.demo_set_name(config)}"
        folder.mkdir(parents=True)
        params = {**dataclasses.asdict(config), "generator_version": chord_demo.generator_version(style)}
        (folder / chord_demo.MANIFEST).write_text(json.dumps({"params": params, "songs": ["song_000"]}))
        (folder / "song_000.lab").write_text("0.0\t4.0\tN\n")
    done, status, loaded = run_as_main(
        "audiotrain",
        ["cache", "info"],
        _HEAVY_FOR_CACHE_INFO,
        extra_env={"AUDIOTRAIN_CACHE_DIR": str(tmp_path / "cache")},
    )
    assert done.returncode == 0 and status == 0, done.stderr
    assert f"total: {len(chord_demo.STYLES)} sets" in done.stdout, done.stdout
    assert "(not read by this version)" not in done.stdout, done.stdout
    assert loaded == [], done.stderr
