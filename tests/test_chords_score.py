"""`chords score` from the user's side: .lab transcriptions a musician already has (from predict, Chordino,
another tool) scored against their own annotations, without a checkpoint or audio."""

import json
import os

from audiotrain.recipes import chords

from tests.other_users import closed_to_this_user

REFERENCE = "0.0 2.0 C:maj\n2.0 4.0 G:maj\n4.0 6.0 A:min\n6.0 8.0 F:maj\n"
#: The same chords, each 0.5 s late (and N before): 6 of the 8 annotated seconds right.
SHIFTED = "0.0 0.5 N\n0.5 2.5 C:maj\n2.5 4.5 G:maj\n4.5 6.5 A:min\n6.5 8.0 F:maj\n"


def _folders(tmp_path, predictions, annotations):
    """A folder of transcriptions and one of annotations, {stem: text} each."""
    for folder, files in (("pred", predictions), ("ann", annotations)):
        (tmp_path / folder).mkdir()
        for stem, text in files.items():
            (tmp_path / folder / f"{stem}.lab").write_text(text)
    return tmp_path / "pred", tmp_path / "ann"


def _majmin(out):
    return json.loads((out / "scores.json").read_text())["per_song"]


def test_a_transcription_equal_to_its_annotation_scores_100_and_a_shifted_one_less(tmp_path, capsys):
    pred, ann = _folders(
        tmp_path, {"same": REFERENCE, "late": SHIFTED}, {"same": REFERENCE, "late": REFERENCE}
    )
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "2 songs scored" in printed.out and "| majmin | 87.50 |" in printed.out  # (8 + 6) of 16 s
    per_song = _majmin(out)
    assert per_song["same"]["majmin"] == 1.0 and per_song["late"]["majmin"] == 0.75
    scores_md = (out / "scores.md").read_text()
    assert scores_md.startswith(f"Scored: the transcriptions in {pred} against the annotations in {ann}")


def test_songs_without_a_transcription_and_transcriptions_without_a_song_are_counted_and_listed(
    tmp_path, capsys
):
    pred, ann = _folders(
        tmp_path,
        {"song": REFERENCE, "demo take": REFERENCE},
        {"Song": REFERENCE, "b": REFERENCE, "c": REFERENCE},
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 1
    printed = capsys.readouterr()
    assert "not scored: 2 annotations without a prediction, 1 prediction without an annotation" in printed.err
    assert "exit status 1" in printed.err
    assert f"- b: annotation {ann / 'b.lab'} has no prediction of its name in {pred}" in printed.out
    assert f"prediction {pred / 'demo take.lab'} has no annotation of its name in {ann}" in printed.out
    assert "1 song scored" in printed.out  # song.lab pairs with Song.lab: case ignored, as evaluate pairs


def test_an_output_folder_written_before_is_not_replaced_unless_asked(tmp_path, capsys):
    pred, ann = _folders(tmp_path, {"a": SHIFTED}, {"a": REFERENCE})
    argv = ["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "out")]
    assert chords.main(argv) == 0
    (tmp_path / "out" / "scores.md").write_text("my notes")
    capsys.readouterr()
    assert chords.main(argv) == 2
    assert "refusing to replace" in capsys.readouterr().err
    assert (tmp_path / "out" / "scores.md").read_text() == "my notes"
    assert chords.main([*argv, "--overwrite"]) == 0
    assert (tmp_path / "out" / "scores.md").read_text() != "my notes"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(pred), "--overwrite"]) == 2
    assert "is the PREDICTIONS folder" in capsys.readouterr().err  # (its .lab files are the user's)


def test_another_users_scores_in_a_shared_sticky_folder_are_refused_in_one_line_and_kept(
    tmp_path, capsys, monkeypatch
):
    """A class's hand-in folder with the sticky bit (as /tmp), where students score into one folder: the
    second student's `score -o FOLDER --overwrite` stopped with a traceback ending in "PermissionError:
    [Errno 1] Operation not permitted", as the kernel refused to remove the first one's scores.json; without
    --overwrite the refusal suggested --overwrite, which could not work."""
    pred, ann = _folders(tmp_path, {"a": SHIFTED}, {"a": REFERENCE})
    shared = tmp_path / "hand_in"
    shared.mkdir()
    shared.chmod(0o1777)
    argv = ["score", str(pred), "--data", str(ann), "-o", str(shared)]
    assert chords.main(argv) == 0  # the first student's scores
    first = (shared / "scores.json").read_bytes()
    another_user = os.stat(shared / "scores.json").st_uid + 1
    monkeypatch.setattr(os, "geteuid", lambda: another_user)  # (root may replace anyone's file: as a user)
    capsys.readouterr()
    for flags in ([], ["--overwrite"]):
        assert chords.main([*argv, *flags]) == 2
        error = capsys.readouterr().err
        assert error.startswith(f"error: --overwrite cannot replace {shared / 'a.lab'}"), error
        assert f"in {shared}, a folder with the sticky bit" in error and "write elsewhere" in error
    assert (shared / "scores.json").read_bytes() == first


