"""`chords predict` from the user's side: stopping it (Ctrl-C, SIGTERM) and going on, symlinked folders,
recordings that are silent once mixed to mono, the output format of an -o file, and names that differ only
in case. A tiny untrained model is written as a checkpoint: the chords need not be right, only written."""

import errno
import os
import re
import shlex
import signal
import subprocess
import sys
import textwrap
import unicodedata
from pathlib import Path

from audiotrain.chords.lab import read_lab
from audiotrain.recipes.chords import cli as chords
from audiotrain.recipes.chords import data as chords_data
from audiotrain.recipes.chords.predict import ChordPredictor, folds_case

import mlx.core as mx
import numpy as np
import pytest
import soundfile as sf
from child_processes import child_env
from test_recipe_chords_evaluate import _tiny_checkpoint

from tests.ticking_clock import TickingClock

SR = 22050


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return _tiny_checkpoint(tmp_path_factory.mktemp("chord_ckpt") / "ckpt", seed=0)


def _tone(path: Path, seconds: float = 1.0, channels: int = 1, sr: int = SR) -> Path:
    """A one-second A (220 Hz) at -10 dBFS, in `channels` channels of equal sign."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * sr)) / sr)
    sf.write(path, np.stack([tone] * channels, axis=1).astype(np.float32), sr)
    return path


def _predict(checkpoint, *args: str) -> int:
    try:
        return chords.main(["predict", "--checkpoint", str(checkpoint), "--tta", "0", *map(str, args)])
    except KeyboardInterrupt:  # (let through, it would end the test session)
        pytest.fail("a raw KeyboardInterrupt came out of predict")


def _songs(folder: Path, names=("a.wav", "b.wav", "c.wav")) -> Path:
    for name in names:
        _tone(folder / name)
    return folder


def _signal_while_transcribing(monkeypatch, name: str, signals: int = 1, signum=signal.SIGINT) -> None:
    """Send this process `signals` of `signum` as `name` is transcribed, as a user's Ctrl-C lands."""
    real = ChordPredictor.posteriors

    def posteriors(self, audio_path):
        if Path(audio_path).name == name:
            for _ in range(signals):
                os.kill(os.getpid(), signum)
        return real(self, audio_path)

    monkeypatch.setattr(ChordPredictor, "posteriors", posteriors)


# ---- stopping and going on -----------------------------------------------------------------------------------


def test_ctrl_c_stops_after_the_current_file_says_what_was_written_and_how_to_go_on(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Ctrl-C printed a 40-line KeyboardInterrupt traceback (exit -2) and not which files were written; a
    re-run was then refused for the outputs already there, so the only way on was --overwrite, which
    transcribed everything again."""
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    _signal_while_transcribing(monkeypatch, "a.wav")
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"Ctrl-C: stopping after {inputs / 'a.wav'} (Ctrl-C again to stop at once)" in err
    assert f"interrupted (Ctrl-C): wrote 1 of 3 .lab files to {out}; not transcribed: b.wav, c.wav" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.lab"]  # whole, and no temporary file beside it
    first = (out / "a.lab").read_bytes()
    assert read_lab(out / "a.lab")
    go_on = shlex.split(err.split("go on with: ")[1].splitlines()[0])
    assert go_on[:4] == ["python", "-m", "audiotrain.recipes.chords", "predict"]
    assert go_on[-1] == "--skip_existing"
    monkeypatch.undo()
    assert chords.main(go_on[3:]) == 0
    assert f"wrote 2 .lab files to {out}" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["a.lab", "b.lab", "c.lab"]
    assert (out / "a.lab").read_bytes() == first  # kept, not transcribed again


def test_ctrl_c_under_overwrite_says_which_files_not_transcribed_keep_an_earlier_output(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """The command printed to go on uses --skip_existing, which would keep the outputs of before this
    --overwrite run for the files it did not reach: the note says so."""
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    assert _predict(checkpoint, inputs, "-o", out) == 0
    _signal_while_transcribing(monkeypatch, "a.wav")
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out, "--overwrite") == 130
    err = capsys.readouterr().err
    assert "wrote 1 of 3 .lab files" in err and "not transcribed: b.wav, c.wav" in err
    command = shlex.split(err.split("go on with: ")[1].splitlines()[0])
    assert command[-1] == "--skip_existing"
    assert (
        "note: 2 of the files not transcribed have an output from before this run, which --skip_existing "
        "keeps; pass --overwrite instead to transcribe them all again"
    ) in err
    # The command printed runs: without the --overwrite, which --skip_existing is refused beside.
    monkeypatch.undo()
    assert chords.main(command[command.index("predict") :]) == 0
    assert "kept 3 there already (--skip_existing)" in capsys.readouterr().out  # (as the note says)


def test_an_unreadable_file_skipped_before_a_ctrl_c_is_not_listed_as_left_to_transcribe(
    checkpoint, tmp_path, monkeypatch, capsys
):
    inputs = _songs(tmp_path / "in", names=("a.wav", "b.wav", "c.wav", "d.wav"))
    (inputs / "b.wav").write_bytes(b"not audio")
    _signal_while_transcribing(monkeypatch, "c.wav")
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", tmp_path / "out") == 130
    err = capsys.readouterr().err
    assert f"skipped: {inputs / 'b.wav'}: file is not audio" in err
    assert "wrote 2 of 4 .lab files" in err and err.split("not transcribed: ")[1].startswith("d.wav\n"), err


def test_a_second_ctrl_c_stops_at_once_and_writes_nothing_of_that_file(
    checkpoint, tmp_path, monkeypatch, capsys
):
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    _signal_while_transcribing(monkeypatch, "b.wav", signals=2)
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out) == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert "wrote 1 of 3 .lab files" in err and "not transcribed: b.wav, c.wav" in err
    assert sorted(p.name for p in out.iterdir()) == ["a.lab"]


def test_ctrl_c_on_one_file_writes_nothing_and_says_so(checkpoint, tmp_path, monkeypatch, capsys):
    song = _tone(tmp_path / "song.wav")
    _signal_while_transcribing(monkeypatch, "song.wav")
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", tmp_path / "song.lab") == 130
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"interrupted (Ctrl-C) before {song} was transcribed: nothing written" in err
    assert not (tmp_path / "song.lab").exists()


def test_sigterm_stops_after_the_current_file_with_status_143(checkpoint, tmp_path):
    """SIGTERM (kill, timeout, a cluster's time limit) ended predict without a word (status -15)."""
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    script = textwrap.dedent(
        f"""
        import os, signal, sys
        from audiotrain.recipes.chords import cli
        from audiotrain.recipes.chords.predict import ChordPredictor
        real = ChordPredictor.posteriors
        def posteriors(self, path):
            if path.name == "a.wav":
                os.kill(os.getpid(), signal.SIGTERM)
            return real(self, path)
        ChordPredictor.posteriors = posteriors
        sys.exit(cli.main(["predict", "--checkpoint", {str(checkpoint)!r}, "--tta", "0", {str(inputs)!r},
                           "-o", {str(out)!r}]))
        """
    )
    env = child_env()
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 143, proc.stderr
    assert "SIGTERM: stopping after" in proc.stderr and "Traceback" not in proc.stderr
    assert "interrupted (SIGTERM): wrote 1 of 3 .lab files" in proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["a.lab"]


def test_a_folder_being_transcribed_says_how_far_it_is(checkpoint, tmp_path, monkeypatch, capsys):
    """A folder of a thousand songs took minutes without a word on stderr until "wrote 1000 .lab files":
    a line every PROGRESS_LINE_SECONDS now says how many are done and about how long is left."""
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per file
    assert _predict(checkpoint, _songs(tmp_path / "in"), "-o", tmp_path / "out") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("transcribed ")]
    assert [line.split(" in ")[0] for line in lines] == [
        "transcribed 1 of 3 files",
        "transcribed 2 of 3 files",
    ]
    assert all(line.endswith(" left") for line in lines)


def test_skip_existing_keeps_what_is_there_and_is_refused_where_it_means_nothing(
    checkpoint, tmp_path, capsys
):
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.lab").write_text("0.000000\t1.000000\tN\n")  # by hand, or an earlier run
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out, "--skip_existing") == 0
    out_text = capsys.readouterr().out
    assert "wrote 2 .lab files" in out_text and "kept 1 there already (--skip_existing)" in out_text
    assert (out / "b.lab").read_text() == "0.000000\t1.000000\tN\n"
    assert _predict(checkpoint, inputs / "b.wav", "-o", out / "b.lab", "--skip_existing") == 0
    assert f"kept {out / 'b.lab'}" in capsys.readouterr().out
    assert (out / "b.lab").read_text() == "0.000000\t1.000000\tN\n"
    # After a killed predict (which says nothing) the refusal is the only hint: it names --skip_existing.
    (out / "c.lab").unlink()
    assert _predict(checkpoint, inputs, "-o", out) == 2
    assert "pass --skip_existing to keep them and write the rest" in capsys.readouterr().err
    assert _predict(checkpoint, inputs, "-o", out, "--skip_existing", "--overwrite") == 2
    assert "--overwrite replaces earlier outputs and --skip_existing keeps them" in capsys.readouterr().err
    assert _predict(checkpoint, inputs / "b.wav", "--skip_existing") == 2
    assert "without -o the transcription is printed" in capsys.readouterr().err
    # --overwrite replaces them all: nothing is kept, and the summary says so.
    assert _predict(checkpoint, inputs, "-o", out, "--overwrite") == 0
    out_text = capsys.readouterr().out
    assert out_text.startswith(f"wrote 3 .lab files to {out} (") and "kept" not in out_text, out_text
    assert read_lab(out / "b.lab") != [] and (out / "b.lab").read_text() != "0.000000\t1.000000\tN\n"


