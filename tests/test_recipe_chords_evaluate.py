"""`chords evaluate` from the user's side: songs whose audio does not decode, and references that run
past the end of their audio. A tiny untrained model is written as a checkpoint: the scores need not be
good, only computed the right way."""

import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

from audiotrain.chords.decode import DecodeConfig
from audiotrain.chords.lab import (
    AnnotationError,
    ChordSegment,
    read_lab,
    with_lab_times,
    write_jams,
    write_lab,
)
from audiotrain.chords.vocabulary import CHORD_TYPES, encode_label
from audiotrain.datasets.chord_demo import generate_demo_songs
from audiotrain.datasets.chord_songs import SongEntry
from audiotrain.metrics.chord_scores import MAX_REFERENCE_OVERHANG_S, score_song, score_songs
from audiotrain.models.chord_model import ChordModelConfig, ChordRecognitionModel, joint_chord_index
from audiotrain.recipes import chords
from audiotrain.recipes.chords import cli_evaluate as cli_evaluate_module
from audiotrain.recipes.chords import data as chords_data
from audiotrain.recipes.chords import evaluate as evaluate_module
from audiotrain.recipes.chords.config import SILENT_SONG, ChordFeatureConfig
from audiotrain.recipes.chords.evaluate import (
    Comparison,
    EvaluationResult,
    compare_results,
    evaluate_songs,
    format_table,
)
from audiotrain.recipes.chords.predict import ChordPredictor, checkpoint_entries
from audiotrain.recipes.chords.task import CHECKPOINT_KEY
from audiotrain.recipes.split_record import names_digest
from audiotrain.train import checkpoint as ckpt
from audiotrain.train.checkpoint import flat

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
from file_size_limit import files_cannot_grow_past, needs_file_size_limit

from tests import deadlines
from tests.ticking_clock import TickingClock

SONG_SECONDS = 4


def _tiny_checkpoint(folder, seed, always=None, songs=None, epochs=0, steps=0):
    """A checkpoint folder of a tiny, untrained chord model, as `ChordPredictor.from_checkpoint` reads it;
    with `always` (a chord type and root), its joint chord head hears that chord everywhere; with `songs`,
    the song record a run stores (`song_record`); saved, as its record says, after `epochs` epochs of
    `steps` optimizer steps in all."""
    mx.random.seed(seed)
    config = ChordModelConfig(n_bins=216, d_model=16, n_layers=1, n_heads=2, ff_dim=32, dropout=0.0)
    model = ChordRecognitionModel(config)
    if always is not None:
        index = joint_chord_index(mx.array(CHORD_TYPES.index(always[0])), mx.array(always[1])).item()
        model.chord_head.bias = model.chord_head.bias.at[index].add(30.0)
    mx.eval(model.parameters())
    entries = checkpoint_entries(ChordFeatureConfig(), DecodeConfig(), window_frames=32)
    state = {
        "progress": {
            "epoch": epochs,
            "batch_in_epoch": 0,
            "global_step": steps,
            "total_batches": steps,
            "micro_batches": 0,
        },
        "random": {"mlx": [0, 0]},
        "module_state": {CHECKPOINT_KEY: {"model_config": config.to_dict(), **entries}},
    }
    if songs is not None:
        state["module_state"][CHECKPOINT_KEY]["songs"] = songs
    arrays = {f"model.{k}": v for k, v in flat(model.parameters()).items()}
    return ckpt.write_checkpoint(folder, arrays, {}, {}, state)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("chord_ckpt") / "ckpt", seed=0)


@pytest.fixture(scope="module")
def other_checkpoint(tmp_path_factory, songs):
    seconds = {}
    for song in songs:
        for segment in read_lab(song.annotation_path):
            index = encode_label(segment.label)
            if CHORD_TYPES[index.chord_type] in ("maj", "min"):
                key = (CHORD_TYPES[index.chord_type], index.root)
                seconds[key] = seconds.get(key, 0.0) + segment.end - segment.start
    longest = max(seconds, key=seconds.get)
    return _tiny_checkpoint(tmp_path_factory.mktemp("chord_ckpt_other") / "ckpt", seed=1, always=longest)


@pytest.fixture(scope="module")
def songs(tmp_path_factory):
    return generate_demo_songs(tmp_path_factory.mktemp("songs"), n_songs=2, seed=8, song_seconds=SONG_SECONDS)


def _copy_with_nan(song: SongEntry, folder, name: str) -> None:
    audio, sr = sf.read(song.audio_path, dtype="float32")
    audio[1000:1100] = np.nan  # the header is fine: only decoding finds it
    sf.write(folder / f"{name}.wav", audio, sr, subtype="FLOAT")
    (folder / f"{name}.lab").write_text(song.annotation_path.read_text())


def _songs_and_one_with_nan(songs, tmp_path):
    """TMP/data holding `songs` and "a_broken", a copy of the first with NaN samples (sorted first: it must
    not stop the evaluation before the others are written)."""
    data = tmp_path / "data"
    data.mkdir()
    _copy_with_nan(songs[0], data, "a_broken")
    for song in songs:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    return data


def test_evaluate_skips_songs_whose_audio_does_not_decode_and_lists_them(checkpoint, songs, tmp_path, capsys):
    """Every song left out is listed with its reason and counted, whether the folder scan dropped it (it
    used to go to stderr only, with songs_skipped 0) or its audio failed to decode; the exit status is
    then 1, as predict's on a folder with files skipped."""
    data = _songs_and_one_with_nan(songs, tmp_path)
    audio = songs[0].audio_path.read_bytes()
    (data / "cut.wav").write_bytes(audio[: len(audio) // 3])  # truncated: the header promises more
    shutil.copy(songs[0].annotation_path, data / "cut.lab")
    shutil.copy(songs[0].audio_path, data / "unlabelled.wav")
    shutil.copy(songs[0].audio_path, data / "gappy.wav")
    (data / "gappy.lab").write_text("0\t1\tC:maj\n2\t3\tG:maj\n")
    out = tmp_path / "eval"
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    where = f"listed on standard output, below the scores, and in {out / 'scores.json'}"
    assert f"4 songs skipped ({where}): exit status 1" in captured.err
    tail = captured.out[captured.out.index("| metric |") :]  # listed at the end, after the scores
    assert "4 songs skipped (the scores above cover only the 2 of 6 songs scored)" in tail
    assert "a_broken" in tail and "NaN or Inf" in tail
    assert sorted(p.stem for p in out.glob("*.lab")) == ["song_000", "song_001"]
    scores = json.loads((out / "scores.json").read_text())
    assert sorted(scores["per_song"]) == ["song_000", "song_001"]
    assert scores["songs_scored"] == 2 and scores["songs_skipped"] == 4
    reasons = {entry["song"]: entry["reason"] for entry in scores["skipped"]}
    assert sorted(reasons) == ["a_broken", "cut", "gappy", "unlabelled"]
    assert "a_broken.wav" in reasons["a_broken"] and "truncated" in reasons["cut"]
    assert "gap" in reasons["gappy"] and "no annotation" in reasons["unlabelled"]
    report = (out / "scores.md").read_text()
    assert all(f"- {name}: {why}" in report for name, why in reasons.items())
    # The two scored songs give each pooled score an interval over songs, in the table and the JSON.
    assert "| metric | pooled | 95% interval over songs | median |" in (out / "scores.md").read_text()
    low, high = scores["pooled_interval"]["root"]
    assert low <= scores["pooled"]["root"] <= high


def test_the_count_of_songs_skipped_says_where_they_are_listed_when_stdout_goes_to_a_file(
    checkpoint, songs, tmp_path, capsys
):
    """A song skipped while transcribing (NaN samples) is listed on stdout, below the table: with
    `> results.txt` the stderr line used to say "listed above and in scores.json", with nothing above it on
    the terminal, and no scores.json written without -o."""
    data = _songs_and_one_with_nan(songs, tmp_path)
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "a_broken" not in captured.err  # found while transcribing: listed on stdout alone
    tail = captured.out[captured.out.index("| metric |") :]
    assert "a_broken" in tail and "NaN or Inf" in tail
    assert "1 song skipped (listed on standard output, below the scores): exit status 1" in captured.err
    assert "scores.json" not in captured.err
    out = tmp_path / "eval"
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out)])
    err = capsys.readouterr().err
    where = f"listed on standard output, below the scores, and in {out / 'scores.json'}"
    assert f"1 song skipped ({where}): exit status 1" in err


def test_evaluate_lists_the_zero_length_segments_it_dropped_from_a_reference(
    checkpoint, songs, tmp_path, capsys
):
    """A point label at the end of a reference (Audacity's, `9.0 9.0 G:maj`) labels no time: evaluate
    dropped it without a word, as no other file was left out. The scan report now names it."""
    data = tmp_path / "data"
    data.mkdir()
    for song in songs:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    lab = data / songs[0].annotation_path.name
    end = read_lab(lab)[-1].end
    lab.write_text(lab.read_text() + f"{end}\t{end}\tG:maj\n")
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "1 annotation with zero-length segments, dropped" in captured.err
    assert f"{lab}: line {len(read_lab(songs[0].annotation_path)) + 1} (G:maj)" in captured.err


def test_evaluate_says_how_far_its_transcription_is(checkpoint, songs, tmp_path, monkeypatch, capsys):
    """evaluate on a folder of a thousand songs transcribed for minutes without a word before its scores: a
    line every PROGRESS_LINE_SECONDS now says how many songs are done (the skipped ones too)."""
    data = tmp_path / "data"
    data.mkdir()
    _copy_with_nan(songs[0], data, "a_broken")  # (skipped, and counted as done)
    for song in songs:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per song
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)]) == 1
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.startswith("transcribed ")]
    assert [line.split(" in ")[0] for line in lines] == [
        "transcribed 1 of 3 songs",
        "transcribed 2 of 3 songs",
    ]
    assert "transcribed " not in captured.out  # (stdout holds the scores alone)


def test_evaluates_time_left_counts_its_audio_not_its_songs(checkpoint, songs, tmp_path, monkeypatch, capsys):
    """A folder of a long recording and short songs said, once the long one was done, as many minutes left
    for the short ones as the long one took: the time left counted songs (predict's, since 11700082, counts
    audio)."""
    import soundfile as sf

    data = tmp_path / "data"
    data.mkdir()
    rate = sf.info(songs[0].audio_path).samplerate
    long_seconds = 40 * sf.info(songs[0].audio_path).duration
    sf.write(data / "a_long.wav", np.zeros(int(long_seconds * rate), np.float32) + 0.01, rate)
    (data / "a_long.lab").write_text(f"0.0 {long_seconds:.3f} N\n")
    for song in songs[:2]:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per song
    monkeypatch.setattr(chords_data, "time", TickingClock())  # 100 s a reading
    chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)])
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("transcribed ")]
    # 3.3 min for 40 songs' length of audio: the two songs after it take about 10 s, not 6.7 min
    assert lines[0] == "transcribed 1 of 3 songs in 3.3 min, about 10 s left", lines