def test_an_output_folder_inside_another_users_closed_folder_is_one_line_naming_it(
    tmp_path, capsys, monkeypatch
):
    """In a class's shared folder, a student's `score -o runs/mine` where runs/ is another student's (made
    under umask 077) stopped with a traceback ending in "PermissionError: [Errno 13] Permission denied:
    'runs/mine'"; predict, evaluate and train's --run_dir the same."""
    pred, ann = _folders(tmp_path, {"a": SHIFTED}, {"a": REFERENCE})
    closed = tmp_path / "runs"
    closed.mkdir()
    closed_to_this_user(monkeypatch, closed)
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(closed / "mine")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: -o {closed / 'mine'}: cannot look into {closed} (Permission denied)")
    assert "another user's folder?" in error


def test_an_output_folder_that_is_a_link_into_another_users_closed_folder_is_one_line_naming_it(
    tmp_path, capsys, monkeypatch
):
    """`score -o mine`, mine a link to runs/mine where runs/ is another student's (umask 077), passed the
    check (which looked at the link itself) and stopped with a traceback ending in "PermissionError: [Errno
    13] Permission denied: 'mine'"; predict, evaluate and train's --run_dir the same."""
    pred, ann = _folders(tmp_path, {"a": SHIFTED}, {"a": REFERENCE})
    closed = tmp_path / "runs"
    (closed / "mine").mkdir(parents=True)
    (tmp_path / "mine").symlink_to(closed / "mine")
    closed_to_this_user(monkeypatch, closed)
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "mine")]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"error: -o {tmp_path / 'mine'}: cannot look into {closed} (Permission denied)")
    assert "another user's folder?" in error


def test_a_malformed_line_is_a_one_line_error_naming_the_file_and_line(tmp_path, capsys):
    pred, ann = _folders(tmp_path, {"a": "0.0 1.0 C:maj\n1.0 x G:maj\n"}, {"a": REFERENCE})
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    error = capsys.readouterr().err.splitlines()[0]
    assert error.startswith(f"error: {pred / 'a.lab'}, line 2: ")
    (pred / "a.lab").write_text(REFERENCE)
    (ann / "a.lab").write_bytes(b"0.0 8.0 C:maj\n\xff\n")
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    assert str(ann / "a.lab") in capsys.readouterr().err.splitlines()[0]


def test_one_transcription_against_one_annotation_and_against_another_transcription(tmp_path, capsys):
    (tmp_path / "take1.lab").write_text(REFERENCE)
    (tmp_path / "chordino.lab").write_text(SHIFTED)
    (tmp_path / "mine.lab").write_text(REFERENCE)
    argv = ["score", str(tmp_path / "take1.lab"), "--data", str(tmp_path / "mine.lab")]
    assert chords.main([*argv, "--against", str(tmp_path / "chordino.lab")]) == 0
    printed = capsys.readouterr().out
    assert "| majmin | 100.00 | 75.00 | +25.00 |" in printed
    assert "are not printed: -o DIR writes them" in printed


def test_score_is_in_the_recipes_help(capsys):
    assert chords.main(["--help"]) == 0
    assert "  score  " in capsys.readouterr().out
    assert chords.main(["score", "--help"]) == 0
    assert "No audio is read" in capsys.readouterr().out


def test_a_transcription_two_annotations_could_be_is_listed_with_what_to_do_and_not_paired(tmp_path, capsys):
    for folder in ("ann/live", "ann/studio", "pred"):
        (tmp_path / folder).mkdir(parents=True)
    for path in ("ann/live/take.lab", "ann/studio/take.lab", "pred/take.lab", "ann/live/b.lab", "pred/b.lab"):
        (tmp_path / path).write_text(REFERENCE)
    assert chords.main(["score", str(tmp_path / "pred"), "--data", str(tmp_path / "ann")]) == 1
    printed = capsys.readouterr()
    assert "its name matches 2 annotations in" in printed.out and "mirrors its annotation's" in printed.out
    assert "pairs file" not in printed.out  # (evaluate's --pairs: not a flag of score)
    assert "1 prediction paired with several annotations" in printed.err


def test_an_annotation_past_the_transcriptions_end_is_scored_up_to_it_as_evaluate_scores_it(tmp_path, capsys):
    """predict's .lab ends at its audio's end; evaluate trims a reference that runs past the audio by 2 s at
    most to it. score scored that overhang against N: the same transcription scored 80 % here where
    evaluate of the checkpoint that wrote it said 100 %."""
    pred, ann = _folders(tmp_path, {"a": REFERENCE}, {"a": REFERENCE.replace("6.0 8.0 F", "6.0 10.0 F")})
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert _majmin(out)["a"]["majmin"] == 1.0
    assert "1 reference runs past the end of the transcription" in printed
    assert f"a.lab runs 2.000 s past {pred / 'a.lab'}: scored up to 8.000 s" in printed
    assert "scored up to the transcription's end" in (out / "scores.md").read_text()