def test_skip_existing_does_not_call_the_outputs_it_keeps_another_model_s(checkpoint, tmp_path, capsys):
    """The outputs --skip_existing keeps (a Ctrl-C'd run's) were named in a note as files 'this command did
    not write', with advice to write each model's transcriptions to a folder of their own; only a file no
    input of this command maps to is such a leftover."""
    inputs = _songs(tmp_path / "in")
    out = tmp_path / "out"
    out.mkdir()
    (out / "b.lab").write_text("0.000000\t1.000000\tN\n")  # a stopped run's output
    (out / "old_song.lab").write_text("0.000000\t1.000000\tN\n")  # no input of this command
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out, "--skip_existing") == 0
    err = capsys.readouterr().err
    assert "holds 1 .lab file this command did not write (old_song.lab)" in err, err
    assert "b.lab" not in err, err


def test_a_missing_input_or_a_folder_without_audio_is_an_error_naming_it(checkpoint, tmp_path, capsys):
    """A path that is not there is named as such (not as a folder without audio), and a folder without audio
    is an error too: exit status 2, so that a script does not go on as if songs were transcribed."""
    for missing in (tmp_path / "song.wav", tmp_path / "songs"):
        capsys.readouterr()
        assert _predict(checkpoint, missing) == 2
        assert capsys.readouterr().err == f"error: {missing} does not exist\n"
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "chords.txt").write_text("C G Am F\n")
    assert _predict(checkpoint, notes) == 2
    assert capsys.readouterr().err.startswith("error: no audio files (.aif, ")
    assert not (tmp_path / "notes-chords").exists()
    # A FIFO named like audio was searched as a folder ("no audio files in it"); reading it would block.
    fifo = tmp_path / "fifo.wav"
    os.mkfifo(fifo)
    assert _predict(checkpoint, fifo) == 2
    assert capsys.readouterr().err == (
        f"error: {fifo} is not a regular file or a folder (a FIFO or a device); predict reads audio from a "
        "file or a folder, not from stdin or a pipe: save the audio to a file\n"
    )


def test_an_input_typed_composed_finds_the_file_stored_decomposed(checkpoint, tmp_path, capsys):
    """A folder copied from a Mac holds `Café.wav` decomposed (NFD); the name typed or pasted on Linux is
    composed (NFC). predict said "error: Café.wav does not exist", naming a file `ls` shows beside it; on
    macOS, whose file systems ignore the form, the same command transcribes it."""
    _tone(tmp_path / unicodedata.normalize("NFD", "Café.wav"))
    output = tmp_path / "out.lab"
    assert _predict(checkpoint, tmp_path / unicodedata.normalize("NFC", "Café.wav"), "-o", output) == 0
    assert read_lab(output)


# ---- what a folder holds ---------------------------------------------------------------------------------------


def test_symlinked_folders_are_followed_and_a_loop_of_links_is_entered_once(checkpoint, tmp_path, capsys):
    """A library whose albums are links to another disk: album1/song2.wav was neither transcribed nor named
    (exit 0)."""
    library = tmp_path / "lib"
    _tone(library / "real" / "song1.wav")
    _tone(tmp_path / "albums" / "album1" / "song2.wav")
    (library / "album1").symlink_to(tmp_path / "albums" / "album1")
    (library / "real" / "again").symlink_to(library)  # a link back up the tree
    out = tmp_path / "out"
    capsys.readouterr()
    assert _predict(checkpoint, library, "-o", out) == 0
    captured = capsys.readouterr()
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*.lab"))
    assert written == ["album1/song2.lab", "real/song1.lab"]
    assert "wrote 2 .lab files" in captured.out
    assert "1 folder reached through links not entered" in captured.err
    assert f"{library / 'real' / 'again'} (-> {library.resolve()})" in captured.err