def test_a_song_whose_annotation_is_named_nearly_like_its_audio_is_one_song_skipped(
    checkpoint, songs, tmp_path, capsys
):
    """`Song_001.wav` beside `song_001.lab` is one song, named with a "did you mean": it was counted twice,
    as the audio without an annotation and as "an annotation without an audio file" (2 of 4 songs scored,
    for a folder of 3 recordings). An annotation no audio file names is still a song skipped."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(songs[0].audio_path, data)
    shutil.copy(songs[0].annotation_path, data)
    shutil.copy(songs[1].audio_path, data / "Song_001.wav")
    shutil.copy(songs[1].annotation_path, data / "song_001.lab")
    shutil.copy(songs[1].annotation_path, data / "orphan.lab")
    capsys.readouterr()
    out = tmp_path / "eval"
    assert (
        chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out)]) == 1
    )
    assert "2 songs skipped (the scores above cover only the 1 of 3 songs scored)" in capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert scores["songs_skipped"] == 2
    reasons = {entry["song"]: entry["reason"] for entry in scores["skipped"]}
    assert sorted(reasons) == ["Song_001", "orphan"]
    assert "did you mean song_001.lab?" in reasons["Song_001"]
    assert reasons["orphan"].endswith("orphan.lab: an annotation without an audio file")


def test_evaluate_with_no_decodable_song_is_a_clear_error(checkpoint, songs, tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    _copy_with_nan(songs[0], data, "x")
    _copy_with_nan(songs[1], data, "y")
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 2
    assert "no song left to score" in err and "x.wav" in err and "y.wav" in err and "Traceback" not in err


def test_evaluate_on_audio_without_any_annotation_names_the_pairing_flags(
    checkpoint, songs, tmp_path, capsys
):
    """Audio whose annotations live in a tree of their own said only "no annotated songs in DIR"."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(songs[0].audio_path, data)
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data)])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"error: no annotated songs in {data}; no annotation lies beside the audio" in err, err
    assert "pass --annotations DIR" in err and "pass --pairs FILE.csv" in err, err


def test_a_reference_slightly_past_the_end_of_the_audio_is_trimmed(checkpoint, songs, tmp_path):
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    song = songs[0]
    exact = tmp_path / "exact.lab"
    duration = sf.info(song.audio_path).duration
    reference = [s for s in read_lab(song.annotation_path) if s.start < duration]
    reference[-1] = type(reference[-1])(reference[-1].start, duration, "C:maj")
    write_lab(exact, reference)
    over = tmp_path / "over.lab"  # the last chord runs on 1.5 s past the audio's end
    write_lab(over, [*reference[:-1], type(reference[-1])(reference[-1].start, duration + 1.5, "C:maj")])
    far = tmp_path / "far.lab"  # too far: another version of the recording, scored as it is
    overhang = MAX_REFERENCE_OVERHANG_S + 1.0
    write_lab(far, [*reference[:-1], type(reference[-1])(reference[-1].start, duration + overhang, "C:maj")])

    def evaluate(annotation):
        return evaluate_songs(predictor, [SongEntry("song", song.audio_path, annotation)]).scores

    expected = evaluate(exact)
    trimmed = evaluate(over)
    # approx: the exact reference's end goes through a .lab file's decimal times, the trimmed one does not
    assert trimmed.per_song["song"] == pytest.approx(expected.per_song["song"], abs=1e-6)
    assert trimmed.pooled == pytest.approx(expected.pooled, abs=1e-6) and trimmed.overhanging == {}
    with pytest.warns(UserWarning, match=r"far.lab runs 3.00 s past the end"):
        kept = evaluate(far)
    assert kept.overhanging == {"song": pytest.approx(overhang)}
    estimate = predictor.transcribe(song.audio_path)
    # untrimmed; the transcription with the times its .lab holds
    assert kept.per_song["song"] == score_song(read_lab(far), with_lab_times(estimate))
    assert "past the end" in kept.table()


def test_evaluate_says_which_references_it_scored_only_up_to_the_end_of_their_audio(
    checkpoint, songs, tmp_path, capsys
):
    """A reference 0.8 s longer than its audio is scored up to the audio's end: the output, scores.md and
    scores.json say so per song, so that scores that differ from plain mir_eval on the files are explained
    (and the figures match mir_eval's with the reference trimmed there)."""
    data = _data_folder(songs, tmp_path)
    song = songs[0]
    duration = sf.info(song.audio_path).duration
    reference = [s for s in read_lab(song.annotation_path) if s.start < duration]
    reference[-1] = replace(reference[-1], end=duration + 0.8)
    write_lab(data / song.annotation_path.name, reference, replace=True)  # the copied one
    out = tmp_path / "eval"
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out), "--tta", "0"]
    assert chords.main(argv) == 0
    printed = capsys.readouterr().out
    line = f"{song.name}: {song.name}.lab runs 0.800 s past {song.audio_path.name}: scored up to {duration:.3f} s"
    assert "1 reference runs past the end of the audio" in printed and line in printed, printed
    assert line in (out / "scores.md").read_text()
    scores = json.loads((out / "scores.json").read_text())
    listed = scores["trimmed_references"]
    assert list(listed) == [song.name] and listed[song.name]["overhang"] == pytest.approx(0.8, abs=1e-6)
    assert listed[song.name]["audio_end"] == pytest.approx(duration)
    # The figures are mir_eval's on the reference trimmed where the listing says.
    trimmed = [replace(s, end=min(s.end, duration)) for s in reference]
    estimate = read_lab(out / f"{song.name}.lab")
    expected = score_song(trimmed, estimate)
    assert scores["per_song"][song.name] == pytest.approx(expected, abs=1e-9)
    # Nothing trimmed (the demo's .lab files end microseconds past their audio: rounding): nothing said.
    (tmp_path / "plain").mkdir()
    capsys.readouterr()
    assert chords.main([*argv[:4], str(_data_folder(songs, tmp_path / "plain")), "--tta", "0"]) == 0
    assert "past the end" not in capsys.readouterr().out


def test_evaluate_allow_gaps_lists_the_references_whose_gaps_it_read_as_n(
    checkpoint, songs, tmp_path, capsys
):
    """--allow_gaps reads a gap as N, where mir_eval on the file reads it as the chord before going on: the
    output, scores.md and scores.json name those songs, their gaps and seconds, as the trimmed ones."""
    data = _data_folder(songs, tmp_path)
    song = songs[0]
    reference = read_lab(song.annotation_path)
    assert len(reference) >= 3
    cut = [replace(reference[0], end=reference[0].end - 0.5), *reference[1:]]
    cut[1] = replace(cut[1], end=cut[1].end - 0.25)
    write_lab(data / song.annotation_path.name, cut, replace=True)  # gaps of 0.5 s and 0.25 s
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    assert chords.main(argv) == 1  # without --allow_gaps: refused, naming the line
    capsys.readouterr()
    assert chords.main([*argv, "--allow_gaps", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    line = f"{song.name}: {song.name}.lab: 2 gaps (0.750 s) read as N"
    assert "1 reference with gaps between segments, read as N" in printed and line in printed, printed
    assert line in (out / "scores.md").read_text()
    listed = json.loads((out / "scores.json").read_text())["gap_filled_references"]
    assert listed == {
        song.name: {"annotation": f"{song.name}.lab", "gaps": 2, "seconds": pytest.approx(0.75)}
    }


def test_a_reference_with_rounding_gaps_is_scored_as_mir_eval_scores_the_file(checkpoint, songs, tmp_path):
    """Times rounded independently leave sub-millisecond gaps between segments. mir_eval scores the file as
    written (a segment lasts until the next one starts); evaluate moved each start back onto the previous
    end instead, and differed from mir_eval by up to 6e-4 per song."""
    import mir_eval

    song = songs[0]
    duration = sf.info(song.audio_path).duration
    bounds = [*np.arange(0.0, duration - 0.2, 0.4), duration]
    written = [  # C and G in turn, each G starting 0.9 ms after the C before it ends (the estimate is C)
        ChordSegment(start + (0.0009 if i % 2 else 0.0), end, ("C:maj", "G:maj")[i % 2])
        for i, (start, end) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
    reference = tmp_path / "rounded.lab"
    write_lab(reference, written)
    out = tmp_path / "eval"
    evaluation = evaluate_songs(
        ChordPredictor.from_checkpoint(checkpoint), [SongEntry("song", song.audio_path, reference)], out
    )
    ours = evaluation.scores.per_song["song"]
    theirs = mir_eval.chord.evaluate(
        *mir_eval.io.load_labeled_intervals(str(reference)),
        *mir_eval.io.load_labeled_intervals(str(out / "song.lab")),
    )
    assert ours == pytest.approx({m: theirs[m] for m in ours}, abs=1e-7, nan_ok=True)


def test_a_checkpoint_from_before_tuning_correction_loads_without_it(checkpoint, tmp_path):
    assert ChordPredictor.from_checkpoint(checkpoint).features.tuning_correction
    old = tmp_path / "old"
    shutil.copytree(checkpoint, old)
    state = json.loads((old / ckpt.STATE_FILE).read_text())
    del state["module_state"][CHECKPOINT_KEY]["features"]["tuning_correction"]
    (old / ckpt.STATE_FILE).write_text(json.dumps(state))
    # Its model was trained on features computed without the correction: it keeps reading those.
    assert not ChordPredictor.from_checkpoint(old).features.tuning_correction


def test_the_evaluation_lists_where_the_score_is_lost(checkpoint, songs, tmp_path):
    """scores.json and scores.md name the reference chords whose misreading costs majmin the most time
    (an untrained model misreads plenty), with the same seconds as the written .lab files give."""
    out = tmp_path / "eval"
    result = evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), songs, out)
    scores = json.loads((out / "scores.json").read_text())
    listed = scores["costliest_errors"]["majmin"]
    assert 0 < len(listed) <= 10 and set(scores["costliest_errors"]) == {"majmin", "majmin_inv_bass"}
    assert [e["seconds"] for e in listed] == sorted((e["seconds"] for e in listed), reverse=True)
    first = listed[0]
    reference = read_lab(next(s.annotation_path for s in songs if s.name == first["song"]))
    estimate = read_lab(out / f"{first['song']}.lab")
    chord = next(s for s in reference if s.start == pytest.approx(first["start"]))
    assert chord.label == first["reference"]
    misread = sum(
        max(0.0, min(chord.end, e.end) - max(chord.start, e.start))
        for e in estimate
        if e.label == first["estimate"]
    )
    assert misread == pytest.approx(first["seconds"], abs=0.01)  # .lab times are rounded
    report = (out / "scores.md").read_text()
    assert "Where majmin is lost" in report and f"{first['reference']} at {first['start']:.2f} s" in report
    assert sum(e.share for e in result.costliest_errors(top=0)["majmin"]) == pytest.approx(
        1 - result.scores.pooled["majmin"]
    )


def _data_folder(songs, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    for song in songs:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    return data


def test_an_output_folder_inside_the_data_folder_is_left_out_of_its_scan(checkpoint, songs, tmp_path, capsys):
    """`evaluate --data songs -o songs/scores --overwrite` again: the scan took the earlier evaluation's .lab
    predictions for the user's "annotations without an audio file", each a song skipped. The command's own
    output folder is left out of the scan, and named in its report."""
    data = _data_folder(songs, tmp_path)
    out = data / "scores"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out), "--overwrite"]
    assert chords.main(argv) == 0
    assert sorted(out.glob("*.lab"))
    capsys.readouterr()
    assert chords.main(argv) == 0
    captured = capsys.readouterr()
    assert "without an audio file" not in captured.err + captured.out, captured.err
    assert f"{out}: this command's own output folder, left out of the scan" in captured.err
    assert json.loads((out / "scores.json").read_text())["songs_skipped"] == 0