def test_an_output_folder_that_holds_the_transcriptions_is_refused_naming_them(tmp_path, capsys):
    """score runs/x/pred --data ann -o runs/x read nothing under -o, the transcriptions included, and said
    of every annotation that it 'has no prediction of its name' in the folder that held them all."""
    pred, ann = _folders(tmp_path, {"a": REFERENCE}, {"a": REFERENCE})
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert f"-o {tmp_path} holds the PREDICTIONS {pred}" in error and "has no prediction" not in error


def test_transcriptions_compared_inside_the_annotations_folder_are_not_read_as_annotations(tmp_path, capsys):
    """score ann/model --data ann --against ann/chordino read chordino's .lab files as annotations: each of
    model's transcriptions matched two ('a.lab, chordino/a.lab') and none was scored."""
    (tmp_path / "ann" / "model").mkdir(parents=True)
    (tmp_path / "ann" / "chordino").mkdir()
    for path, text in (("a.lab", REFERENCE), ("model/a.lab", REFERENCE), ("chordino/a.lab", SHIFTED)):
        (tmp_path / "ann" / path).write_text(text)
    ann = tmp_path / "ann"
    argv = ["score", str(ann / "model"), "--data", str(ann), "--against", str(ann / "chordino")]
    assert chords.main(argv) == 0
    assert "| majmin | 100.00 | 75.00 | +25.00 |" in capsys.readouterr().out


def test_an_empty_transcription_or_annotation_is_listed_as_not_scored_and_the_others_are_scored(
    tmp_path, capsys
):
    """An empty .lab (a transcription of silence written by another tool, an annotation not yet written)
    stopped the whole command with "no chord segments" (exit status 2): one file cost the other songs."""
    pred, ann = _folders(
        tmp_path,
        {"a": REFERENCE, "silent": "", "b": REFERENCE},
        {"a": REFERENCE, "silent": REFERENCE, "b": "0.0 0.0 C:maj\n"},
    )
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 1
    printed = capsys.readouterr()
    assert "1 song scored" in printed.out
    assert f"- silent: {pred / 'silent.lab'}: no chord segments" in printed.out
    assert f"- b: {ann / 'b.lab'}: no chord segments (its one segment is zero-length)" in printed.out
    assert "not scored: 2 empty .lab files (listed on standard output" in printed.err
    scores = json.loads((out / "scores.json").read_text())
    assert list(scores["per_song"]) == ["a"] and {s["song"] for s in scores["skipped"]} == {"silent", "b"}


def test_two_songs_whose_names_differ_in_case_each_pair_with_their_own_annotation(tmp_path, capsys):
    # predict writes `Song.lab` and `song.lab` for two songs where the file system tells case apart (Linux):
    # each is scored against its own annotation, never against the other song's.
    pred, ann = _folders(tmp_path, {"song": SHIFTED}, {"Song": REFERENCE, "song": SHIFTED})
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "one")]) == 1
    printed = capsys.readouterr()
    assert _majmin(tmp_path / "one") == {"song": _majmin(tmp_path / "one")["song"]}
    assert _majmin(tmp_path / "one")["song"]["majmin"] == 1.0
    assert f"- Song: annotation {ann / 'Song.lab'} has no prediction of its name in {pred}" in printed.out
    (pred / "Song.lab").write_text(REFERENCE)
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "both")]) == 0
    assert {song: scores["majmin"] for song, scores in _majmin(tmp_path / "both").items()} == {
        "Song": 1.0,
        "song": 1.0,
    }
    # A name that matches both only loosely is not given either of them by a guess.
    (pred / "SONG.lab").write_text(REFERENCE)
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 1
    assert f"{pred / 'SONG.lab'}: its name matches 2 annotations in {ann} (Song.lab, song.lab)" in (
        capsys.readouterr().out
    )


def test_of_two_transcriptions_whose_names_differ_in_case_the_one_of_the_annotations_name_is_scored(
    tmp_path, capsys
):
    pred, ann = _folders(tmp_path, {"Song": REFERENCE, "song": SHIFTED, "b": REFERENCE}, {"Song": REFERENCE})
    (ann / "b.lab").write_text(REFERENCE)
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr()
    assert {song: scores["majmin"] for song, scores in _majmin(tmp_path / "out").items()} == {
        "Song": 1.0,
        "b": 1.0,
    }
    assert f"- song: prediction {pred / 'song.lab'} has no annotation of its name in {ann}" in printed.out


