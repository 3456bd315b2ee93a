"""A CLAP run repeated from its record (``--config RUN/config.json``) on a data folder that changed since."""

import shutil

from audiotrain.recipes.clap import main

import pytest
from clap_folders import tiny_checkpoint, tone_folder


def test_a_repeat_from_config_json_says_when_the_data_folder_no_longer_holds_the_runs_clips(tmp_path, capsys):
    """README: a run's `config.json` repeats it from any folder. On a folder that had gained a clip since, the
    repeat drew its held-out clips anew and trained on other clips than the run it repeated, without a word,
    though config.json lists the clips of each part."""
    checkpoint = tiny_checkpoint(tmp_path)
    data = tone_folder(tmp_path / "data", clips=6)
    flags = ["--train.epochs", "1", "--train.batch_size", "2", "--train.progress_bar", "false",
             "--train.processes", "1"]  # fmt: skip
    assert (
        main(["--data", str(data), "--pretrained", str(checkpoint), *flags, "--out", str(tmp_path / "a")])
        == 0
    )
    record = tmp_path / "a" / "config.json"
    capsys.readouterr()
    assert main(["--config", str(record), "--out", str(tmp_path / "b")]) == 0  # the same folder: no note
    assert "not those of the run" not in capsys.readouterr().err
    shutil.copy(data / "tone0.wav", data / "late.wav")  # a clip added since
    (data / "late.txt").write_text("a late tone\n")
    assert main(["--config", str(record), "--out", str(tmp_path / "c")]) == 0
    err = capsys.readouterr().err
    assert (
        f"note: this run's clips are not those of the run of {record} (gone since: none; new: 'late.wav')"
        in err
    )
    assert "so this is another run" in err


def test_a_resume_refused_because_split_folders_now_split_the_clips_says_so(tmp_path):
    # A run made before a top-level metadata file's train/, test/ folders set the clips' splits (30f588bc,
    # Hugging Face AudioFolder's reading) held 2 clips out at random; resumed now on the very same folder,
    # the same clips come split otherwise. The refusal said only 'restore the data', though it was unchanged.
    from audiotrain.datasets.captions import CaptionedClip
    from audiotrain.recipes.clap.clip_record import CLIPS_KEY, check_resume_clips, clip_record

    def clip(name, split=None):
        return CaptionedClip(path=tmp_path / name, name=name, captions=(f"a {name}",), split=split)

    names = ["train/a.wav", "train/b.wav", "test/c.wav", "test/d.wav"]
    then = {"train": [clip(n) for n in names[1:]], "eval": [clip(names[0])]}
    now = {"train": [clip(n, "train") for n in names[:2]], "eval": [clip(n, "test") for n in names[2:]]}
    folder = tmp_path / "run" / "checkpoints" / "last"
    with pytest.raises(ValueError) as refused:
        check_resume_clips(folder, {CLIPS_KEY: clip_record(then)}, now, "the data folder DIR")
    message = str(refused.value)
    assert "the same clips, split otherwise" in message
    assert "AudioFolder reads them: that audiotrain held clips out at random" in message