def test_evaluate_against_another_checkpoint_prints_and_writes_paired_differences(
    checkpoint, other_checkpoint, songs, tmp_path, capsys
):
    data = _data_folder(songs, tmp_path)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out), "--tta", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "--against", str(other_checkpoint)]) == 0
    captured = capsys.readouterr()
    printed = captured.out
    assert f"against {other_checkpoint}, on the 2 songs both scored" in printed
    assert "| metric | this | against | difference | 95% interval, paired over songs |" in printed
    assert "every difference is 0" not in captured.err  # (another checkpoint: no note)
    alone = json.loads((out / "scores.json").read_text())
    compared = json.loads((out / "comparison.json").read_text())
    assert compared["songs"] == ["song_000", "song_001"] and compared["left_out"] == []
    table = (out / "comparison.md").read_text().strip().split("\n\n", 2)[2]  # (after this: and against:)
    assert table in printed
    # Each file says what it scored: the checkpoints, the data, the build, the decoding, the date.
    for name, scored_checkpoint in (("this", checkpoint), ("against", other_checkpoint)):
        assert compared["scored"][name]["checkpoint"] == os.path.abspath(scored_checkpoint)
        assert f"{name}: Scored: {os.path.abspath(scored_checkpoint)}" in (out / "comparison.md").read_text()
    scored = alone["scored"]
    assert scored["checkpoint"] == os.path.abspath(checkpoint) and scored["data"] == os.path.abspath(data)
    assert (
        scored["audiotrain"] and scored["decode"]["method"] and scored["tta_shifts"] == [0] and scored["date"]
    )
    assert (out / "scores.md").read_text().startswith(f"Scored: {os.path.abspath(checkpoint)}")
    for metric, row in compared["metrics"].items():
        assert row["this"] == pytest.approx(alone["pooled"][metric])  # the same transcriptions
        assert row["difference"] == pytest.approx(row["this"] - row["against"])
        low, high = row["interval"]
        assert low <= row["difference"] + 1e-12 and row["difference"] <= high + 1e-12
    # The other model hears the songs' longest major or minor chord throughout, so it is right there,
    # where the untrained one is not: a real comparison, not a copy.
    assert compared["metrics"]["root"]["difference"] < 0 and compared["metrics"]["majmin"]["difference"] < 0
    # The comparison files are outputs like the others: not replaced without --overwrite.
    capsys.readouterr()
    (out / "comparison.md").write_text("my notes")
    for name in ["scores.json", "scores.md", "confusion_matrix.png", "song_000.lab", "song_001.lab"]:
        (out / name).unlink()
    assert chords.main([*argv, "--against", str(other_checkpoint)]) == 2
    err = capsys.readouterr().err
    assert "refusing to replace" in err and "comparison.md" in err and "Traceback" not in err
    assert (out / "comparison.md").read_text() == "my notes"
    assert chords.main([*argv, "--against", str(other_checkpoint), "--overwrite"]) == 0
    assert (out / "comparison.md").read_text() != "my notes"


def test_the_scored_line_counts_the_epochs_trained_not_history_json_epoch_numbers(songs, tmp_path):
    """scores.md and comparison.md said "(epoch 2, step 24)" of a best checkpoint saved at the end of the
    second epoch, which history.json (epochs from 0) and its `epoch=001` folder call epoch 1: a reader looking
    up epoch 2 in the history found another epoch's val_loss. The line now says how many epochs it trained."""
    checkpoint = _tiny_checkpoint(tmp_path / "best", seed=0, epochs=2, steps=24)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(_data_folder(songs, tmp_path))]
    assert chords.main([*argv, "--against", str(checkpoint), "-o", str(tmp_path / "out")]) == 0
    for report in ("scores.md", "comparison.md"):
        text = (tmp_path / "out" / report).read_text()
        assert f"{checkpoint.absolute()} (after 2 epochs, step 24) on " in text, report
        assert "epoch 2" not in text, report


def test_evaluate_against_itself_differs_by_nothing(checkpoint, songs, tmp_path, capsys):
    data = _data_folder(songs, tmp_path)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    assert chords.main([*argv, "--against", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "| root |" in printed and "| +0.00 | +0.00 to +0.00 |" in printed
    assert "comparison" not in " ".join(p.name for p in tmp_path.iterdir())  # no -o: no files


def test_evaluate_against_a_folder_that_is_not_a_checkpoint_is_a_clear_error(
    checkpoint, songs, tmp_path, capsys
):
    data = _data_folder(songs, tmp_path)
    missing = tmp_path / "no_such_run"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--against", str(missing)]
    capsys.readouterr()
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert "no_such_run" in err and "Traceback" not in err


def test_the_summary_table_can_show_each_score_with_its_interval_over_songs():
    right_then_wrong = {
        "a": ([ChordSegment(0, 10, "C:maj")], [ChordSegment(0, 9, "C:maj"), ChordSegment(9, 10, "E:min")]),
        "b": ([ChordSegment(0, 10, "G:maj")], [ChordSegment(0, 6, "G:maj"), ChordSegment(6, 10, "E:min")]),
    }
    scores = score_songs(right_then_wrong)
    lines = format_table({"model": scores}, ["root", "majmin"], intervals=True).splitlines()
    assert lines[0].split() == ["metric", "model", "95%", "over", "songs"]
    # 9 of 10 s right in one song, 6 of 10 in the other: a draw of two songs pools 60, 75 or 90%.
    assert lines[1].split() == ["root", "75.00", "60.0-90.0"]
    alone = score_songs({"a": right_then_wrong["a"]})
    assert format_table({"model": alone}, ["root"], intervals=True).splitlines()[1].split() == [
        "root",
        "90.00",
        "-",
    ]
    assert "over songs" not in format_table({"model": scores})  # the benchmark's columns stay as they were


def test_frame_levels_follow_the_audio_and_a_faded_tail_is_transcribed_as_no_chord(checkpoint, tmp_path):
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    features = predictor.features
    sr, hop = features.sr, features.hop_length
    t = np.arange(5 * sr) / sr
    # A C major triad for 3 s, then the same notes 30 dB down for 2 s (a chord's fading tail).
    chord = sum(np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0)) / 3
    gain = np.where(t < 3.0, 0.5, 0.5 * 10 ** (-30 / 20))
    audio = (chord * gain).astype(np.float32)
    frames = len(audio) // hop + 1
    level = features.frame_levels_db(audio, frames)
    assert level.shape == (frames,)
    early, late = level[int(1.0 * sr / hop)], level[int(4.0 * sr / hop)]
    assert early - late == pytest.approx(30.0, abs=0.5)
    assert early == pytest.approx(20 * np.log10(np.sqrt(np.mean((chord * 0.5)[sr : 2 * sr] ** 2))), abs=0.5)
    path = tmp_path / "tail.wav"
    sf.write(path, audio, sr)
    posteriors = predictor.posteriors(path)
    assert posteriors.level_db.shape == (len(posteriors.probs["chord_type"]),)
    segments = predictor.transcribe(path)
    # Whatever this untrained model hears, the tail is N, from where the level fell.
    assert segments[-1].label == "N" and segments[-1].start == pytest.approx(3.0, abs=0.1)
    predictor.decode = replace(predictor.decode, silence_db=0.0)
    assert predictor.transcribe(path)[-1].start != segments[-1].start


def test_the_train_and_comparison_tables_show_a_dash_for_a_comparison_that_covers_no_time():
    sus = ([ChordSegment(0, 10, "C:sus4")], [ChordSegment(0, 10, "C:sus4")])
    scores = score_songs({"a": sus, "b": sus})
    table = format_table({"model": scores}, ["root", "majmin"], intervals=True)
    assert "nan" not in table and "'-': no reference time of a kind that majmin scores" in table
    result = EvaluationResult(scores, np.zeros((2, 2)), 20.0, 1.0, {"a": sus, "b": sus})
    comparison = compare_results(result, result).table(["root", "majmin"])
    assert "| majmin | - | - | - | - |" in comparison and "nan" not in comparison


def test_a_comparison_leaves_out_and_names_songs_only_one_checkpoint_scored():
    def result(pairs):
        return EvaluationResult(score_songs(pairs), np.zeros((2, 2)), 10.0, 1.0, pairs)

    song = ([ChordSegment(0, 10, "C:maj")], [ChordSegment(0, 10, "C:maj")])
    wrong = ([ChordSegment(0, 10, "C:maj")], [ChordSegment(0, 10, "A:min")])
    comparison = compare_results(result({"a": song, "b": song, "c": song}), result({"a": wrong, "b": song}))
    assert comparison.left_out == ["c"] and sorted(comparison.scores.per_song) == ["a", "b"]
    assert comparison.differences["root"][0] == pytest.approx(0.5)
    assert "left out, scored by only one of the two: c" in comparison.table()
    assert comparison.to_dict()["left_out"] == ["c"] and comparison.to_dict()["songs"] == ["a", "b"]
    with pytest.raises(ValueError, match="no song in common"):
        compare_results(result({"a": song}), result({"b": song}))


def test_scores_json_holds_frame_metrics_with_x_frames_left_out(checkpoint, songs, tmp_path):
    """Per-head accuracy, top-k, per-class P/R/F1 and the confusion counts, readable by a program; a
    reference X frame is no target (mir_eval leaves X out), and a class only predicted has F1 0."""
    reference = read_lab(songs[0].annotation_path)
    reference[0] = ChordSegment(reference[0].start, reference[0].end, "X")
    annotation = tmp_path / "song.lab"
    write_lab(annotation, reference)
    out = tmp_path / "eval"
    evaluate_songs(
        ChordPredictor.from_checkpoint(checkpoint), [SongEntry("song", songs[0].audio_path, annotation)], out
    )
    frames = json.loads((out / "scores.json").read_text())["frames"]
    counts = np.array(frames["confusion"]["chord_type"]["counts"])
    assert frames["confusion"]["chord_type"]["classes"] == list(CHORD_TYPES)
    assert counts[CHORD_TYPES.index("X")].sum() == 0 and counts.sum() == frames["scored_frames"] > 0
    assert frames["transcription"]["chord_type_accuracy"] == pytest.approx(np.trace(counts) / counts.sum())
    for head in ("root", "bass"):
        square = np.array(frames["confusion"][head]["counts"])
        assert frames["transcription"][f"{head}_accuracy"] == pytest.approx(np.trace(square) / square.sum())
    per_class = frames["chord_type"]["per_class"]
    present = [i for i in range(len(CHORD_TYPES)) if counts[i].sum() or counts[:, i].sum()]
    assert list(per_class) == [CHORD_TYPES[i] for i in present]
    only_predicted = [name for name, row in per_class.items() if row["support"] == 0]
    assert only_predicted and all(per_class[name]["f1"] == 0.0 for name in only_predicted)
    assert frames["chord_type"]["macro_f1"] == pytest.approx(
        np.mean([row["f1"] for row in per_class.values()])
    )
    for head in ("chord_type", "chord"):
        top = [frames["posteriors"][head][f"top{k}"] for k in range(1, 6)]
        assert top == sorted(top) and 0.0 <= top[0] and top[-1] <= 1.0
    assert set(frames["posteriors"]) == {"chord_type", "root", "bass", "chord"}


def test_scores_json_counts_the_audio_of_every_song_scored(checkpoint, songs, tmp_path):
    """audio_seconds (and the realtime factor made of it) is the audio of all the songs, not the last's."""
    out = tmp_path / "eval"
    evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), songs, out)
    summary = json.loads((out / "scores.json").read_text())
    seconds = sum(sf.info(song.audio_path).duration for song in songs)
    assert len(songs) == 2 and summary["audio_seconds"] == pytest.approx(seconds, abs=0.1)
    assert summary["audio_seconds_per_second"] == pytest.approx(seconds / summary["wall_seconds"], rel=0.01)