def test_an_annotation_in_samples_or_microseconds_is_an_error_naming_it_not_a_memory_error(tmp_path, capsys):
    """An annotation whose times are not seconds (samples, microseconds: 1e12 'seconds') was framed at 100
    frames per second over its whole span: numpy's traceback, 'Unable to allocate 364. TiB' (1e7 s took 12 GB
    and minutes); 1e300 said 'error: Maximum allowed dimension exceeded', naming no file."""
    for end in ("1e12", "1e300"):
        (tmp_path / end).mkdir()
        pred, ann = _folders(
            tmp_path / end, {"a": REFERENCE}, {"a": REFERENCE.replace("6.0 8.0", f"6.0 {end}")}
        )
        assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
        error = capsys.readouterr().err.splitlines()[0]
        assert error.startswith(f"error: {ann / 'a.lab'}: its last segment ends at {float(end):g} s"), error
        assert "seconds" in error and str(pred / "a.lab") in error
    jams = {
        "annotations": [
            {
                "namespace": "chord",
                "data": [{"time": 0.0, "duration": 1e12, "value": "C:maj", "confidence": 1.0}],
            }
        ]
    }
    (ann / "a.lab").unlink()
    (ann / "a.jams").write_text(json.dumps(jams))
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    assert capsys.readouterr().err.startswith(f"error: {ann / 'a.jams'}: its last segment ends at 1e+12 s")


def test_a_jams_observation_giving_its_chord_twice_is_an_error_not_the_last_one_without_a_word(
    tmp_path, capsys
):
    """json keeps the last of a key given twice: an observation '"value": "A:min", "value": "C:maj"' (a hand
    edit, a merge) was scored as C:maj, the song's score lower, nothing said."""
    pred, ann = _folders(tmp_path, {"a": REFERENCE}, {})
    observations = [
        '{"time": 0.0, "duration": 2.0, "value": "C:maj"}',
        '{"time": 2.0, "duration": 6.0, "value": "G:maj", "value": "A:min"}',
    ]
    (ann / "a.jams").write_text(
        '{"annotations": [{"namespace": "chord", "data": [' + ", ".join(observations) + "]}]}"
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    error = capsys.readouterr().err.splitlines()[0]
    assert (
        error == f"error: {ann / 'a.jams'}: 'value' given twice in one object; keep one (the last would win "
        "without a word)"
    )


def test_a_transcription_in_milliseconds_is_noted_not_scored_without_a_word(tmp_path, capsys):
    """Another tool's .lab in milliseconds ('0 2000 C:maj' for 2 s) was scored over its annotation's 8 s:
    its first segment, C:maj, over the whole song; 25 %, exit status 0 and nothing said."""
    in_ms = "0 2000 C:maj\n2000 4000 G:maj\n4000 6000 A:min\n6000 8000 F:maj\n"
    pred, ann = _folders(tmp_path, {"ms": in_ms, "s": REFERENCE}, {"ms": REFERENCE, "s": REFERENCE})
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 0
    err = capsys.readouterr().err
    assert "note: 1 transcription far past its annotation's end" in err
    assert "  ms: its transcription ends at 8000 s, its annotation at 8 s (its times in milliseconds?" in err
    assert "  s:" not in err


def test_transcriptions_written_as_jams_are_named_as_not_read_not_called_missing(tmp_path, capsys):
    """`predict SONGS -o pred --format jams` then `score pred --data SONGS`: "error: no transcription in pred
    pairs with an annotation ...: song: annotation song.lab has no prediction of its name in pred", though
    pred/song.jams is its prediction; score reads .lab transcriptions, and now says so."""
    from audiotrain.chords.lab import ChordSegment, write_jams

    pred, ann = _folders(tmp_path, {}, {"song": REFERENCE})
    write_jams(pred / "song.jams", [ChordSegment(0.0, 8.0, "C:maj")])
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert f"annotation {ann / 'song.lab'} has no prediction of its name in {pred}" in err, err
    assert f"{pred} holds 1 .jams/.jamz file, which score does not read" in err, err
    assert "--format lab" in err, err


def _mir_eval_figures(annotation, transcription):
    """mir_eval.chord.evaluate on the two files as they are, as a researcher comparing with MIREX runs it."""
    import mir_eval

    ref_intervals, ref_labels = mir_eval.io.load_labeled_intervals(str(annotation))
    est_intervals, est_labels = mir_eval.io.load_labeled_intervals(str(transcription))
    return mir_eval.chord.evaluate(ref_intervals, ref_labels, est_intervals, est_labels)


def test_trim_reference_false_scores_an_annotation_past_the_transcription_as_mir_eval_does(tmp_path, capsys):
    """An annotation ending 1.5 s past its transcription was scored up to the transcription's end, with no
    way to get the figures mir_eval gives on the files, which published (MIREX) results are."""
    late = REFERENCE.replace("6.0 8.0 F", "6.0 9.5 F")
    pred, ann = _folders(tmp_path, {"a": REFERENCE}, {"a": late})
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "a.lab").write_text(SHIFTED)
    out = tmp_path / "out"
    argv = ["score", str(pred), "--data", str(ann), "--against", str(tmp_path / "other")]
    assert chords.main([*argv, "-o", str(out), "--trim_reference", "false"]) == 0
    printed = capsys.readouterr().out
    expected = _mir_eval_figures(ann / "a.lab", pred / "a.lab")
    scores = json.loads((out / "scores.json").read_text())
    for metric, figure in scores["per_song"]["a"].items():
        assert abs(figure - expected[metric]) < 1e-9, metric
    assert scores["per_song"]["a"]["majmin"] == 8.0 / 9.5 and scores["trimmed_references"] == {}
    assert scores["trim_reference"] is False and "past the end" not in printed
    assert "references scored as their files hold them, as mir_eval.chord.evaluate" in printed.splitlines()[0]
    # --against's transcriptions are scored the same way: 6 of 9.5 s right, as mir_eval gives it.
    comparison = json.loads((out / "comparison.json").read_text())
    against = _mir_eval_figures(ann / "a.lab", tmp_path / "other" / "a.lab")["majmin"]
    assert comparison["trim_reference"] is False
    assert abs(comparison["metrics"]["majmin"]["against"] - against) < 1e-9
    # Without the flag: today's figures, trimmed and listed, and said so.
    assert chords.main([*argv, "-o", str(tmp_path / "out2")]) == 0
    printed = capsys.readouterr().out
    scores = json.loads((tmp_path / "out2" / "scores.json").read_text())
    assert scores["per_song"]["a"]["majmin"] == 1.0 and scores["trim_reference"] is True
    assert "1 reference runs past the end of the transcription" in printed
    assert "trimmed to the transcription's end" in printed.splitlines()[0]
    comparison = json.loads((tmp_path / "out2" / "comparison.json").read_text())
    assert comparison["metrics"]["majmin"]["against"] == 0.75
    assert chords.main(["score", "--help"]) == 0
    assert "--trim_reference" in capsys.readouterr().out