def test_audio_silent_once_mixed_to_mono_is_said_to_be(checkpoint, tmp_path, capsys):
    """Two channels of chords at -10 dBFS, one in inverted polarity (a miswired microphone), cancel in the mono
    mix: transcribed as N without a word, while train and evaluate list digital silence."""
    inputs = tmp_path / "in"
    tone = 0.3 * np.sin(2 * np.pi * 220 * np.arange(SR) / SR)
    inputs.mkdir()
    sf.write(inputs / "antiphase.wav", np.stack([tone, -tone], axis=1), SR)
    sf.write(inputs / "export.wav", np.zeros(SR, np.int16), SR, subtype="PCM_16")
    _tone(inputs / "fine.wav", channels=2)
    capsys.readouterr()
    assert _predict(checkpoint, inputs / "antiphase.wav") == 0
    captured = capsys.readouterr()
    assert captured.out == "0.000000\t1.000000\tN\n"
    assert "antiphase.wav is digital silence once its 2 channels are mixed to mono" in captured.err
    assert "its loudest channel alone peaks at -10.5 dBFS" in captured.err
    assert _predict(checkpoint, inputs, "-o", tmp_path / "out") == 0
    err = capsys.readouterr().err
    assert "export.wav is digital silence (no sample above -90 dBFS" in err
    assert "fine.wav" not in err and "2 of the files are digital silence" in err


def test_a_closed_stdout_or_stderr_is_transcribed_to_as_an_open_one(checkpoint, tmp_path, monkeypatch):
    """`>&-` and `2>&-` (cron, a daemon) are None in Python: a transcription printed to a closed stdout ended
    in "AttributeError: 'NoneType' object has no attribute 'write'", and an MP3 read with a closed stderr
    failed as it flushed stderr (status 1, nothing written, nothing said)."""
    song = _tone(tmp_path / "song.wav")
    sf.write(tmp_path / "song.mp3", sf.read(song)[0], SR, format="MP3")
    with monkeypatch.context() as closed:
        closed.setattr(sys, "stdout", None)
        assert _predict(checkpoint, song) == 0
        assert _predict(checkpoint, song, "--format", "jams") == 0
    monkeypatch.setattr(sys, "stderr", None)
    assert _predict(checkpoint, tmp_path / "song.mp3", "-o", tmp_path / "song.lab") == 0
    assert read_lab(tmp_path / "song.lab")


def test_a_chord_annotation_or_a_file_too_short_is_described_as_the_user_has_it(checkpoint, tmp_path, capsys):
    """`predict b_gap.lab` said "text, '0 1 C:maj', though named .lab", as if .lab were an audio suffix; a
    1-sample file at 8 kHz was "3 samples at 22050 Hz", the count once resampled, not the file's."""
    annotation = tmp_path / "b_gap.lab"
    annotation.write_text("0 1 C:maj\n1.5 3 G:maj\n")
    capsys.readouterr()
    assert _predict(checkpoint, annotation) == 2
    err = capsys.readouterr().err
    assert f"{annotation}: file is not audio (a .lab chord annotation: text, '0 1 C:maj')" in err, err
    assert "though named" not in err
    short = tmp_path / "d.wav"
    sf.write(short, np.full(1, 0.5, np.float32), 8000)
    assert _predict(checkpoint, short) == 2
    err = capsys.readouterr().err
    assert f"{short}: audio is too short (1 sample at 8000 Hz (0.125 ms); the features need 2.9 ms)" in err, (
        err
    )
    assert "22050" not in err
    predictor = ChordPredictor.from_checkpoint(checkpoint)
    with pytest.raises(ValueError, match=r"too short: 2 samples at 8000 Hz \(0\.25 ms\)"):
        predictor.transcribe(np.zeros(2, np.float32), sample_rate=8000)


# ---- output names and formats ----------------------------------------------------------------------------------


def test_format_and_an_output_file_suffix_that_disagree_are_refused(checkpoint, tmp_path, capsys):
    """`-o x.lab --format jams` wrote .lab text without a word; `-o x.txt --format jams` wrote .lab text too.
    The suffix is read in any case: -o X.JAMS is a JAMS file."""
    song = _tone(tmp_path / "song.wav")
    capsys.readouterr()
    for target, asked in (("x.lab", "jams"), ("x.jams", "lab"), ("x.jamz", "lab"), ("X2.JAMS", "lab")):
        assert _predict(checkpoint, song, "-o", tmp_path / target, "--format", asked) == 2
        err = capsys.readouterr().err
        assert f"--format {asked} but -o {tmp_path / target} names a" in err and "Traceback" not in err
        assert not (tmp_path / target).exists()
    assert _predict(checkpoint, song, "-o", tmp_path / "x.txt", "--format", "jams") == 0
    assert (tmp_path / "x.txt").read_text().startswith("{")
    assert _predict(checkpoint, song, "-o", tmp_path / "y.jams") == 0  # the suffix decides
    assert (tmp_path / "y.jams").read_text().startswith("{")
    assert _predict(checkpoint, song, "-o", tmp_path / "Z.JAMS") == 0
    assert (tmp_path / "Z.JAMS").read_text().startswith("{")


def test_a_folder_with_an_output_named_like_one_annotation_file_is_refused(checkpoint, tmp_path, capsys):
    """A file's command given a folder (`-o songs.lab`) made a folder named songs.lab of the songs' files,
    exit 0. A folder of that name already there is still the output folder."""
    songs = _songs(tmp_path / "songs")
    capsys.readouterr()
    for name in ("songs.lab", "songs.JAMS"):
        assert _predict(checkpoint, songs, "-o", tmp_path / name) == 2
        err = capsys.readouterr().err
        assert f"error: -o {tmp_path / name} is named like one {Path(name).suffix} file, but a folder " in err
        assert "needs an output folder, where one file per song is written (e.g. -o songs-chords)" in err
        assert not (tmp_path / name).exists()
    (tmp_path / "kept.lab").mkdir()
    assert _predict(checkpoint, songs, "-o", tmp_path / "kept.lab") == 0
    assert sorted(p.name for p in (tmp_path / "kept.lab").iterdir()) == ["a.lab", "b.lab", "c.lab"]