def test_evaluate_overwrite_removes_the_earlier_evaluations_files_only(checkpoint, songs, tmp_path, capsys):
    """An earlier evaluation's .lab of a song not evaluated now stayed beside the new ones (mir_eval over
    DIR/*.lab then mixed two evaluations); files that are not an evaluation's stay, and so does a file
    outside the folder that a song name in a scores.json edited by hand ("../victim") points at."""
    data = _data_folder(songs, tmp_path)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "-o", str(out)]
    assert chords.main([*argv, "--data", str(data)]) == 0
    (out / "notes.txt").write_text("mine")
    (out / "other.lab").write_text("0\t1\tC:maj\n")  # not in the earlier scores.json: not its output
    scores = json.loads((out / "scores.json").read_text())
    scores["per_song"]["../victim"] = scores["per_song"][songs[0].name]
    (out / "scores.json").write_text(json.dumps(scores))
    (tmp_path / "victim.lab").write_text("0\t1\tC:maj\n")
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(songs[0].audio_path, one)
    shutil.copy(songs[0].annotation_path, one)
    capsys.readouterr()
    assert chords.main([*argv, "--data", str(one), "--overwrite"]) == 0
    assert "--overwrite: removed" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "confusion_matrix.png", "notes.txt", "other.lab", "scores.json", "scores.md", "song_000.lab",
    ]  # fmt: skip
    assert (tmp_path / "victim.lab").read_text() == "0\t1\tC:maj\n"


def test_evaluate_overwrite_of_songs_in_sub_folders_keeps_only_what_it_did_not_write(
    checkpoint, songs, tmp_path, capsys
):
    """Songs in sub-folders (artist/album/song): `--overwrite` named the earlier evaluation's own album folders
    as "kept what the previous run did not write", sending the user after files of theirs that are not there,
    and left the `.tmp-*.lab` of a write killed outright (SIGKILL, out of memory) in one for ever. Now the
    temporary file goes with the earlier outputs, and only a file of the user's in such a folder is named."""
    data = tmp_path / "data"
    (data / "album").mkdir(parents=True)
    for song in songs:
        shutil.copy(song.audio_path, data / "album")
        shutil.copy(song.annotation_path, data / "album")
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)]
    assert chords.main(argv) == 0
    killed_write = out / "album" / f".tmp-{'0' * 32}.lab"  # (`write_atomically`'s temporary name)
    killed_write.write_text("0\t1\tC")
    capsys.readouterr()
    assert chords.main([*argv, "--overwrite"]) == 0
    err = capsys.readouterr().err
    assert "--overwrite: removed the previous run's" in err
    assert "kept what the previous run did not write" not in err, err
    assert not killed_write.exists()
    assert sorted(p.name for p in (out / "album").iterdir()) == [f"{song.name}.lab" for song in songs]
    (out / "album" / "notes.txt").write_text("mine")
    assert chords.main([*argv, "--overwrite"]) == 0
    assert f"kept what the previous run did not write in {out}: album/notes.txt" in capsys.readouterr().err


def test_an_output_folder_beside_audio_annotated_by_jams_is_refused(checkpoint, songs, tmp_path, capsys):
    """-o the data folder of songs annotated by .jams: each prediction would be written as x.lab beside
    x.wav, and read as its annotation from then on (.lab wins); refused before any song is transcribed."""
    data = tmp_path / "data"
    data.mkdir()
    for song in songs:
        shutil.copy(song.audio_path, data)
        write_jams(data / f"{song.name}.jams", read_lab(song.annotation_path))
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(data)]
    assert chords.main(argv) == 2
    err = capsys.readouterr().err
    assert "be read as its annotation from then on" in err and "outside the data folder" in err, err
    assert sorted(p.suffix for p in data.iterdir()) == [".jams", ".jams", ".wav", ".wav"]


def _c_major_after_silence(folder, reference):
    """The frame figures of scores.json for 4 s of a C major chord whose first 1.5 s are -100 dB noise,
    transcribed as N there and C:maj after it, scored against `reference` (segments)."""
    predictor = ChordPredictor.from_checkpoint(_tiny_checkpoint(folder / "ckpt", seed=0, always=("maj", 0)))
    sr = predictor.features.sr
    t = np.arange(4 * sr) / sr
    audio = sum(0.2 * np.sin(2 * np.pi * f * t) for f in (261.63, 329.63, 392.0))
    audio[: int(1.5 * sr)] = 1e-5 * np.random.default_rng(0).standard_normal(int(1.5 * sr))  # -100 dB: N
    sf.write(folder / "c.wav", audio.astype(np.float32), sr)
    write_lab(folder / "c.lab", reference)
    out = folder / "eval"
    evaluate_songs(predictor, [SongEntry("c", folder / "c.wav", folder / "c.lab")], out)
    return json.loads((out / "scores.json").read_text())["frames"]


def test_root_and_bass_c_and_chord_type_n_are_classes_of_the_frame_confusions(tmp_path):
    """C is pitch class 0 and N chord type 0: counted as "none" (and N as the last chord type) they would
    lower root_accuracy, bass_accuracy and chord_type_accuracy of a transcription that is right."""
    frames = _c_major_after_silence(tmp_path, [ChordSegment(0.0, 1.5, "N"), ChordSegment(1.5, 4.0, "C:maj")])
    n, maj = CHORD_TYPES.index("N"), CHORD_TYPES.index("maj")
    chord_type = np.array(frames["confusion"]["chord_type"]["counts"])
    assert chord_type[n, n] > 0 and chord_type[maj, maj] > 0
    for head in ("root", "bass"):
        confusion = frames["confusion"][head]
        counts = np.array(confusion["counts"])
        assert confusion["classes"][0] == "C" and confusion["classes"][-1] == "none"
        assert counts[0, 0] > 0 and counts[0, -1] == 0, (head, counts)  # (N frames have no root: left out)
        assert frames["transcription"][f"{head}_accuracy"] > 0.9
    assert frames["transcription"]["chord_type_accuracy"] > 0.9


def test_a_chord_transcribed_as_n_is_counted_in_the_none_column_of_root_and_bass(tmp_path):
    """Where the reference has a chord and the transcription reads N, root and bass count the frame in their
    "none" column: counted as the last pitch class (B), a reference B read as N would score as right."""
    frames = _c_major_after_silence(tmp_path, [ChordSegment(0.0, 4.0, "C:maj")])
    for head in ("root", "bass"):
        counts = np.array(frames["confusion"][head]["counts"])
        assert frames["confusion"][head]["classes"][11] == "B"
        assert counts[0, -1] > 0 and counts[0, 11] == 0, (head, counts)  # the silent 1.5 s: read as N
        assert frames["transcription"][f"{head}_accuracy"] == pytest.approx(counts[0, 0] / counts.sum())
        assert frames["transcription"][f"{head}_accuracy"] < 0.9
    # Chord type: maj is right only after the silence (recall under 1), N never in the reference (its
    # precision 0): precision over the frames transcribed as the class, recall over its reference frames.
    counts = np.array(frames["confusion"]["chord_type"]["counts"])
    per_class = frames["chord_type"]["per_class"]
    maj, i = per_class["maj"], CHORD_TYPES.index("maj")
    assert maj["recall"] == pytest.approx(counts[i, i] / counts[i].sum()) and maj["recall"] < 0.9
    assert maj["precision"] == pytest.approx(counts[i, i] / counts[:, i].sum()) and maj["precision"] > 0.9


def test_silent_audio_and_undecodable_audio_are_skipped_and_only_scored_songs_have_gaps_noted(
    checkpoint, songs, tmp_path
):
    """Digital silence whose reference names chords is skipped (SILENT_SONG) also where the reference starts
    with N: skipping only all-chord references would score it as an all-N transcription. A song skipped
    because its audio does not decode is not listed as having had its reference's gaps read as N."""
    shutil.copy(songs[0].audio_path, tmp_path / "gappy.wav")
    (tmp_path / "gappy.lab").write_text("0 1 C:maj\n1.5 4 G:maj\n")
    sf.write(tmp_path / "silent.wav", np.zeros(4 * 22050, np.float32), 22050)
    (tmp_path / "silent.lab").write_text("0 1 N\n1 4 C:maj\n")
    _copy_with_nan(songs[1], tmp_path, "broken")
    (tmp_path / "broken.lab").write_text("0 1 C:maj\n1.5 4 G:maj\n")
    entries = [
        SongEntry(n, tmp_path / f"{n}.wav", tmp_path / f"{n}.lab") for n in ("gappy", "silent", "broken")
    ]
    result = evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), entries, allow_gaps=True)
    assert list(result.pairs) == ["gappy"]
    assert sorted(result.scores.skipped) == ["broken", "silent"]
    assert SILENT_SONG in result.scores.skipped["silent"]
    assert list(result.gap_filled) == ["gappy"]


def test_when_no_song_decodes_the_songs_given_and_those_left_out_before_are_counted_apart(tmp_path):
    """'the audio of all 1 songs fails to decode:' was followed by 5 songs: the scan's 4 skips among them."""
    from audiotrain.audio import AudioError

    class NothingDecodes:
        def posteriors(self, path):
            raise AudioError(path, "non_finite", "10 non-finite samples")

    write_lab(tmp_path / "nan.lab", [ChordSegment(0.0, 1.0, "C:maj")])
    song = SongEntry("nan", tmp_path / "nan.wav", tmp_path / "nan.lab")
    before = {f"bad{i}": f"bad{i}.wav: file is empty (0 bytes)" for i in range(4)}
    with pytest.raises(ValueError) as info:
        evaluate_songs(NothingDecodes(), [song], skipped=before)
    lines = str(info.value).splitlines()
    assert lines[0] == "no song left to score: the audio of the one song fails to decode:"
    assert lines[1].startswith("  nan: ") and "non-finite" in lines[1]
    assert lines[2] == "4 more left out before:" and len(lines) == 7