def test_a_transcription_is_never_scored_against_another_artists_annotation_of_its_name(tmp_path, capsys):
    """predict's tree of Queen's songs scored against Zweieck's chordlab:
    `Queen/Greatest_Hits_II/01_-_Intro.lab` was scored against `Zweieck/Zwielicht/01_-_Intro.lab`, another
    song, and lowered the scores without a word. Folders that share no name do not pair: the transcription
    is listed, not scored."""
    pred, ann = tmp_path / "pred", tmp_path / "chordlab"
    queens, zweiecks = pred / "Queen" / "Greatest_Hits_II", ann / "Zweieck" / "Zwielicht"
    for folder, text in ((queens, SHIFTED), (zweiecks, REFERENCE)):
        folder.mkdir(parents=True)
        (folder / "01_-_Intro.lab").write_text(text)
    for folder in (pred / "Queen" / "Greatest_Hits_II", ann / "Queen" / "Greatest_Hits_I"):
        (folder / "02_-_Bicycle.lab").parent.mkdir(parents=True, exist_ok=True)
        (folder / "02_-_Bicycle.lab").write_text(REFERENCE)
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / "out")]) == 1
    printed = capsys.readouterr()
    assert "1 song scored" in printed.out and "| majmin | 100.00 |" in printed.out
    assert set(_majmin(tmp_path / "out")) == {"Queen/Greatest_Hits_I/02_-_Bicycle"}  # named by annotation
    assert "Zweieck/Zwielicht/01_-_Intro.lab" in printed.out + printed.err


def test_billboards_transcriptions_that_no_name_pairs_are_told_how_to_score_them(tmp_path, capsys):
    """predict's transcriptions of Billboard's `0003/audio.wav` (`pred/0003/audio.lab`) scored against its
    `0003/majmin.lab`: "no transcription ... pairs with an annotation", and no word of what does: score
    pairs by name only (no pairs file), so each file alone, or evaluate with the pairs file."""
    for song in ("0003", "0004"):
        (tmp_path / "pred" / song).mkdir(parents=True)
        (tmp_path / "pred" / song / "audio.lab").write_text(REFERENCE)
        (tmp_path / "billboard" / song).mkdir(parents=True)
        for reduction in ("full", "majmin"):
            (tmp_path / "billboard" / song / f"{reduction}.lab").write_text(REFERENCE)
    pred, ann = tmp_path / "pred", tmp_path / "billboard"
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert f"no transcription in {pred} pairs with an annotation in {ann}" in err
    assert "score pairs files by name: where no name pairs them (McGill Billboard's NNNN/majmin.lab), " in err
    assert f"score each alone (score {pred / '0003' / 'audio.lab'} --data ANNOTATION.lab)" in err
    assert "or evaluate the checkpoint with --pairs FILE.csv" in err
    one = ["score", str(pred / "0003" / "audio.lab"), "--data", str(ann / "0003" / "majmin.lab")]
    assert chords.main(one) == 0
    assert "| majmin | 100.00 |" in capsys.readouterr().out