def test_names_that_differ_only_in_case_are_each_written_where_the_file_system_tells_them_apart(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """x.wav and X.wav refused the whole folder on Linux, where x.lab and X.lab are two files. Where the output
    folder's file system folds case (macOS, Windows; stood in for here), the pair is skipped and named, and
    the rest is written."""
    assert not folds_case(tmp_path)  # (Linux)
    assert not list(tmp_path.iterdir())  # the probe leaves nothing behind
    inputs = _songs(tmp_path / "in", names=("x.wav", "X.wav", "other.wav"))
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", tmp_path / "out") == 0
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["X.lab", "other.lab", "x.lab"]
    monkeypatch.setattr(chords, "folds_case", lambda folder: True)
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", tmp_path / "out2") == 1
    captured = capsys.readouterr()
    assert f"skipped: {inputs / 'X.wav'}, {inputs / 'x.wav'}: their outputs would be one file" in captured.err
    assert "skipped 2 audio files whose outputs differ only in case" in captured.err
    assert sorted(p.name for p in (tmp_path / "out2").iterdir()) == ["other.lab"]


def test_names_that_differ_only_in_unicode_form_are_skipped_as_such_and_shown_apart(
    checkpoint, tmp_path, capsys
):
    """Beyoncé.wav composed and decomposed (two files on Linux) were skipped as outputs that "differ only in
    case" on "the case-insensitive file system" of a folder that tells case apart, under two names printed
    alike. Their outputs are one file on macOS's file systems (and one song to training): still skipped, for
    that reason, and named escaped."""
    inputs = tmp_path / "in"
    _songs(inputs, names=[unicodedata.normalize(form, "Beyoncé.wav") for form in ("NFC", "NFD")] + ["x.wav"])
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", tmp_path / "out") == 1
    err = capsys.readouterr().err
    assert (
        f"skipped: {inputs}/Beyonce\\u0301.wav, {inputs}/Beyonc\\xe9.wav: their names differ only in " in err
    )
    assert "Unicode form" in err and "macOS" in err and "case" not in err, err
    assert "skipped 2 audio files whose outputs differ only in Unicode form (listed above)" in err
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["x.lab"]


def test_the_default_output_of_a_link_to_a_folder_goes_beside_the_link(checkpoint, tmp_path, monkeypatch):
    """predict links/music (a link to ../library/album) wrote library/album-chords, beside the link's target
    (another disk, maybe), not links/music-chords as the help says."""
    _songs(tmp_path / "library" / "album", names=("a.wav",))
    (tmp_path / "links").mkdir()
    (tmp_path / "links" / "music").symlink_to(Path("..") / "library" / "album")
    monkeypatch.chdir(tmp_path)
    assert _predict(checkpoint, Path("links") / "music") == 0
    assert [p.name for p in (tmp_path / "links" / "music-chords").iterdir()] == ["a.lab"]
    assert sorted(p.name for p in (tmp_path / "library").iterdir()) == ["album"]
    # "." and "x/.." still name the folder they stand for.
    monkeypatch.chdir(tmp_path / "library" / "album")
    assert _predict(checkpoint, ".") == 0
    assert [p.name for p in (tmp_path / "library" / "album-chords").iterdir()] == ["a.lab"]


def test_outputs_whose_path_would_be_too_long_are_skipped_and_listed_and_the_others_written(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """A song deep in sub-folders, mirrored under a longer -o, has an output path over PATH_MAX (4096 bytes)
    though each name is short: predict ended in a raw "OSError: File name too long" before any song was
    transcribed, and wrote nothing."""
    monkeypatch.chdir(tmp_path)  # (paths as given: the system counts a relative path from here)
    deep = Path("in")
    while len(os.fsencode(str(deep))) < 3900:
        deep /= "d" * 200
    os.makedirs(deep)
    _tone(Path("s.wav"))
    os.rename("s.wav", deep / "s.wav")  # (soundfile cannot name a path this long)
    _tone(Path("in") / "top.wav")
    out = "o" * 250
    capsys.readouterr()
    assert _predict(checkpoint, "in", "-o", out) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert f"skipped: {deep / 's.wav'}: cannot write its output s.lab: its path would be " in err
    assert "; this system takes 4095 at most" in err
    assert "skipped 1 audio file whose output name or path is too long for the file system" in err
    assert [p.name for p in Path(out).iterdir() if p.is_file()] == ["top.lab"]


def test_folders_nested_past_the_path_limit_are_an_error_naming_them_not_a_traceback(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """Sub-folders nested past PATH_MAX (4096 bytes): predict, evaluate and train on the folder ended in a
    raw "OSError: File name too long" from the folder walk."""
    monkeypatch.chdir(tmp_path)  # (paths as given: the system counts a relative path from here)
    _tone(Path("in") / "top.wav")
    deep, folder = Path("in"), os.open("in", os.O_RDONLY)
    while len(os.fsencode(str(deep))) < 4200:  # (made a folder at a time: no call takes the whole path)
        os.mkdir("d" * 200, dir_fd=folder)
        inner = os.open("d" * 200, os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        deep, folder = deep / ("d" * 200), inner
    os.close(folder)
    for command in (
        ["predict", "--checkpoint", str(checkpoint), "in"],
        ["evaluate", "--checkpoint", str(checkpoint), "--data", "in"],
        ["train", "--data", "in", "--run_dir", "run", "--processes", "1"],
    ):
        capsys.readouterr()
        assert chords.main(command) == 2
        err = capsys.readouterr().err
        assert "Traceback" not in err
        # (train names the folder absolute, as it records it: its walk meets the limit a folder higher)
        named = re.search(
            r"error: (\S+): its path is (\d+) bytes, and this system reads paths of 4095 at most: folders "
            r"nested this deep in (\S+) cannot be read",
            err,
        )
        assert named, err
        path, size, folder = named.groups()
        assert Path(path).name == "d" * 200 and Path(path).is_relative_to(folder) and folder.endswith("in")
        assert int(size) == len(os.fsencode(path)) >= 4096 > len(os.fsencode(str(Path(path).parent)))
    assert not Path("in-chords").exists() and not Path("run").exists()


def test_a_name_the_file_system_refuses_only_when_written_is_skipped_and_the_others_written(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """eCryptfs takes 143-byte names while saying 255: the write of such an output fails with ENAMETOOLONG,
    which skips that song as a name found too long beforehand is, not the rest of the folder."""
    from audiotrain.recipes.chords import cli_predict

    real_write_lab = cli_predict.write_lab

    def write_lab(path, segments, **kwargs):
        if Path(path).name == "b.lab":
            raise OSError(errno.ENAMETOOLONG, "File name too long", str(path))
        return real_write_lab(path, segments, **kwargs)

    monkeypatch.setattr(cli_predict, "write_lab", write_lab)
    inputs, out = _songs(tmp_path / "in"), tmp_path / "out"
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out) == 1
    captured = capsys.readouterr()
    assert (
        f"skipped: {inputs / 'b.wav'}: cannot write its output b.lab: the file system refused its name as too "
        "long (File name too long)"
    ) in captured.err
    assert "skipped 1 audio file whose output name or path is too long" in captured.err
    assert "wrote 2 .lab files" in captured.out
    assert sorted(p.name for p in out.iterdir()) == ["a.lab", "c.lab"]


def test_skip_existing_keeps_an_output_that_is_a_broken_link(checkpoint, tmp_path, capsys):
    """A link whose target is gone is an output there already (its name is taken): --skip_existing keeps
    it, for a file and in a folder, rather than refusing it as an output it would replace."""
    inputs, out = _songs(tmp_path / "in", names=("a.wav", "b.wav")), tmp_path / "out"
    out.mkdir()
    os.symlink(tmp_path / "gone.lab", out / "a.lab")
    capsys.readouterr()
    assert _predict(checkpoint, inputs / "a.wav", "-o", out / "a.lab", "--skip_existing") == 0
    assert f"kept {out / 'a.lab'}, there already (--skip_existing)" in capsys.readouterr().out
    assert _predict(checkpoint, inputs, "-o", out, "--skip_existing") == 0
    assert "wrote 1 .lab file to" in capsys.readouterr().out
    assert (out / "a.lab").is_symlink() and read_lab(out / "b.lab")


def test_an_annotation_named_in_the_other_unicode_form_is_not_shadowed(checkpoint, tmp_path, capsys):
    """Audio Café.wav named decomposed (NFD, as macOS writes it) pairs with Café.lab named composed (NFC, as a
    script writes it). `predict DIR -o DIR` wrote a decomposed Café.lab beside them without --overwrite, and
    the next evaluate or train read that prediction as the song's ground truth."""
    audio = _tone(tmp_path / unicodedata.normalize("NFD", "Café.wav"))
    annotation = tmp_path / unicodedata.normalize("NFC", "Café.lab")
    annotation.write_text("0 1 C:maj\n")
    capsys.readouterr()
    assert _predict(checkpoint, tmp_path, "-o", tmp_path) == 2
    err = capsys.readouterr().err
    assert "refusing to write" in err and f"(beside {audio.name})" in err and "--overwrite" in err, err
    assert sorted(os.listdir(tmp_path)) == sorted([audio.name, annotation.name])
    assert _predict(checkpoint, audio, "-o", tmp_path / unicodedata.normalize("NFD", "Café.lab")) == 2
    assert sorted(os.listdir(tmp_path)) == sorted([audio.name, annotation.name])


def test_another_song_whose_name_goes_on_after_a_dot_is_not_this_songs_annotation(
    checkpoint, tmp_path, capsys
):
    """`predict song.wav -o song.lab` was refused ("one is there already") because song.live.aiff had its
    song.live.lab: every file whose name began with "song." counted as song.wav's. In a folder, song.lab was
    listed among the annotations in the way, and --overwrite would have replaced them too."""
    song = _tone(tmp_path / "song.wav")
    _tone(tmp_path / "song.live.aiff")
    live = tmp_path / "song.live.lab"
    live.write_text("0 1 C:maj\n")
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", tmp_path / "song.lab") == 0
    assert read_lab(tmp_path / "song.lab") and live.read_text() == "0 1 C:maj\n"
    (tmp_path / "song.lab").unlink()
    capsys.readouterr()
    assert _predict(checkpoint, tmp_path, "-o", tmp_path) == 2
    err = capsys.readouterr().err
    assert f"refusing to write {live} (beside song.live.aiff):" in err, err
    assert "song.lab (beside song.wav)" not in err
    assert not (tmp_path / "song.lab").exists()


def test_an_annotation_beside_audio_with_an_upper_case_suffix_is_not_shadowed(checkpoint, tmp_path, capsys):
    """SONG.WAV (as cameras and old rippers name files) with its song.jams: a song.lab written beside them
    would become the song's annotation (training reads .lab first), so it is refused as for song.wav."""
    song = _tone(tmp_path / "song.WAV")
    (tmp_path / "song.jams").write_text("{}")
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", tmp_path / "song.lab") == 2
    assert f"refusing to write {tmp_path / 'song.lab'} (beside song.WAV):" in capsys.readouterr().err
    assert not (tmp_path / "song.lab").exists()


def test_audio_files_with_upper_case_suffixes_in_a_folder_are_transcribed(checkpoint, tmp_path, capsys):
    inputs = _songs(tmp_path / "in", names=("a.wav", "B.WAV", "c.Flac"))
    out = tmp_path / "out"
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out) == 0
    assert "wrote 3 .lab files" in capsys.readouterr().out
    assert sorted(p.name for p in out.iterdir()) == ["B.lab", "a.lab", "c.lab"]


def test_a_kernel_that_a_ctrl_c_broke_is_compiled_again_and_the_file_transcribed(
    checkpoint, tmp_path, monkeypatch
):
    """A terminal's Ctrl-C reaches the C++ compiler MLX's CPU backend runs for new shapes too: MLX then fails
    the evaluation ("Could not load C++ shared library"), which would end predict with a raw RuntimeError
    instead of stopping after the file as asked."""
    predictor = ChordPredictor.from_checkpoint(checkpoint, tta_shifts=(0,))
    real_eval, failures = mx.eval, []

    def eval_once_broken(*arrays):
        if not failures:
            failures.append(arrays)
            raise RuntimeError("[Compile::eval_cpu] Could not load C++ shared library /tmp/mlx/cpu/x.so")
        return real_eval(*arrays)

    monkeypatch.setattr(mx, "eval", eval_once_broken)
    monkeypatch.setattr("audiotrain._system.remove_broken_kernels", lambda: [])
    with pytest.warns(RuntimeWarning, match="compiling it again"):
        segments = predictor.transcribe(_tone(tmp_path / "song.wav"))
    assert failures and segments and segments[-1].end == pytest.approx(1.0)


# ---- test-time augmentation -------------------------------------------------------------------------------------


def test_tta_goes_as_far_as_the_checkpoints_spare_bins_reach(checkpoint, tmp_path, capsys):
    """`--tta` stopped at 6 whatever the checkpoint, while `ChordPredictor(tta_shifts=range(-8, 9))` took one
    with features.max_pitch_shift 8: the CLI now takes what the checkpoint allows, as the API does."""
    from audiotrain.recipes.chords.task import CHECKPOINT_KEY
    from audiotrain.train import checkpoint as ckpt

    state = ckpt.read_state(checkpoint)
    state["module_state"][CHECKPOINT_KEY]["features"]["max_pitch_shift"] = 8
    arrays = ckpt.read_arrays(checkpoint / ckpt.MODEL_FILE)
    reaching_8 = ckpt.write_checkpoint(tmp_path / "reach8", arrays, {}, {}, state)
    song = _tone(tmp_path / "a.wav", seconds=2.0)
    for tta in ("7", "8"):
        out = tmp_path / f"tta{tta}.lab"
        assert (
            chords.main(["predict", "--checkpoint", str(reaching_8), "--tta", tta, str(song), "-o", str(out)])
            == 0
        )
        assert read_lab(out)
    capsys.readouterr()
    assert chords.main(["predict", "--checkpoint", str(reaching_8), "--tta", "9", str(song)]) == 2
    assert "features.max_pitch_shift 8" in capsys.readouterr().err
    assert ChordPredictor.from_checkpoint(reaching_8, tta_shifts=range(-8, 9)).tta_shifts == tuple(
        range(-8, 9)
    )


# ---- an output written by another program while predicting ---------------------------------------------------

HAND_MADE = "0.000000\t3.000000\tC:maj\n3.000000\t6.000000\tG:7\n"


@pytest.mark.parametrize("name", ["song.lab", "song.jams"])
def test_an_output_file_written_meanwhile_is_not_replaced(checkpoint, tmp_path, monkeypatch, capsys, name):
    """predict checked at its start that -o did not exist, then renamed its output over whatever was there
    once it had transcribed: a hand annotation written meanwhile was silently replaced (.jams as .lab)."""
    song, target = _tone(tmp_path / "song.wav"), tmp_path / name
    real = chords.refuse_existing_outputs

    def then_the_user_writes_it(targets, overwrite, **options):
        real(targets, overwrite, **options)  # (then the model load and transcription take long)
        target.write_text(HAND_MADE)

    monkeypatch.setattr(chords, "refuse_existing_outputs", then_the_user_writes_it)
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", target) == 2
    assert f"{target} appeared while predicting" in capsys.readouterr().err
    assert target.read_text() == HAND_MADE
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([name, "song.wav"])  # no temporary file left
    target.unlink()
    assert _predict(checkpoint, song, "-o", target, "--overwrite") == 0  # --overwrite replaces it
    assert target.read_text() != HAND_MADE


def test_in_a_folder_an_output_written_meanwhile_is_skipped_and_listed(
    checkpoint, tmp_path, monkeypatch, capsys
):
    inputs, out = _songs(tmp_path / "in"), tmp_path / "out"
    real = ChordPredictor.posteriors

    def posteriors(self, audio_path):  # another predict (or a hand) writes b.lab as b.wav is transcribed
        if Path(audio_path).name == "b.wav":  # (a.lab may not be written yet: a.wav is decoded meanwhile)
            out.mkdir(exist_ok=True)
            (out / "b.lab").write_text(HAND_MADE)
        return real(self, audio_path)

    monkeypatch.setattr(ChordPredictor, "posteriors", posteriors)
    capsys.readouterr()
    assert _predict(checkpoint, inputs, "-o", out) == 1
    captured = capsys.readouterr()
    assert f"skipped: {out / 'b.lab'} appeared while predicting; not replaced" in captured.err
    assert "skipped 1 output that appeared while predicting" in captured.err
    assert "wrote 2 .lab files" in captured.out
    assert (out / "b.lab").read_text() == HAND_MADE
    assert sorted(p.name for p in out.iterdir()) == ["a.lab", "b.lab", "c.lab"]


def test_several_audio_files_are_refused_saying_predict_takes_one_file_or_a_folder(
    checkpoint, tmp_path, capsys
):
    """``predict a.wav b.wav`` said "unrecognized arguments: b.wav"."""
    inputs = _songs(tmp_path / "in", names=("a.wav", "b.wav"))
    assert _predict(checkpoint, inputs / "a.wav", inputs / "b.wav") == 2
    err = capsys.readouterr().err
    assert (
        f"predict takes one audio file or one folder, got 2 inputs ({inputs / 'a.wav'}, {inputs / 'b.wav'})"
        in err
    )
    assert "put the files in a folder and give it" in err
    assert _predict(checkpoint, inputs / "a.wav", "--no_such_flag") == 2
    assert "unrecognized arguments: --no_such_flag" in capsys.readouterr().err


def test_the_check_for_annotations_in_the_way_lists_each_folder_once(tmp_path, monkeypatch):
    """predict DIR -o DIR listed the whole folder once per output file: 40 s for 2,000 songs before the first
    transcription, quadratic in the songs. Each folder is listed once now, and the answer is the same."""
    import pathlib

    from audiotrain.recipes.chords.predict import annotations_in_the_way

    songs = tmp_path / "songs"
    songs.mkdir()
    for i in range(50):
        (songs / f"s{i:02d}.wav").write_bytes(b"")
        if i % 10 == 0:
            (songs / f"s{i:02d}.lab").write_text("0 1 N\n")  # the user's annotations
    listed = []
    iterdir = pathlib.Path.iterdir

    def counting(self):
        listed.append(self)
        return iterdir(self)

    monkeypatch.setattr(pathlib.Path, "iterdir", counting)
    targets = [songs / f"s{i:02d}.lab" for i in range(50)]
    blocked = annotations_in_the_way(targets)
    assert listed == [songs]
    assert [(t.name, audio.name) for t, audio in blocked] == [
        (f"s{i:02d}.lab", f"s{i:02d}.wav") for i in (0, 10, 20, 30, 40)
    ]


def test_dash_as_the_output_is_stdout_for_a_file_and_refused_for_a_folder(
    checkpoint, tmp_path, monkeypatch, capsys
):
    """`-o -` wrote a file named `-` (a folder for a folder input), and nothing to stdout."""
    monkeypatch.chdir(tmp_path)
    song = _tone(tmp_path / "songs" / "song.wav")
    capsys.readouterr()
    assert _predict(checkpoint, song) == 0
    printed = capsys.readouterr().out
    assert _predict(checkpoint, song, "-o", "-") == 0
    assert capsys.readouterr().out == printed and printed.strip()
    assert _predict(checkpoint, tmp_path / "songs", "-o", "-") == 2
    err = capsys.readouterr().err
    assert "error: -o -: a folder input" in err and "stdout cannot take" in err
    assert not (tmp_path / "-").exists()


def test_overwrite_takes_an_optional_true_or_false_as_in_the_clap_recipe(checkpoint, tmp_path, capsys):
    """`--overwrite false` was refused ("unrecognized arguments: false") and `--overwrite=true` too ("ignored
    explicit argument"), where the CLAP recipe takes both: a script could not write one form for both."""
    song, out = _tone(tmp_path / "song.wav"), tmp_path / "song.lab"
    assert _predict(checkpoint, "--overwrite", song, "-o", out) == 0  # alone, before the input: as before
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", out, "--overwrite", "false") == 2
    err = capsys.readouterr().err
    assert "unrecognized" not in err and str(out) in err and "--overwrite" in err  # refused: it is there
    for given in (["--overwrite=true"], ["--overwrite", "yes"], ["--overwrite"]):
        out.write_text("earlier\n")
        assert _predict(checkpoint, song, "-o", out, *given) == 0, capsys.readouterr().err
        assert out.read_text() != "earlier\n"
    # The training commands take it alike.
    for command in ("train", "cv"):
        status = chords.main(
            [command, "--data", str(tmp_path / "no_songs"), "--overwrite", "false", "--nope"]
        )
        assert status == 2
        err = capsys.readouterr().err
        assert "unrecognized arguments: --nope" in err and "false" not in err


def test_a_misspelt_flag_of_predict_gets_a_did_you_mean_as_other_commands_do(checkpoint, tmp_path, capsys):
    """`predict ... --skip-existing` said only "unrecognized arguments: --skip-existing", and a misspelt
    `--checkpont` only that --checkpoint was required, where evaluate and export name the flag meant."""
    songs = _songs(tmp_path / "in", names=("a.wav",))
    assert _predict(checkpoint, songs, "--skip-existing") == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --skip-existing; did you mean --skip_existing?" in err
    assert not (tmp_path / "in-chords").exists()
    assert chords.main(["predict", "--checkpont", str(checkpoint), str(songs)]) == 2
    err = capsys.readouterr().err
    assert "required: --checkpoint; unrecognized arguments: --checkpont; did you mean --checkpoint?" in err


def test_files_of_one_stem_predicted_one_at_a_time_into_a_folder_get_outputs_of_their_own(
    checkpoint, tmp_path, capsys
):
    """`predict song.wav -o labs/` then `predict song.mp3 -o labs/` both wrote labs/song.lab: the second was
    refused as "written earlier (or by hand)", and with --skip_existing it "kept" song.wav's transcription as
    song.mp3's. Each now keeps its audio suffix (song.wav.lab, song.mp3.lab), as predict on their folder
    names them; a file with no such neighbour still writes <stem>.lab."""
    songs, labs = tmp_path / "songs", tmp_path / "labs"
    labs.mkdir()
    _tone(songs / "song.wav", seconds=1.0)
    _tone(songs / "song.flac", seconds=2.0)
    _tone(songs / "other.wav", seconds=1.0)
    for name in ("song.wav", "song.flac", "other.wav"):
        assert _predict(checkpoint, songs / name, "-o", f"{labs}/", "--skip_existing") == 0
    assert "its output keeps the audio suffix" in capsys.readouterr().err
    assert sorted(p.name for p in labs.iterdir()) == ["other.lab", "song.flac.lab", "song.wav.lab"]
    assert read_lab(labs / "song.flac.lab")[-1].end == pytest.approx(2.0)
    assert read_lab(labs / "song.wav.lab")[-1].end == pytest.approx(1.0)
    # The folder's own run finds them there.
    assert _predict(checkpoint, songs, "-o", labs, "--skip_existing") == 0
    assert "kept 3 there already" in capsys.readouterr().out


def test_a_file_whose_plain_output_is_a_neighbour_s_kept_name_gets_its_own_as_in_its_folder(
    checkpoint, tmp_path, capsys
):
    """Beside song.wav and song.flac (outputs song.wav.lab, song.flac.lab), `predict song.wav.flac -o
    labs/` wrote labs/song.wav.lab, song.wav's output: refused as written earlier, and with --skip_existing
    song.wav's chords kept as its transcription, 2 s short. Its folder names it song.wav.flac.lab; one at a
    time now too."""
    songs, labs = tmp_path / "songs", tmp_path / "labs"
    labs.mkdir()
    names = {"song.wav": 1.0, "song.flac": 2.0, "song.wav.flac": 3.0}
    for name, seconds in names.items():
        _tone(songs / name, seconds=seconds)
    for name in names:
        assert _predict(checkpoint, songs / name, "-o", f"{labs}/", "--skip_existing") == 0
    assert sorted(p.name for p in labs.iterdir()) == ["song.flac.lab", "song.wav.flac.lab", "song.wav.lab"]
    assert read_lab(labs / "song.wav.flac.lab")[-1].end == pytest.approx(3.0)
    capsys.readouterr()
    assert _predict(checkpoint, songs, "-o", labs, "--skip_existing") == 0
    assert "kept 3 there already" in capsys.readouterr().out


def test_a_file_written_with_dash_o_is_named_on_stdout_as_a_folder_s_outputs_are(
    checkpoint, tmp_path, capsys
):
    """`predict song.wav -o song.lab` printed nothing on stdout (stderr: only the checkpoint used), where
    `predict FOLDER` ends with "wrote N .lab files to DIR (S s of audio per second)": a script's log held no
    line of what was written where."""
    song = _tone(tmp_path / "song.wav")
    capsys.readouterr()
    assert _predict(checkpoint, song, "-o", tmp_path / "song.lab") == 0
    out = capsys.readouterr().out
    assert re.fullmatch(
        rf"wrote {re.escape(str(tmp_path / 'song.lab'))} \([0-9.]+ s of audio per second\)\n", out
    )
    assert _predict(checkpoint, song) == 0  # printed: the transcription alone, as before
    assert not capsys.readouterr().out.startswith("wrote")


def test_the_speed_of_a_run_that_wrote_only_a_few_milliseconds_of_audio_is_not_zero(
    checkpoint, tmp_path, capsys
):
    """A run whose only file written was a few samples long said "(0 s of audio per second)", the speed
    rounded to whole seconds: below 10 it now keeps two significant digits."""
    songs = tmp_path / "songs"
    songs.mkdir()
    blip = 0.3 * np.sin(2 * np.pi * 220 * np.arange(100) / SR)  # (4.5 ms: the features need 2.9)
    sf.write(songs / "blip.wav", blip.astype(np.float32), SR)
    capsys.readouterr()
    assert _predict(checkpoint, songs / "blip.wav", "-o", tmp_path / "blip.lab") == 0
    assert _predict(checkpoint, songs, "-o", tmp_path / "labs") == 0
    out = capsys.readouterr().out
    speeds = re.findall(r"\(([0-9.]+) s of audio per second\)", out)
    assert len(speeds) == 2 and all(float(speed) > 0 for speed in speeds), out


def test_skip_existing_names_the_outputs_it_keeps_that_are_older_than_their_audio(
    checkpoint, tmp_path, capsys
):
    """A library transcribed again with --skip_existing after a song was exported anew kept that song's old
    transcription without a word: "wrote 0 .lab files; kept 2 there already". The outputs kept that are
    older than their audio are named now, with how to redo them; the others are kept as before."""
    songs, out = _songs(tmp_path / "songs", names=("a.wav", "b.wav")), tmp_path / "out"
    assert _predict(checkpoint, songs, "-o", out) == 0
    assert _predict(checkpoint, songs / "a.wav", "-o", tmp_path / "a.lab") == 0
    capsys.readouterr()
    later = (tmp_path / "a.lab").stat().st_mtime + 60
    _tone(songs / "a.wav", seconds=2.0)  # a.wav exported again
    os.utime(songs / "a.wav", (later, later))
    assert _predict(checkpoint, songs, "-o", out, "--skip_existing") == 0
    captured = capsys.readouterr()
    assert "note: 1 of the outputs kept (--skip_existing) is older than the audio, changed since: a.wav;" in (
        captured.err
    )
    assert "kept 2 there already" in captured.out
    assert _predict(checkpoint, songs / "a.wav", "-o", tmp_path / "a.lab", "--skip_existing") == 0
    assert f"older than {songs / 'a.wav'}, changed since: pass --overwrite" in capsys.readouterr().out


def test_a_broken_link_given_alone_is_named_a_link_as_in_a_folder(checkpoint, tmp_path, capsys):
    """`predict dangling.wav` said "dangling.wav does not exist" of a name `ls` shows, where predict on its
    folder says "a symlink to nowhere.wav, which does not exist"."""
    (tmp_path / "dangling.wav").symlink_to("nowhere.wav")
    assert _predict(checkpoint, tmp_path / "dangling.wav") == 2
    err = capsys.readouterr().err
    assert (
        f"{tmp_path / 'dangling.wav'} does not exist (a symlink to nowhere.wav, which does not exist)" in err
    )
    assert _predict(checkpoint, tmp_path / "missing.wav") == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing.wav'} does not exist\n"


def test_a_checkpoint_s_own_file_given_as_the_checkpoint_names_its_folder(checkpoint, tmp_path, capsys):
    """`--checkpoint RUN/checkpoints/best/model.safetensors` said only "is a file, but an audiotrain
    checkpoint is a folder holding model.safetensors, ...", leaving the user to work out which folder."""
    song = _tone(tmp_path / "song.wav")
    capsys.readouterr()
    status = chords.main(["predict", "--checkpoint", str(checkpoint / "model.safetensors"), str(song)])
    assert status == 2
    assert f"give the folder it is in: {checkpoint}" in capsys.readouterr().err


def test_audio_piped_in_is_refused_saying_predict_reads_a_file(tmp_path, capsys, monkeypatch):
    """`cat song.wav | predict --checkpoint RUN -` said "error: - does not exist", and `/dev/stdin` "is not
    a regular file or a folder (a FIFO or a device)": neither said that audio cannot come from stdin. Both
    now do, with what to do instead (refused before the checkpoint is read: none is needed here)."""
    monkeypatch.chdir(tmp_path)
    read, write = os.pipe()
    os.close(write)
    for given in ("-", f"/dev/fd/{read}"):
        assert chords.main(["predict", "--checkpoint", "no_run", given]) == 2
        err = capsys.readouterr().err
        assert "not from stdin" in err and "save the audio to a file" in err and err.count("\n") == 1, err
    os.close(read)


def test_a_file_named_dash_is_read_as_the_file_it_is_not_refused_as_stdin(tmp_path, capsys, monkeypatch):
    """A song saved as '-' (and `./-`, which pathlib writes as '-') was refused as audio piped in ('predict
    reads audio from a file or a folder, not from stdin': the user had saved it to a file), where before
    8a0ed873 it was transcribed. Only a '-' that names no file is stdin now."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "-").write_bytes(b"RIFF")
    for given in ("-", "./-"):
        chords.main(["predict", "--checkpoint", "no_run", given])
        err = capsys.readouterr().err
        assert "not from stdin" not in err and "no_run" in err, err


# ---- a recording cut short ---------------------------------------------------------------------------------


def test_a_wav_cut_short_says_how_much_of_it_is_there_and_how_to_use_it(checkpoint, tmp_path, capsys):
    """A field recorder's 24-bit WAV whose battery died (its header announces the whole take, its file holds
    half) was refused as 'file is corrupt or truncated (truncated: data chunk announces 1323000 bytes, file
    holds 661500)': bytes, not the minutes of the concert that are there, and no way to transcribe them."""
    whole = _tone(tmp_path / "whole.wav", seconds=10.0, channels=2)
    sf.write(whole, sf.read(whole)[0], SR, subtype="PCM_24")
    cut = tmp_path / "take 1.wav"
    cut.write_bytes(whole.read_bytes()[: 44 + 10 * SR * 2 * 3 // 2])

    assert _predict(checkpoint, cut, "-o", tmp_path / "take.lab") == 2
    err = capsys.readouterr().err
    assert "(10.0 s)" in err and "(5.0 s)" in err, err
    assert f"ffmpeg -i '{cut}' '{tmp_path / 'take 1.flac'}'" in err, err


def test_a_long_recording_says_how_long_it_is_as_its_transcription_starts(checkpoint, tmp_path, capsys):
    """predict on a 3-hour podcast or a 90-minute DJ mix sat without a word for minutes (a line came only once
    the .lab was written): nothing told a stuck process from a working one. A recording of 10 minutes or more
    is now named with its length on stderr as it starts; a song shorter than that says nothing more."""
    mix = _tone(tmp_path / "mix.wav", seconds=600.0, sr=4000)
    song = _tone(tmp_path / "song.wav", seconds=30.0)

    assert _predict(checkpoint, mix, "-o", tmp_path / "mix.lab") == 0
    assert f"transcribing {mix} (10.0 min of audio)" in capsys.readouterr().err
    assert _predict(checkpoint, song, "-o", tmp_path / "song.lab") == 0
    assert "transcribing" not in capsys.readouterr().err


def test_a_folders_time_left_counts_its_audio_not_its_files(checkpoint, tmp_path, monkeypatch, capsys):
    """A folder of a long recording and short songs said, once the long one was done, 'about 6.7 min left' for
    the two 1-second songs after it: the time left counted files, as if each were as long as the first."""
    folder = tmp_path / "in"
    _tone(folder / "a_long.wav", seconds=60.0, sr=4000)
    _songs(folder, names=("b.wav", "c.wav"))
    monkeypatch.setattr(chords_data, "PROGRESS_LINE_SECONDS", 0.0)  # a line per file
    monkeypatch.setattr(chords_data, "time", TickingClock())  # 100 s a reading
    assert _predict(checkpoint, folder, "-o", tmp_path / "out") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("transcribed ")]
    assert lines[0] == "transcribed 1 of 3 files in 3.3 min, about 7 s left", lines


@pytest.mark.parametrize("overwrite", [[], ["--overwrite"]])
def test_outputs_of_other_songs_left_in_the_output_folder_are_named(checkpoint, tmp_path, capsys, overwrite):
    """A competitor's second submission into the folder of the first (a test folder of fewer songs, another
    model) said only 'wrote 1 .lab file to sub': the folder then held one song of this model and two of the
    earlier one, which `score` and a submission took as one model's."""
    out = tmp_path / "sub"
    out.mkdir()
    (out / "sub_folder").mkdir()
    for name in ("b.lab", "sub_folder/c.lab"):
        (out / name).write_text("0.000000\t1.000000\tN\n")  # the earlier submission's
    (out / "notes.txt").write_text("not a transcription\n")
    capsys.readouterr()
    assert _predict(checkpoint, _songs(tmp_path / "in", names=("a.wav",)), "-o", out, *overwrite) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith(f"wrote 1 .lab file to {out} ("), captured.out
    assert (
        f"note: {out} also holds 2 .lab files this command did not write (b.lab, sub_folder/c.lab)"
        in captured.err
    ), captured.err
    assert _predict(checkpoint, tmp_path / "in", "-o", tmp_path / "fresh") == 0
    assert "did not write" not in capsys.readouterr().err


def test_macos_appledouble_twins_of_outputs_are_not_named_as_another_models_outputs(
    checkpoint, tmp_path, capsys
):
    """Predicting again into a folder on an exFAT drive used from a Mac, which wrote ``._a.lab`` beside each
    output (and keeps a .Trashes folder): it said "note: sub also holds 2 .lab files this command did not
    write (._a.lab, .Trashes/old.lab): earlier outputs", though no transcription but its own is there."""
    out = tmp_path / "sub"
    (out / ".Trashes").mkdir(parents=True)
    (out / "._a.lab").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    (out / ".Trashes" / "old.lab").write_text("0.000000\t1.000000\tN\n")
    capsys.readouterr()
    assert _predict(checkpoint, _songs(tmp_path / "in", names=("a.wav",)), "-o", out, "--overwrite") == 0
    assert "did not write" not in capsys.readouterr().err


def test_an_output_inside_a_checkpoint_folder_is_refused_before_any_work(checkpoint, tmp_path, capsys):
    """Transcriptions written into a run's checkpoints/epoch=001 (kept beside the model that made them) were
    removed with that folder, unsaid, by a resume's --save_keep (and a new best replaces best): a
    checkpoint folder is the training's to replace. Its files are kept now, but beside another model or
    none, which the refusal says (it said they went with the folder)."""
    songs = _songs(tmp_path / "in", names=("a.wav",))
    before = sorted(p.name for p in checkpoint.iterdir())
    capsys.readouterr()
    for output in (checkpoint, checkpoint / "preds", checkpoint / "a.lab"):
        given = songs / "a.wav" if output.suffix else songs
        assert _predict(checkpoint, given, "-o", output) == 2
        err = capsys.readouterr().err
        assert f"error: -o {output} is inside the checkpoint folder {checkpoint}" in err, err
        assert "Write them elsewhere" in err
        # (Training keeps a user's files since 2043b584: not "removed with everything in it".)
        assert "beside another model's weights or in a folder with no model" in err, err
    assert sorted(p.name for p in checkpoint.iterdir()) == before