def test_an_annotation_that_labels_no_time_is_skipped_and_the_other_songs_are_scored(
    checkpoint, songs, tmp_path, capsys
):
    """A .lab of zero-length lines read as an empty annotation: evaluate stopped with "the reference
    annotation is empty", naming no file, scored none of the other songs and left their .lab files behind
    without a scores.json."""
    data = _data_folder(songs, tmp_path)
    shutil.copy(songs[0].audio_path, data / "zero.wav")
    (data / "zero.lab").write_text("0.0\t0.0\tC:maj\n")
    out = tmp_path / "eval"
    capsys.readouterr()
    code = chords.main(
        ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 1, captured.err
    assert "zero.lab: no chord segments (its one segment is zero-length)" in captured.err
    scores = json.loads((out / "scores.json").read_text())
    assert sorted(scores["per_song"]) == ["song_000", "song_001"]
    assert [entry["song"] for entry in scores["skipped"]] == ["zero"]
    assert sorted(p.stem for p in out.glob("*.lab")) == ["song_000", "song_001"]


def test_an_evaluation_stopped_part_way_leaves_no_lab_file_behind(checkpoint, songs, tmp_path):
    """The .lab of each song was written as it was transcribed: an evaluation stopped later (an error,
    Ctrl-C) left them without the scores.json that lists them, so the next evaluate refused them and
    --overwrite never removed them."""

    class StopsAtTheSecondSong:
        def __init__(self, predictor):
            self.predictor, self.calls = predictor, 0

        def __getattr__(self, name):
            return getattr(self.predictor, name)

        def posteriors(self, path):
            self.calls += 1
            if self.calls == 2:
                raise KeyboardInterrupt
            return self.predictor.posteriors(path)

    out = tmp_path / "eval"
    stopping = StopsAtTheSecondSong(ChordPredictor.from_checkpoint(checkpoint))
    with pytest.raises(KeyboardInterrupt):
        evaluate_songs(stopping, songs, out)
    assert stopping.calls == 2 and not (out.exists() and list(out.iterdir()))
    # An annotation that cannot be used stops the evaluation before any song is transcribed.
    (tmp_path / "zero.lab").write_text("0.0\t0.0\tC:maj\n")
    stopping.calls = 0
    with pytest.raises(AnnotationError, match="zero.lab: no chord segments"):
        evaluate_songs(stopping, [*songs, SongEntry("zero", songs[0].audio_path, tmp_path / "zero.lab")], out)
    assert stopping.calls == 0


def test_songs_without_a_frame_to_score_are_scored_and_the_empty_confusion_is_explained(
    checkpoint, songs, tmp_path, capsys
):
    """References of X and of chords outside the 32 types (which count as X) leave no frame for the frame
    figures: evaluate -o wrote scores.json, then stopped with "the confusion matrix is all zeros: nothing to
    plot" and exit status 2 before printing the scores."""
    data = tmp_path / "data"
    data.mkdir()
    for name, text in (("allx", "0.0\t3.0\tX\n"), ("shell", "0.0\t1.5\tC:7(*3)\n1.5\t3.0\tC:(1,b3)\n")):
        shutil.copy(songs[0].audio_path, data / f"{name}.wav")
        (data / f"{name}.lab").write_text(text)
    out = tmp_path / "eval"
    capsys.readouterr()
    code = chords.main(
        ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "| root |" in captured.out and "note: no reference frame to score frame by frame" in captured.out
    assert "chord labels outside the 32 chord types (3.0 s, 50.0% of the annotated time)" in captured.err
    assert sorted(p.name for p in out.iterdir()) == ["allx.lab", "scores.json", "scores.md", "shell.lab"]
    scores = json.loads((out / "scores.json").read_text())
    assert scores["frames"]["scored_frames"] == 0 and scores["per_song"]["shell"]["root"] is not None
    assert "no confusion matrix is drawn" in (out / "scores.md").read_text()


def test_evaluate_says_which_labels_it_scores_frame_by_frame_as_reduced_chords(
    checkpoint, songs, tmp_path, capsys
):
    """A reference of C:aug(b7) and C:7(#5) is counted as C:aug and C:7 in the frame figures: evaluate
    printed the scores without a word of it (only labels that became X were named)."""
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(songs[0].audio_path, data / "red.wav")
    (data / "red.lab").write_text("0.0\t1.5\tC:aug(b7)\n1.5\t3.0\tC:7(#5)\n")
    capsys.readouterr()
    code = chords.main(["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data)])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "2 chord labels reduced to one of the 32 chord types (3.0 s, 100.0% of the annotated time)" in (
        captured.err
    )
    assert "C:aug(b7) → C:aug: 1 segment, 1.5 s" in captured.err


def test_frame_figures_that_cover_no_frame_are_null_not_zero(checkpoint, songs, tmp_path):
    """A reference that is all N gives root and bass nothing to score: scores.json said 0.0 (a model whose
    transcription is all right read 0% root accuracy), where the mir_eval scores say null."""
    annotation = tmp_path / "alln.lab"
    write_lab(annotation, [ChordSegment(0.0, SONG_SECONDS, "N")])
    out = tmp_path / "eval"
    evaluate_songs(
        ChordPredictor.from_checkpoint(checkpoint), [SongEntry("alln", songs[0].audio_path, annotation)], out
    )
    frames = json.loads((out / "scores.json").read_text())["frames"]
    assert frames["scored_frames"] > 0 and frames["transcription"]["chord_type_accuracy"] is not None
    assert (
        frames["transcription"]["root_accuracy"] is None and frames["transcription"]["bass_accuracy"] is None
    )
    assert frames["posteriors"]["root"] == {"top1": None} and frames["posteriors"]["bass"] == {"top1": None}


def _run_record(folder, data_dir, test_songs, cache_dir=None):
    """A train run's folder with the config.json `evaluate --test_songs_of` reads."""
    folder.mkdir()
    record = {
        "config": {"data": {"data_dir": data_dir, "cache_dir": cache_dir}},
        "versions": {},
        "songs": {"train": ["a"], "val": ["b"], "test": test_songs},
    }
    (folder / "config.json").write_text(json.dumps(record))
    return folder


def test_test_songs_of_a_demo_run_scores_only_its_demo_set(checkpoint, songs, tmp_path, capsys):
    """A demo run's record names its test song song_000, as demo songs anywhere are named: any folder with
    a song_000 was scored as that run's evaluation again."""
    cache = tmp_path / "cache"
    demo_run = _run_record(tmp_path / "demo_run", None, ["song_000"], cache_dir=str(cache))
    evaluate = ["evaluate", "--checkpoint", str(checkpoint), "--test_songs_of", str(demo_run)]
    capsys.readouterr()
    assert chords.main([*evaluate, "--data", str(songs[0].audio_path.parent)]) == 2
    err = capsys.readouterr().err
    assert f"--test_songs_of {demo_run}: that run trained on the demo songs" in err, err
    assert "give that set's folder as --data, without --test_songs_of" in err
    assert f"{cache / 'demo' / 'chords'}/test-v*-train-seed*-n*-*s-*" in err  # (its record holds no more)
    # A demo training set (train-...) names its songs song_000... too: scored, it was no held-out evaluation.
    training_set = cache / "demo" / "chords" / "train-v9-train-seed0-n1"
    shutil.copytree(songs[0].audio_path.parent, training_set)
    assert chords.main([*evaluate, "--data", str(training_set)]) == 2
    assert f"--test_songs_of {demo_run}: that run trained on the demo songs" in capsys.readouterr().err
    held_out = cache / "demo" / "chords" / "test-v9-train-seed1000-n1"  # (as the demo names its held-out set)
    shutil.copytree(songs[0].audio_path.parent, held_out)
    assert chords.main([*evaluate, "--data", str(held_out)]) == 0
    assert "1 song, mir_eval.chord scores" in capsys.readouterr().out


def test_test_songs_of_a_run_that_held_out_no_songs_says_so(checkpoint, songs, tmp_path, capsys):
    """It was told to give --data the folder that run trained on, which it had been given."""
    data = songs[0].audio_path.parent
    run = _run_record(tmp_path / "run", str(data), [])
    capsys.readouterr()
    assert (
        chords.main(
            ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--test_songs_of", str(run)]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert f"--test_songs_of {run}: that run held out no test songs" in err, err
    assert f"leave --test_songs_of out to score every song of {data}" in err
    assert "the folder that run trained on" not in err


def _songs_with_a_gap(songs, folder):
    """The demo songs, and b_gap: a song whose annotation leaves 0.5 s unlabelled (N with allow_gaps)."""
    shutil.copytree(songs[0].audio_path.parent, folder)
    shutil.copy(songs[0].audio_path, folder / "b_gap.wav")
    (folder / "b_gap.lab").write_text("0 1 C:maj\n1.5 3 G:maj\n3 4 F:maj\n")
    return folder


def test_test_songs_of_a_run_that_allowed_gaps_scores_them_as_it_did(checkpoint, songs, tmp_path, capsys):
    """A run trained with --data.allow_gaps true scored its test song b_gap; evaluating it again (--checkpoint
    RUN, or --test_songs_of RUN) skipped b_gap for its gap, as the run's pairs file and annotations folder
    are taken over but allow_gaps was not, then said b_gap was not in the folder it had been given."""
    data = _songs_with_a_gap(songs, tmp_path / "data")
    run = tmp_path / "run"
    _run_record(run, str(data), ["b_gap"])
    record = json.loads((run / "config.json").read_text())
    record["config"]["data"]["allow_gaps"] = True
    (run / "config.json").write_text(json.dumps(record))
    capsys.readouterr()
    evaluate = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--test_songs_of", str(run)]
    assert chords.main(evaluate) == 0
    captured = capsys.readouterr()
    assert f"--test_songs_of {run}: paired as that run did: --allow_gaps" in captured.err, captured.err
    assert "1 song, mir_eval.chord scores" in captured.out
    assert "gaps between segments, read as N" in captured.out + captured.err


def test_test_songs_of_a_run_whose_test_songs_are_all_skipped_says_why(checkpoint, songs, tmp_path, capsys):
    """Every test song in the folder but skipped (a gap the run did not allow: the annotation edited since;
    audio that no longer decodes) was reported as "none of its test songs is in DIR; give --data the folder
    that run trained on (DIR)", the folder given."""
    data = _songs_with_a_gap(songs, tmp_path / "data")
    (data / "broken.wav").write_bytes(b"RIFF not a wave file")
    (data / "broken.lab").write_text("0 1 C:maj\n")
    run = _run_record(tmp_path / "run", str(data), ["b_gap", "broken", "gone"])
    capsys.readouterr()
    evaluate = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--test_songs_of", str(run)]
    assert chords.main(evaluate) == 2
    err = capsys.readouterr().err
    error = next(line for line in err.splitlines() if line.startswith("error:"))
    assert (
        f"--test_songs_of {run}: none of its 3 test songs can be scored: 2 songs of {data} skipped" in error
    )
    assert f"{data / 'b_gap.lab'}, line 2: gap of 0.5" in error and "--allow_gaps" in error, error
    assert f"{data / 'broken.wav'}" in error and f"1 not in {data} (e.g. gone)" in error
    assert "give --data the folder that run trained on" not in error


def test_songs_whose_lab_files_would_be_one_file_have_none_written_and_scores_json_says_so(
    checkpoint, songs, tmp_path, monkeypatch, capsys
):
    """Song.wav and song.wav (two songs on Linux) wrote out/Song.lab, then out/song.lab: on a case-insensitive
    file system (macOS, Windows, exFAT, an SMB share; stood in for here) the second replaced the first, which
    scores.json listed as written, and evaluate -o called it "appeared while evaluating". Now neither is
    written, both are scored, said before transcription, and listed in scores.json's not_written."""
    data = tmp_path / "data"
    data.mkdir()
    for song, name in zip(songs, ("Song", "song")):
        shutil.copy(song.audio_path, data / f"{name}.wav")
        shutil.copy(song.annotation_path, data / f"{name}.lab")
    monkeypatch.setattr(evaluate_module, "folds_case", lambda folder: True)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)]
    capsys.readouterr()
    assert chords.main(argv) == 0
    captured = capsys.readouterr()
    assert "note: the .lab files of 2 songs are not written (their scores are kept): songs Song, song: " in (
        captured.err
    )
    assert "case-insensitive file system" in captured.err and "appeared" not in captured.err
    assert not list(out.glob("*.lab"))
    summary = json.loads((out / "scores.json").read_text())
    assert summary["songs_scored"] == 2 and summary["files_not_written"] == 2
    assert [entry["file"] for entry in summary["not_written"]] == ["Song.lab", "song.lab"]
    assert "Not written:\n- Song.lab: songs Song, song:" in (out / "scores.md").read_text()
    # Where the file system tells case apart, both are written.
    monkeypatch.setattr(evaluate_module, "folds_case", lambda folder: False)
    assert chords.main([*argv, "--overwrite"]) == 0
    assert sorted(p.name for p in out.glob("*.lab")) == ["Song.lab", "song.lab"]
    assert json.loads((out / "scores.json").read_text())["not_written"] == []


def test_evaluate_replaces_no_output_written_meanwhile(checkpoint, songs, tmp_path, monkeypatch, capsys):
    """evaluate -o checked at its start that its outputs did not exist, then wrote over whatever was there
    once every song was scored: a .lab edited meanwhile, or another evaluation's scores, were replaced."""
    data = _data_folder(songs, tmp_path)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)]
    real = ChordPredictor.posteriors
    appearing = {}

    def posteriors(self, audio_path):  # another program writes into -o while the songs are transcribed
        out.mkdir(exist_ok=True)
        for name, text in appearing.items():
            (out / name).write_text(text)
        return real(self, audio_path)

    monkeypatch.setattr(ChordPredictor, "posteriors", posteriors)
    appearing[f"{songs[0].name}.lab"] = "edited by hand\n"
    capsys.readouterr()
    assert chords.main(argv) == 1
    captured = capsys.readouterr()
    assert "majmin" in captured.out
    assert f"not written: {songs[0].name}.lab appeared in {out} while evaluating" in captured.err
    assert (out / f"{songs[0].name}.lab").read_text() == "edited by hand\n"
    assert (out / "scores.json").is_file() and (out / f"{songs[1].name}.lab").is_file()
    # scores.json listed that .lab as this evaluation's: an --overwrite of other songs removed it.
    summary = json.loads((out / "scores.json").read_text())
    assert summary["files_not_written"] == 1 and summary["songs_scored"] == 2
    [entry] = summary["not_written"]
    assert entry["file"] == f"{songs[0].name}.lab" and "appeared while evaluating" in entry["reason"]
    assert "Not written (appeared while evaluating" in (out / "scores.md").read_text()
    appearing.clear()
    one = tmp_path / "one"
    one.mkdir()
    shutil.copy(songs[1].audio_path, one)
    shutil.copy(songs[1].annotation_path, one)
    overwrite = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "-o", str(out), "--overwrite"]
    assert chords.main([*overwrite, "--data", str(one)]) == 0
    assert (out / f"{songs[0].name}.lab").read_text() == "edited by hand\n"
    assert json.loads((out / "scores.json").read_text())["not_written"] == []
    capsys.readouterr()
    # Another evaluation's scores.json: nothing of this one is written there, its scores are still printed.
    shutil.rmtree(out)
    appearing.clear()
    appearing["scores.json"] = "{}"
    assert chords.main(argv) == 2
    captured = capsys.readouterr()
    assert "majmin" in captured.out
    assert f"{out / 'scores.json'} appeared while evaluating" in captured.err
    assert [p.name for p in out.iterdir()] == ["scores.json"] and (out / "scores.json").read_text() == "{}"
    # The comparison's files (--against) likewise: one written meanwhile stays, said not written.
    shutil.rmtree(out)
    appearing.clear()
    appearing["comparison.json"] = "{}"
    assert chords.main([*argv, "--against", str(checkpoint)]) == 1
    assert f"not written: comparison.json appeared in {out} while evaluating" in capsys.readouterr().err
    assert (out / "comparison.json").read_text() == "{}" and (out / "comparison.md").is_file()