def test_scores_md_lists_each_chord_types_precision_recall_and_f1(tmp_path):
    """A musician scoring a jazz set's extended chords found the chord types' precision, recall and F1 only
    in scores.json's frames: scores.md, the file to read, had the mir_eval table and the costliest errors."""
    reference = "0.0 2.0 C:9\n2.0 4.0 F:maj9\n4.0 6.0 D:min11\n6.0 8.0 G:sus4(b7)\n8.0 10.0 X\n"
    estimate = "0.0 2.0 C:7\n2.0 4.0 F:maj9\n4.0 6.0 D:min7\n6.0 8.0 G:sus4(b7)\n8.0 10.0 C:maj\n"
    pred, ann = _folders(tmp_path, {"tune": estimate}, {"tune": reference})
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 0
    scores_md = (out / "scores.md").read_text()
    frames = json.loads((out / "scores.json").read_text())["frames"]["chord_type"]
    assert frames["per_class"]["9"]["support"] == 200 and frames["per_class"]["7"]["precision"] == 0.0
    assert "| chord type | precision | recall | F1 | reference frames | transcribed frames |" in scores_md
    assert "| 9 | 0.00 | 0.00 | 0.00 | 200 | 0 |" in scores_md
    assert "| 7 | 0.00 | 0.00 | 0.00 | 0 | 200 |" in scores_md
    assert "| maj9 | 100.00 | 100.00 | 100.00 | 200 | 200 |" in scores_md
    assert "| sus4(b7) | 100.00 | 100.00 | 100.00 | 200 | 200 |" in scores_md
    assert f"macro F1 {100 * frames['macro_f1']:.2f}" in scores_md
    assert "| X |" not in scores_md  # the reference's X is left out, as mir_eval leaves it out


def test_score_names_the_reference_labels_its_frame_figures_read_as_another_chord(tmp_path, capsys):
    """evaluate's scan listed the annotations' labels that count as X or as a reduced chord type; score read
    the same annotations into its frame figures (the chord types' precision, recall, F1) and said nothing."""
    reference = "0.0 2.0 C:maj\n2.0 4.0 B:7(*3)\n4.0 6.0 C:aug(b7)\n"
    pred, ann = _folders(tmp_path, {"tune": "0.0 6.0 C:maj\n"}, {"tune": reference})
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 0
    err = capsys.readouterr().err
    assert f"B:7(*3): 1 segment, 2.0 s, at 2.00 s of {ann / 'tune.lab'}" in err
    assert f"C:aug(b7) → C:aug: 1 segment, 2.0 s, at 4.00 s of {ann / 'tune.lab'}" in err
    assert "the frame figures read these annotation labels as the chord types train them" in err


def test_transcriptions_saying_x_are_told_that_mirex_counts_x_as_right(tmp_path, capsys):
    """A transcription of X (unknown chord) alone scored mirex 100 beside root 0, as mir_eval scores X, and
    nothing said why: a musician read 100 as the model's, not as mir_eval's rule for X."""
    pred, ann = _folders(tmp_path, {"tune": "0.0 6.0 X\n6.0 8.0 F:maj\n"}, {"tune": REFERENCE})
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "| mirex | 100.00 |" in printed and "| root | 25.00 |" in printed
    note = (
        "note: the transcriptions say X (unknown chord) over 6.0 s, 75.0% of the time scored: mir_eval's "
        "mirex counts an estimated X as right against any chord"
    )
    assert note in printed and note in (out / "scores.md").read_text()
    capsys.readouterr()
    (tmp_path / "b").mkdir()
    pred2, _ = _folders(tmp_path / "b", {"tune": REFERENCE}, {})
    assert chords.main(["score", str(pred2), "--data", str(ann)]) == 0
    assert "say X" not in capsys.readouterr().out