@needs_file_size_limit
def test_a_full_disk_while_writing_comparison_json_leaves_the_earlier_one_whole(tmp_path):
    """comparison.json (as scores.json) was written in place: a disk that filled up mid-write left half a
    JSON file where the earlier comparison had been."""
    reference = [ChordSegment(0.0, 2.0, "C:maj"), ChordSegment(2.0, 4.0, "A:min")]
    estimate = [ChordSegment(0.0, 2.5, "C:maj"), ChordSegment(2.5, 4.0, "A:min")]
    scores = score_songs({"a": (reference, estimate), "b": (reference, reference)})
    Comparison(scores, scores).write(tmp_path)
    earlier = (tmp_path / "comparison.json").read_bytes()
    with files_cannot_grow_past(len(earlier) // 2), pytest.raises(OSError, match="File too large"):
        Comparison(scores, scores, left_out=["c"]).write(tmp_path)
    assert (tmp_path / "comparison.json").read_bytes() == earlier
    assert json.loads(earlier)["songs"] == ["a", "b"]


def _song_record(names, demo=None):
    """A checkpoint's record of the songs its run trained on, per part (`song_record`)."""
    return {
        **{part: len(names[part]) for part in names},
        "names": names,
        "names_sha256": {part: names_digest(names[part]) for part in names},
        "demo": demo,
    }


def test_evaluate_says_which_scored_songs_the_checkpoint_trained_on(songs, tmp_path, capsys):
    """Scoring a checkpoint on a folder that holds some of its training songs gave training-set scores
    with nothing to tell them from held-out ones. Not an error: a line names them, and scores.json too."""
    data = _data_folder(songs, tmp_path)
    trained = {"train": [songs[0].name, "elsewhere"], "val": [songs[1].name], "test": []}
    checkpoint = _tiny_checkpoint(tmp_path / "ckpt", seed=0, songs=_song_record(trained))
    out = tmp_path / "eval"
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data)]
    assert chords.main([*argv, "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert (
        f"note: 1 of the 2 songs scored is a song {checkpoint} trained on ({songs[0].name}); 1 of the 2 "
        f"songs scored is a validation song of {checkpoint}, which chose it ({songs[1].name}): their scores "
        "are not held-out ones (scores.json: songs_trained_on)" in printed
    ), printed
    recorded = json.loads((out / "scores.json").read_text())["songs_trained_on"]
    assert recorded == {"train": [songs[0].name], "val": [songs[1].name]}
    # The demo songs are named alike in every demo set: a demo run's song_000 is not this folder's.
    demo = _tiny_checkpoint(tmp_path / "demo", seed=0, songs=_song_record(trained, demo={"demo_seed": 0}))
    argv[2] = str(demo)
    assert chords.main(argv) == 0
    assert "trained on" not in capsys.readouterr().out


def test_songs_named_as_those_of_another_training_folder_are_said_to_be_matched_by_name_alone(
    songs, tmp_path, capsys
):
    """A teacher scoring a student's model on a held-out folder whose songs are named as the training folder's
    (song_000...): the note said the model trained on them, "their scores are not held-out ones", though its
    run trained on another folder. It now says they were matched by name, and where it trained."""
    data = _data_folder(songs, tmp_path)
    checkpoint = _tiny_checkpoint(
        tmp_path / "ckpt", seed=0, songs=_song_record({"train": [songs[0].name], "val": [], "test": []})
    )
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data)]
    for trained_on, note in (
        (
            tmp_path / "training_songs",
            f", by name alone: it trained on {tmp_path / 'training_songs'}, another ",
        ),
        (data, ": their scores are not held-out ones"),  # (its own folder: no doubt)
    ):
        state = json.loads((checkpoint / "trainer_state.json").read_text())
        state["run_config"] = {"data": {"data_dir": str(trained_on)}}
        (checkpoint / "trainer_state.json").write_text(json.dumps(state))
        capsys.readouterr()
        assert chords.main(argv) == 0
        printed = capsys.readouterr().out
        assert f"is a song {checkpoint} trained on ({songs[0].name}){note}" in printed, printed


def test_evaluate_against_says_which_scored_songs_the_other_checkpoint_trained_on(songs, tmp_path, capsys):
    """`evaluate --checkpoint NEW --against OLD` on a folder holding OLD's training songs printed the
    difference with its interval as if both were held out, with no word that OLD had trained on them (only
    the checkpoint scored got its note): an upgrade's comparison of the old model with the new one."""
    data = _data_folder(songs, tmp_path)
    elsewhere = {"train": ["elsewhere"], "val": [], "test": []}
    held_out = _tiny_checkpoint(tmp_path / "new", seed=0, songs=_song_record(elsewhere))
    trained = {"train": [songs[0].name], "val": [], "test": []}
    old = _tiny_checkpoint(tmp_path / "old", seed=1, songs=_song_record(trained))
    capsys.readouterr()
    argv = ["evaluate", "--checkpoint", str(held_out), "--tta", "0", "--data", str(data)]
    assert chords.main([*argv, "--against", str(old)]) == 0
    printed = capsys.readouterr().out
    assert f"1 of the 2 songs scored is a song {old} trained on ({songs[0].name})" in printed, printed
    assert f"{held_out} trained on" not in printed, printed


def test_a_song_record_edited_by_hand_does_not_stop_the_evaluation(songs, tmp_path, capsys):
    """Its names no longer match their digests: --resume refuses it, but the scores are still given."""
    data = _data_folder(songs, tmp_path)
    record = _song_record({"train": [songs[0].name], "val": [], "test": []})
    record["names"]["train"] = [songs[1].name]
    checkpoint = _tiny_checkpoint(tmp_path / "ckpt", seed=0, songs=record)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data)]
    assert chords.main(argv) == 0
    assert "trained on" not in capsys.readouterr().out


def test_the_trained_on_note_names_scores_json_only_where_one_is_written(songs, tmp_path, capsys):
    """Without -o no scores.json is written, but the note pointed at it ("scores.json: songs_trained_on")."""
    data = _data_folder(songs, tmp_path)
    trained = {"train": [songs[0].name, songs[1].name], "val": [], "test": []}
    checkpoint = _tiny_checkpoint(tmp_path / "ckpt", seed=0, songs=_song_record(trained))
    capsys.readouterr()
    assert chords.main(["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", str(data)]) == 0
    printed = capsys.readouterr().out
    assert f"2 of the 2 songs scored are songs {checkpoint} trained on" in printed, printed
    assert "their scores are not held-out ones\n" in printed and "scores.json" not in printed


def test_evaluate_into_a_reader_that_left_writes_every_file_and_ends_quietly(
    checkpoint, other_checkpoint, songs, tmp_path
):
    """`evaluate -o DIR | head -3` printed its table before writing -o: the reader had left, the print raised
    a BrokenPipeError, and the finished evaluation (scores.json, the .lab files) was lost, with a traceback."""
    data, out = _data_folder(songs, tmp_path), tmp_path / "eval"
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader has gone before the first line is printed: any print raises
    repo = Path(__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, "-m", "audiotrain.recipes.chords", "evaluate", "--checkpoint", str(checkpoint),
         "--against", str(other_checkpoint), "--tta", "0", "--data", str(data), "-o", str(out)],
        stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=300,
        env={**os.environ, "PYTHONUNBUFFERED": "1",  # each print raises at once, as on a terminal's pipe
             "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])},
    )  # fmt: skip
    os.close(write_end)
    assert "Traceback" not in done.stderr and "BrokenPipeError" not in done.stderr, done.stderr
    assert done.returncode == 141  # as a shell reports a command that SIGPIPE ended
    written = {p.name for p in out.iterdir()}
    assert {f"{song.name}.lab" for song in songs} | {"scores.json", "scores.md", "comparison.json"} <= written
    assert json.loads((out / "scores.json").read_text())["songs_scored"] == 2


def test_evaluate_against_the_same_checkpoint_says_every_difference_is_zero(
    checkpoint, songs, tmp_path, capsys
):
    """It printed a table of zeros without a word (a mistyped --against, the run's own best)."""
    data = _data_folder(songs, tmp_path)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "--against", str(checkpoint)]) == 0
    err = capsys.readouterr().err
    assert (
        f"note: --against {checkpoint} is the checkpoint scored (" in err and "every difference is 0" in err
    )


def test_a_song_whose_lab_path_would_be_too_long_is_scored_and_listed_not_written(
    checkpoint, songs, tmp_path, monkeypatch, capsys
):
    """A song deep in sub-folders, mirrored under a longer -o, has a .lab path over PATH_MAX (4096 bytes):
    evaluate -o ended in a raw "OSError: File name too long" before any song was transcribed (train's held-out
    evaluation, after training), where predict skips and lists such a song. Now it is scored, and its .lab is
    listed in scores.json's not_written with the reason, as a name clashing in case is."""
    monkeypatch.chdir(tmp_path)  # (paths as given: the system counts a relative path from here)
    deep = Path("data")
    while len(os.fsencode(str(deep))) < 3900:
        deep /= "d" * 200
    os.makedirs(deep)
    shutil.copy(songs[0].audio_path, deep / "s.wav")
    shutil.copy(songs[0].annotation_path, deep / "s.lab")
    shutil.copy(songs[1].audio_path, Path("data") / "top.wav")
    shutil.copy(songs[1].annotation_path, Path("data") / "top.lab")
    out = Path("o" * 250)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--tta", "0", "--data", "data", "-o", str(out)]
    capsys.readouterr()
    assert chords.main(argv) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    name = (deep / "s").relative_to("data").as_posix()
    assert (
        f"note: the .lab files of 1 song are not written (their scores are kept): song {name}: cannot "
        in (captured.err)
    )
    assert "its path would be " in captured.err and "; this system takes 4095 at most" in captured.err
    assert [p.name for p in out.iterdir() if p.suffix == ".lab"] == ["top.lab"]
    summary = json.loads((out / "scores.json").read_text())
    assert summary["songs_scored"] == 2 and summary["files_not_written"] == 1
    [entry] = summary["not_written"]
    assert entry["file"] == f"{name}.lab" and "its path would be" in entry["reason"]
    assert (
        f"Not written:\n- {name}.lab: song {name}: cannot write its .lab" in (out / "scores.md").read_text()
    )
    # Again without --overwrite: refused for the files written, not a raw error for the one that could not be.
    assert chords.main(argv) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert chords.main([*argv, "--overwrite"]) == 0


def _evaluate_test_songs_of(checkpoint, songs, tmp_path, capsys, other_test_song):
    """``evaluate -o --test_songs_of RUN`` on `_songs_with_a_gap`'s folder, RUN holding out song_000 and
    `other_test_song`, which is not scored (exit status 1): (data folder, run, scores.json, the output)."""
    data = _songs_with_a_gap(songs, tmp_path / "data")
    run = _run_record(tmp_path / "run", str(data), ["song_000", other_test_song])
    out = tmp_path / "eval"
    evaluate = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--test_songs_of", str(run)]
    capsys.readouterr()
    assert chords.main([*evaluate, "--tta", "0", "-o", str(out)]) == 1
    return data, run, json.loads((out / "scores.json").read_text()), capsys.readouterr()


def test_test_songs_of_lists_its_missing_test_songs_and_no_other_song_of_the_folder(
    checkpoint, songs, tmp_path, capsys
):
    """The run held out song_000 and gone; gone was since moved out of the folder, and b_gap, a training song
    of the folder, has a gap the run did not allow. Only the run's test songs are the scored set: gone is
    listed as skipped (the score is not the run's test set again: exit status 1), b_gap is not."""
    data, run, scores, captured = _evaluate_test_songs_of(checkpoint, songs, tmp_path, capsys, "gone")
    assert "1 song scored" in captured.out, captured.out
    assert list(scores["per_song"]) == ["song_000"]
    assert scores["skipped"] == [{"song": "gone", "reason": f"a test song of {run}, not found in {data}"}]
    assert "1 song skipped" in captured.out and "b_gap" not in captured.out  # (the folder's scan names it)
    assert f"- gone: a test song of {run}, not found in {data}" in captured.out  # (named once)


def test_test_songs_of_lists_a_test_song_the_scan_skipped_with_the_scans_reason(
    checkpoint, songs, tmp_path, capsys
):
    """The run held out song_000 and b_gap, whose annotation has a gap the run did not allow: b_gap is listed
    as skipped for that gap (its file and line), not as a test song "not found" in the folder it is in."""
    data, _, scores, captured = _evaluate_test_songs_of(checkpoint, songs, tmp_path, capsys, "b_gap")
    assert list(scores["per_song"]) == ["song_000"]
    [skipped] = scores["skipped"]
    assert skipped["song"] == "b_gap" and f"{data / 'b_gap.lab'}, line 2: gap of 0.5" in skipped["reason"]
    assert "not found" not in skipped["reason"] and "not found" not in captured.out


def test_evaluate_refuses_a_scores_json_in_its_output_folder_before_transcribing(
    checkpoint, songs, tmp_path, monkeypatch, capsys
):
    """A scores.json in -o (an earlier evaluation's, or notes of the user's), with no .lab of these songs
    beside it, is refused at the start, not once every song is transcribed."""
    out = tmp_path / "eval"
    out.mkdir()
    (out / "scores.json").write_text("my scores")
    monkeypatch.setattr(
        cli_evaluate_module, "evaluate_songs", lambda *a, **k: pytest.fail("transcribed first")
    )
    data = songs[0].audio_path.parent
    capsys.readouterr()
    assert (
        chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out)]) == 2
    )
    err = capsys.readouterr().err
    assert "refusing to replace" in err and "scores.json" in err and "--overwrite" in err, err
    assert (out / "scores.json").read_text() == "my scores"


def test_a_jams_annotation_below_0_is_a_usage_error(checkpoint, songs, capsys):
    """Refused as the flag's value, before any song is read: not every JAMS song skipped for it."""
    data = songs[0].audio_path.parent
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--jams_annotation", "-1"]
    capsys.readouterr()
    assert chords.main(argv) == 2
    assert "argument --jams_annotation: invalid whole number from 0 value: '-1'" in capsys.readouterr().err


def test_evaluate_against_another_checkpoint_reads_gaps_as_n_for_both(
    checkpoint, other_checkpoint, songs, tmp_path, capsys
):
    """--allow_gaps holds for the checkpoint compared against too: both score the gapped song against the
    same reference, its gap read as N."""
    data = _songs_with_a_gap(songs, tmp_path / "data")
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out), "--tta", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "--allow_gaps", "--against", str(other_checkpoint)]) == 0
    captured = capsys.readouterr()
    compared = json.loads((out / "comparison.json").read_text())
    assert compared["songs"] == ["b_gap", "song_000", "song_001"] and compared["left_out"] == []
    assert "Traceback" not in captured.err


def test_a_silent_song_annotated_all_n_is_scored_not_skipped(checkpoint, songs, tmp_path):
    """Only digital silence under an annotation naming chords is skipped: a silent track annotated N (a
    hidden track, a silence file of the set) is scored, as an all-N transcription is right there."""
    sf.write(tmp_path / "quiet.wav", np.zeros(4 * 22050, np.float32), 22050)
    (tmp_path / "quiet.lab").write_text("0 4 N\n")
    quiet = SongEntry("quiet", tmp_path / "quiet.wav", tmp_path / "quiet.lab")
    result = evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), [*songs, quiet])
    assert "quiet" in result.scores.per_song and not result.scores.skipped
    assert result.scores.per_song["quiet"]["root"] == pytest.approx(1.0)


def test_evaluate_scores_and_writes_the_transcription_predict_writes(
    checkpoint, songs, tmp_path, monkeypatch, capsys
):
    """evaluate decodes the posteriors by its own call chain (it needs the frames too): its .lab files, and
    what it scores, must be predict's transcription of the song to the byte, boundaries placed between
    frames (refine_boundaries) included. The model's posteriors are set to change chord within each song,
    C:maj to G:maj over a few frames, as an untrained model's do not."""
    posteriors = ChordPredictor.posteriors
    maj = CHORD_TYPES.index("maj")

    def changing_chord(self, audio, sample_rate=None):
        post = posteriors(self, audio, sample_rate)
        n = len(post.probs["root"])
        g = 1.0 / (1.0 + np.exp(-(np.arange(n) - n / 2 - 0.3) / 1.5))[:, None]  # the share of G:maj
        chord_type = np.full((n, post.probs["chord_type"].shape[1]), 1e-4)
        chord_type[:, maj] = 1.0
        root = np.full((n, 12), 1e-4)
        root[:, 0:1] += 1.0 - g
        root[:, 7:8] += g
        probs = {
            "chord_type": chord_type / chord_type.sum(1, keepdims=True),
            "root": root / root.sum(1, keepdims=True),
        }
        probs["bass"] = probs["root"]
        return replace(post, probs=probs)

    monkeypatch.setattr(ChordPredictor, "posteriors", changing_chord)
    data = _data_folder(songs, tmp_path)
    assert (
        chords.main(
            ["predict", "--checkpoint", str(checkpoint), str(data), "-o", str(tmp_path / "predicted")]
        )
        == 0
    )
    evaluate = [
        "evaluate",
        "--checkpoint",
        str(checkpoint),
        "--data",
        str(data),
        "-o",
        str(tmp_path / "eval"),
    ]
    capsys.readouterr()
    assert chords.main(evaluate) == 0
    assert f"wrote .lab files and scores to {tmp_path / 'eval'}" in capsys.readouterr().out  # (where to look)
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    for song in songs:
        predicted = predictor.transcribe(song.audio_path)
        assert [s.label for s in predicted] == ["C:maj", "G:maj"]
        frame = (predicted[0].end * predictor.features.frame_rate - 0.5) % 1
        assert 0.01 < frame < 0.99, predicted  # a boundary between frames, not halfway (as unrefined)
        written = (tmp_path / "eval" / f"{song.name}.lab").read_bytes()
        assert written == (tmp_path / "predicted" / f"{song.name}.lab").read_bytes()
        result = evaluate_songs(predictor, [song])
        assert result.pairs[song.name][1] == with_lab_times(predicted)  # (scored with the times written)


def test_a_comparison_names_songs_only_the_checkpoint_compared_against_scored():
    """A song the new checkpoint could not score (too short for its features) but the old one did is left
    out of the comparison and named, as one only the new checkpoint scored is."""

    def result(pairs):
        return EvaluationResult(score_songs(pairs), np.zeros((2, 2)), 10.0, 1.0, pairs)

    song = ([ChordSegment(0, 10, "C:maj")], [ChordSegment(0, 10, "C:maj")])
    comparison = compare_results(result({"a": song}), result({"a": song, "b": song}))
    assert comparison.left_out == ["b"] and list(comparison.scores.per_song) == ["a"]
    assert "left out, scored by only one of the two: b" in comparison.table()


def test_the_notes_on_trimmed_and_gap_filled_songs_show_control_characters_in_names_escaped():
    """A file name from someone else's folder may hold ESC or BEL, which printed raw recoloured the terminal
    or rang it, where the scan's and the scores' reports already show them escaped."""
    name = "s0\x1b[31mRED\x07"
    trimmed = evaluate_module.trimmed_note(
        {name: evaluate_module.TrimmedReference(f"{name}.lab", f"{name}.wav", 3.5, 3.0)}
    )
    gaps = evaluate_module.gap_filled_note({name: evaluate_module.GapFilledReference(f"{name}.lab", 2, 0.5)})
    for note in (trimmed, gaps):
        assert "\x1b" not in note and "\x07" not in note, note
        assert "s0\\x1b[31mRED\\x07.lab" in note, note


def test_a_note_on_a_song_named_with_a_line_break_keeps_each_song_one_entry():
    """A file named `new<LF>line` broke the notes' lists into lines that did not start with "- "."""
    name = "new\nline"
    note = evaluate_module.gap_filled_note({name: evaluate_module.GapFilledReference(f"{name}.lab", 2, 0.5)})
    assert all(line.startswith(("- ", "  ")) for line in note.splitlines()[1:]), note
    assert sum(line.startswith("- ") for line in note.splitlines()) == 1, note