def test_one_jams_transcription_is_named_as_not_read_not_as_a_bad_lab_line(tmp_path, capsys):
    """`score other_tool/song.jams --data song.lab` (another tool's JAMS output, one file): "error:
    song.jams, line 1: start and end must be numbers in seconds, got '{"file_metadata": ...'", as if a .lab
    were damaged; README says .jams transcriptions are not read and that score says so."""
    from audiotrain.chords.lab import ChordSegment, write_jams

    pred, ann = _folders(tmp_path, {}, {"song": REFERENCE})
    write_jams(pred / "song.jams", [ChordSegment(0.0, 8.0, "C:maj")])
    assert chords.main(["score", str(pred / "song.jams"), "--data", str(ann / "song.lab")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {pred / 'song.jams'}: a JAMS file, which score does not read"), err
    assert "line 1" not in err and "'start end label'" in err, err


def test_chordino_csv_files_beside_no_lab_are_named_as_not_read_not_called_missing(tmp_path, capsys):
    """Sonic Annotator's Chordino CSVs (`time,"label"` rows) in a folder: "song: annotation song.lab has no
    prediction of its name in chordino", though chordino/song.csv is there; now the CSV is named as a
    format score does not read, with the .lab line it wants."""
    pred, ann = _folders(tmp_path, {}, {"song": REFERENCE})
    (pred / "song.csv").write_text('0.000000000,"C"\n2.000000000,"G"\n4.000000000,"Am"\n')
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert f"{pred} holds 1 .csv file, which score does not read" in err, err
    assert "'start end label'" in err, err


def test_a_gap_in_a_transcription_names_score_s_flag_and_once_read_as_n_says_so(tmp_path, capsys):
    """Another tool's .lab with a gap (C until 2 s, A:min from 3 s): score said "read gaps as N: evaluate
    --allow_gaps, train --data.allow_gaps true, ...", not score's own flag; and with `score --allow_gaps` the
    gap was read as N without a word, where mir_eval on that file reads it as C going on (mirex 37.5 here,
    mir_eval's 50): the annotations' gaps were listed so, the transcription's not."""
    pred, ann = _folders(
        tmp_path, {"song": "0.0 2.0 C:maj\n3.0 8.0 A:min\n"}, {"song": "0.0 2.0 C:maj\n2.0 8.0 A:min7\n"}
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    assert "score --allow_gaps" in capsys.readouterr().err
    assert chords.main(["score", str(pred), "--data", str(ann), "--allow_gaps"]) == 0
    err = capsys.readouterr().err
    assert f"note: {pred / 'song.lab'}: 1 gap (1.000 s) read as N (--allow_gaps)" in err, err
    assert "mir_eval on the file as it is reads a gap as the chord before it going on" in err, err


def test_a_bass_another_tool_writes_as_a_note_is_said_to_be_read_as_its_interval(tmp_path, capsys):
    """Chordino writes a slash chord's bass as a note ('Bb/D'), which mir_eval refuses ("Invalid chord label:
    Bb/D"); score read it as 'Bb:maj/3' without a word, so the figures had no mir_eval twin on the tool's own
    file and the user did not learn why. Now a note names the file, the count and the first line."""
    pred, ann = _folders(
        tmp_path,
        {"song": "0.0 4.0 C:maj\n4.0 6.0 Bb/D\n6.0 8.0 C/G\n"},
        {"song": "0.0 4.0 C:maj\n4.0 6.0 Bb:maj/3\n6.0 8.0 C:maj/5\n"},
    )
    out = tmp_path / "out"
    assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"note: {pred / 'song.lab'}: 2 labels write the bass as a note" in err, err
    assert "line 2: 'Bb/D' as 'Bb:maj/3'" in err and "mir_eval refuses" in err, err
    assert "Bb:maj/3" in (out / "song.lab").read_text()


def test_several_folders_of_transcriptions_are_told_how_to_compare_them_not_called_unrecognized(
    tmp_path, capsys
):
    """`score model madmom chordino --data ann`, to set three tools side by side: "error: unrecognized
    arguments: madmom chordino", which said neither that score takes one PREDICTIONS nor how to compare."""
    pred, ann = _folders(tmp_path, {"song": REFERENCE}, {"song": REFERENCE})
    other = tmp_path / "other"
    other.mkdir()
    (other / "song.lab").write_text(SHIFTED)
    try:
        status = chords.main(["score", str(pred), str(other), "--data", str(ann)])
    except SystemExit as stop:
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments" not in err, err
    assert "score takes one PREDICTIONS" in err and f"--against {other}" in err, err


def test_labels_alone_one_a_frame_as_essentia_gives_them_are_told_what_a_lab_line_holds(tmp_path, capsys):
    """Essentia's ChordsDetection gives one label a frame ('C', 'Am', 'G#m'), without times; written one a
    line they were refused with "line 1: expected 'start end label' (3 fields), got 1: 'C'" and nothing
    else, where a 'time label' line is told how to become a segment."""
    pred, ann = _folders(tmp_path, {"song": "C\nC\nAm\nG#m\n"}, {"song": REFERENCE})
    assert chords.main(["score", str(pred / "song.lab"), "--data", str(ann / "song.lab")]) == 2
    err = capsys.readouterr().err
    expected = f"error: {pred / 'song.lab'}, line 1: expected 'start end label' (3 fields), got 1"
    assert err.startswith(expected), err
    assert "a label alone" in err and "Essentia" in err and "hopSize / sampleRate" in err, err


def test_runs_compare_of_score_outputs_says_how_score_compares_them(tmp_path, capsys, monkeypatch):
    """Two tools scored with `score ... -o a` and `-o b`, then `audiotrain runs compare a b` to set them side
    by side: "not a run to compare: holds no run record (config.json, ...)", which did not say what compares
    two score outputs."""
    from audiotrain.__main__ import main

    pred, ann = _folders(tmp_path, {"song": REFERENCE}, {"song": REFERENCE})
    for name in ("a", "b"):
        assert chords.main(["score", str(pred), "--data", str(ann), "-o", str(tmp_path / name)]) == 0
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    try:
        status = main(["runs", "compare", "a", "b"])
    except SystemExit as stop:
        status = stop.code
    assert status == 2
    err = capsys.readouterr().err
    assert "a: not a run to compare: holds no run record" in err, err
    assert "a/scores.json is an evaluate or score -o output" in err and "--against" in err, err


def test_every_transcription_that_cannot_be_read_is_named_at_once_not_one_a_run(tmp_path, capsys):
    """A folder of another tool's .lab files with lead-sheet labels in two of them: score named only the
    first ("song1.lab, line 2: invalid chord label 'Am7'"), so the user learnt of song2.lab's 'Gm' only
    after correcting song1 and running again; now both files are named in the one error."""
    pred, ann = _folders(
        tmp_path,
        {"song1": "0 2 C\n2 8 Am7\n", "song2": "0 2 C\n2 8 Gm\n", "song3": REFERENCE},
        {"song1": REFERENCE, "song2": REFERENCE, "song3": REFERENCE},
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {pred / 'song1.lab'}, line 2: invalid chord label 'Am7'"), err
    assert f"{pred / 'song2.lab'}, line 2: invalid chord label 'Gm'" in err, err


def test_a_folder_of_jams_transcriptions_says_once_that_score_does_not_read_them(tmp_path, capsys):
    """`predict SONGS -o pred --format jams` of several songs, then `score pred --data SONGS`: the error
    repeated "(pred holds 3 .jams/.jamz files, which score does not read: ...)", a long sentence, after each
    song it listed; it is said once now, after the list."""
    from audiotrain.chords.lab import ChordSegment, write_jams

    pred, ann = _folders(tmp_path, {}, {"a": REFERENCE, "b": REFERENCE, "c": REFERENCE})
    for stem in "abc":
        write_jams(pred / f"{stem}.jams", [ChordSegment(0.0, 8.0, "C:maj")])
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert err.count("which score does not read") == 1, err
    assert f"{pred} holds 3 .jams/.jamz files, which score does not read" in err, err
    for stem in "abc":
        assert f"annotation {ann / f'{stem}.lab'} has no prediction of its name in {pred}" in err, err


def test_transcriptions_given_as_the_data_folder_itself_are_refused_saying_so(tmp_path, capsys):
    """`score SONGS --data SONGS` (the annotations folder given twice) said of every .lab "prediction
    SONGS/x.lab has no annotation of its name in SONGS", though it was that very file."""
    _, ann = _folders(tmp_path, {}, {"a": REFERENCE, "b": REFERENCE})
    assert chords.main(["score", str(ann), "--data", str(ann)]) == 2
    err = capsys.readouterr().err
    assert f"PREDICTIONS {ann} is the --data folder" in err and "has no annotation" not in err, err


def test_a_prediction_whose_annotation_keeps_the_audio_suffix_gets_a_did_you_mean(tmp_path, capsys):
    """Annotations named song.wav.lab (predict's own name for audio sharing a stem, and some tools') and
    predict's song.lab: all 23 of a library were listed twice, 'has no annotation of its name', with no hint
    of the file meant; evaluate says 'did you mean song.wav.lab?' for the same names."""
    pred, ann = _folders(
        tmp_path,
        {"song": REFERENCE, "alone": REFERENCE, "b": REFERENCE},
        {"song.wav": REFERENCE, "b": REFERENCE},
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 1
    printed = capsys.readouterr().out
    expected = (
        f"prediction {pred / 'song.lab'} has no annotation of its name in {ann}; did you mean song.wav.lab?"
    )
    assert expected in printed, printed
    assert f"prediction {pred / 'alone.lab'} has no annotation of its name in {ann}\n" in printed
    assert "- song.wav: annotation" not in printed  # (one song, listed once: '1 of 3 songs', not '1 of 4')
    assert "the 1 of 3 songs scored" in printed, printed


def test_a_prediction_that_keeps_the_audio_suffix_gets_a_did_you_mean(tmp_path, capsys):
    """Predictions named song.wav.lab (`predict song.wav -o preds/$f.lab` in a shell loop, predict's own
    name for audio sharing a stem) against annotations song.lab: each song was listed twice, 'has no
    annotation of its name' with no hint, and 'annotation ... has no prediction of its name'."""
    pred, ann = _folders(
        tmp_path,
        {"song.wav": REFERENCE, "alone.wav": REFERENCE, "b": REFERENCE},
        {"song": REFERENCE, "b": REFERENCE},
    )
    assert chords.main(["score", str(pred), "--data", str(ann)]) == 1
    printed = capsys.readouterr().out
    expected = (
        f"prediction {pred / 'song.wav.lab'} has no annotation of its name in {ann}; did you mean song.lab?"
    )
    assert expected in printed, printed
    assert f"prediction {pred / 'alone.wav.lab'} has no annotation of its name in {ann}\n" in printed
    assert "- song: annotation" not in printed  # (one song, listed once)
    assert "the 1 of 3 songs scored" in printed, printed