def test_the_tables_of_a_chord_run_and_of_against_say_where_the_scores_they_leave_out_are(
    checkpoint, other_checkpoint, songs, tmp_path, capsys
):
    # They show 8 of the 12 scores; nothing said the other 4 were in the written files.
    data = _data_folder(songs, tmp_path)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    capsys.readouterr()
    assert chords.main([*argv, "--against", str(other_checkpoint)]) == 0
    against_table = capsys.readouterr().out.split("\nagainst ", 1)[1]
    rest = "the other scores (thirds, thirds_inv, triads_inv, tetrads_inv) are "
    assert rest + "not printed: -o DIR writes them to comparison.json" in against_table  # (no -o here)
    rest += "in "
    # The table a chord run prints at its end (train.py passes its evaluation folder).
    scores = score_songs({"a": ([ChordSegment(0, 10, "C:maj")], [ChordSegment(0, 10, "C:maj")])})
    run_table = format_table(
        {"model": scores}, intervals=True, others_in="RUN/evaluation/scores.md and scores.json"
    )
    assert run_table.splitlines()[-1] == rest + "RUN/evaluation/scores.md and scores.json"


def test_evaluate_against_without_output_names_no_file_it_did_not_write(checkpoint, songs, tmp_path, capsys):
    """`evaluate --against` without -o ended "the other scores (...) are in comparison.json and scores.md /
    scores.json (written with -o)": files that this run did not write. It now says how to get them; with -o,
    comparison.md names the files written beside it."""
    data = _data_folder(songs, tmp_path)
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    assert chords.main([*argv, "--against", str(checkpoint)]) == 0
    printed = capsys.readouterr().out
    assert "are in comparison.json" not in printed and "not printed: -o DIR writes them" in printed
    assert chords.main([*argv, "--against", str(checkpoint), "-o", str(tmp_path / "out")]) == 0
    assert "are in comparison.json and scores.json" in (tmp_path / "out" / "comparison.md").read_text()


def test_evaluate_and_predict_into_the_evaluation_folder_of_a_run_still_training_are_refused(
    checkpoint, songs, tmp_path, capsys
):
    """`evaluate -o RUN/evaluation` (and `predict -o` there) while RUN still trained wrote its scores and
    .lab files, which the run's own evaluation, as it ended, replaced without a word (the user's scores lost),
    leaving the other songs' .lab files beside its own as if it had scored them."""
    run = tmp_path / "run"
    run.mkdir()
    script = (
        "import sys, time; from pathlib import Path; from audiotrain.recipes._run import claim_run_folder; "
        "claim_run_folder(Path(sys.argv[1])); print('claimed', flush=True); time.sleep(60)"
    )
    live = subprocess.Popen([sys.executable, "-c", script, str(run)], stdout=subprocess.PIPE, text=True)
    data = songs[0].audio_path.parent
    predictions = tmp_path / "predictions"  # (score's: the annotations themselves)
    predictions.mkdir()
    for song in songs:
        shutil.copy(song.annotation_path, predictions)
    try:
        assert deadlines.read_line(live, "'claimed' from the child", 120).strip() == "claimed"
        capsys.readouterr()
        for argv in (
            ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(run / "evaluation")],
            ["predict", "--checkpoint", str(checkpoint), str(data), "-o", str(run / "evaluation")],
            ["score", str(predictions), "--data", str(data), "-o", str(run / "evaluation")],
            ["predict", "--checkpoint", str(checkpoint), str(songs[0].audio_path), "-o", str(run / "x.lab")],
        ):
            code = chords.main([*argv, "--overwrite"])
            err = capsys.readouterr().err
            if argv[-1].endswith("x.lab"):  # beside the run's files, none of them: written
                assert code == 0, err
                continue
            assert code == 2, err
            going = f"-o {run / 'evaluation'}: {run} is the folder of a run still going (the run of process "
            assert f"{going}{live.pid} on host" in err and "write elsewhere with -o" in err, err
            assert not (run / "evaluation").exists()
    finally:
        live.kill()
        live.wait()
    out = str(run / "evaluation")  # the run ended: its folder is the user's to write in
    assert chords.main(["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", out]) == 0


def test_scores_json_is_what_mir_eval_gives_on_the_written_lab_files(checkpoint, songs, tmp_path):
    """A paper's reader re-scores the written .lab files with mir_eval and gets scores.json's figures. The
    transcription was scored with its unrounded times and written with 6 decimals: every song differed from
    mir_eval on its files by ~1e-8, so no re-scoring ever matched."""
    import mir_eval

    out = tmp_path / "eval"
    evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), songs, out)
    per_song = json.loads((out / "scores.json").read_text())["per_song"]
    for song in songs:
        theirs = mir_eval.chord.evaluate(
            *mir_eval.io.load_labeled_intervals(str(song.annotation_path)),
            *mir_eval.io.load_labeled_intervals(str(out / f"{song.name}.lab")),
        )
        ours = per_song[song.name]
        assert ours == pytest.approx({m: theirs[m] for m in ours}, rel=1e-12, abs=1e-15), song.name


def test_scores_json_holds_the_weights_that_pool_its_per_song_scores(checkpoint, songs, tmp_path):
    """The pooled score weighs each song by the seconds each comparison scores in it (majmin leaves out
    other chords): a paper's reader pooling the per-song scores of two evaluations, or checking the pooled
    figure, had the per-song scores without those weights, and no way to get pooled from them."""
    out = tmp_path / "eval"
    evaluate_songs(ChordPredictor.from_checkpoint(checkpoint), songs, out)
    record = json.loads((out / "scores.json").read_text())
    per_song, seconds = record["per_song"], record["per_song_seconds"]
    assert set(seconds) == set(per_song)
    for metric, pooled in record["pooled"].items():
        weights = [seconds[song][metric] for song in per_song]
        correct = [per_song[song][metric] * w for song, w in zip(per_song, weights) if w > 0]
        assert sum(correct) / sum(weights) == pytest.approx(pooled, rel=1e-12), metric


def test_trim_reference_false_gives_mir_evals_figures_on_the_annotation_and_the_written_lab(
    checkpoint, other_checkpoint, songs, tmp_path, capsys
):
    """An annotation ending 1.5 s past its audio was scored up to the audio's end, 1-8 points off what
    mir_eval.chord.evaluate gives on the annotation and the written .lab, with no way to get the latter,
    which published (MIREX) figures are. --trim_reference false scores both checkpoints (--against) so."""
    import mir_eval

    data = _data_folder(songs, tmp_path)
    song = songs[0]
    duration = sf.info(song.audio_path).duration
    reference = [s for s in read_lab(song.annotation_path) if s.start < duration]
    reference[-1] = replace(reference[-1], end=duration + 1.5)
    write_lab(data / song.annotation_path.name, reference, replace=True)
    out = tmp_path / "eval"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "--tta", "0"]
    capsys.readouterr()
    untrimmed = [*argv, "--trim_reference", "false"]
    assert chords.main([*untrimmed, "-o", str(out), "--against", str(other_checkpoint)]) == 0
    printed = capsys.readouterr().out
    scores = json.loads((out / "scores.json").read_text())
    assert scores["trim_reference"] is False and scores["trimmed_references"] == {}
    assert "past the end" not in printed
    assert "references scored as their files hold them, as mir_eval.chord.evaluate" in printed.splitlines()[0]
    ref_intervals, ref_labels = mir_eval.io.load_labeled_intervals(str(data / song.annotation_path.name))
    est_intervals, est_labels = mir_eval.io.load_labeled_intervals(str(out / f"{song.name}.lab"))
    expected = mir_eval.chord.evaluate(ref_intervals, ref_labels, est_intervals, est_labels)
    figures = scores["per_song"][song.name]
    assert figures["majmin"] is not None
    for metric, figure in figures.items():
        if figure is not None:  # (null where mir_eval gives 0 for a comparison covering nothing: README)
            assert abs(figure - expected[metric]) < 1e-9, metric
    # --against's checkpoint scored the same way: as it scores alone with the flag.
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["trim_reference"] is False
    alone = tmp_path / "alone"
    assert chords.main([*untrimmed[:2], str(other_checkpoint), *untrimmed[3:], "-o", str(alone)]) == 0
    against = json.loads((alone / "scores.json").read_text())["pooled"]
    assert comparison["metrics"]["majmin"]["against"] == pytest.approx(against["majmin"], abs=1e-12)
    # Without the flag: today's figures, the reference trimmed to the audio and listed.
    capsys.readouterr()
    assert chords.main([*argv, "-o", str(tmp_path / "trimmed")]) == 0
    printed = capsys.readouterr().out
    scores = json.loads((tmp_path / "trimmed" / "scores.json").read_text())
    assert scores["trim_reference"] is True and list(scores["trimmed_references"]) == [song.name]
    # (the trailing N of the 1.5 s, padded with N by mir_eval, counted right there)
    assert abs(scores["per_song"][song.name]["majmin"] - expected["majmin"]) > 0.01
    assert "trimmed to the audio's end" in printed.splitlines()[0]


def test_two_results_scored_one_trimmed_and_one_not_are_not_compared():
    """compare_results of a result trimmed to its audio and one scored as mir_eval scores the files would
    report the trimming's difference as the models'."""
    pair = ([ChordSegment(0.0, 2.0, "C:maj")], [ChordSegment(0.0, 1.5, "C:maj")])
    trimmed, untrimmed = (
        EvaluationResult(score_songs({"a": pair}), np.zeros((1, 1)), 2.0, 1.0, {"a": pair}) for _ in range(2)
    )
    untrimmed.trim_reference = False
    with pytest.raises(ValueError, match="trim_reference True and False: score both the same way"):
        compare_results(trimmed, untrimmed)
    assert compare_results(untrimmed, untrimmed).to_dict()["trim_reference"] is False


def test_an_evaluation_a_full_disk_stopped_says_what_is_left_and_the_command_that_writes_it_all(
    checkpoint, songs, tmp_path, monkeypatch, capsys
):
    """evaluate -o OUT on a disk that filled after scores.json was written ended 'cannot write OUT/x.lab: no
    space left on device', and the same command, once there was room, was refused ('refusing to replace
    OUT/scores.json: written earlier (or by hand)'), though --help says it goes on. The error says that OUT
    holds part of this evaluation's files, and that the same command with --overwrite writes them all."""
    import errno

    data = tmp_path / "data"
    data.mkdir()
    for song in songs:
        shutil.copy(song.audio_path, data)
        shutil.copy(song.annotation_path, data)
    out = tmp_path / "out"
    argv = ["evaluate", "--checkpoint", str(checkpoint), "--data", str(data), "-o", str(out)]
    real_write_lab = evaluate_module.write_lab

    def full(*args, **options):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(evaluate_module, "write_lab", full)
    monkeypatch.delenv("AUDIOTRAIN_TRACEBACK", raising=False)
    capsys.readouterr()
    assert chords.main(argv) == 1
    err = capsys.readouterr().err
    assert (
        f"{out} holds part of this evaluation's files; once there is room, run the same command with " in err
    )
    assert "--overwrite (it replaces them)" in err, err
    monkeypatch.setattr(evaluate_module, "write_lab", real_write_lab)
    assert chords.main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert sorted(path.name for path in out.glob("*.lab")) == sorted(
        f"{s.audio_path.stem}.lab" for s in songs
    )
