"""Files left as Git LFS pointers (a model repository or dataset cloned without Git LFS) are named as such,
with the command that fetches them, wherever a user's file is read: CLAP weights and tokenizers, audio, .lab
and JAMS annotations."""

import re
import shutil
from pathlib import Path

import audiotrain  # noqa: F401  (loads the optimized BLAS; must precede mlx)
from audiotrain import audio
from audiotrain.chords.lab import AnnotationError, read_annotation
from audiotrain.models.clap import CLAP, CheckpointError, ClapTokenizer, TokenizerError, TorchCheckpointError

import pytest

FIXTURE = Path(__file__).parent / "fixtures" / "clap_tiny"

POINTER = (
    b"version https://git-lfs.github.com/spec/v1\n"
    b"oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\n"
    b"size 614420368\n"
)


def _pointer_message(path: Path, cause: str = "") -> str:
    return re.escape(f"{path}: {cause}a Git LFS pointer") + r".* 614,420,368 bytes .*`git lfs pull`"


@pytest.fixture
def clap_clone(tmp_path):
    """The tiny CLAP checkpoint folder, as a `git clone` without Git LFS leaves one: each file present."""
    folder = tmp_path / "clap-htsat-unfused"
    shutil.copytree(FIXTURE, folder)
    return folder


@pytest.mark.parametrize("weights", ["model.safetensors", "pytorch_model.bin"])
def test_clap_weights_left_as_a_git_lfs_pointer_are_named_so(clap_clone, weights):
    """Read as weights, a pointer was "not a readable safetensors file: its header length is missing or
    invalid" or "not a zip archive", and the user downloaded it again the same way."""
    (clap_clone / "pytorch_model.bin").unlink()
    (clap_clone / weights).write_bytes(POINTER)
    refused_as = (CheckpointError, TorchCheckpointError)
    with pytest.raises(refused_as, match=_pointer_message(clap_clone / weights)):
        CLAP.from_pretrained(str(clap_clone))


def test_a_clap_tokenizer_left_as_a_git_lfs_pointer_is_named_so(clap_clone):
    (clap_clone / "tokenizer.json").write_bytes(POINTER)
    with pytest.raises(TokenizerError, match=_pointer_message(clap_clone / "tokenizer.json")):
        ClapTokenizer.from_pretrained(clap_clone)


def test_an_empty_clap_safetensors_file_is_named_once(clap_clone):
    """CLAP's CheckpointError is an OSError: the check's own "the file is empty" was caught by its handler of
    read errors and said as "PATH: cannot be read (PATH: the file is empty ...)"."""
    (clap_clone / "model.safetensors").write_bytes(b"")
    with pytest.raises(CheckpointError) as caught:
        CLAP.from_pretrained(str(clap_clone))
    path = clap_clone / "model.safetensors"
    assert str(caught.value) == f"{path}: the file is empty (0 bytes); copy or download it again"


def test_audio_left_as_a_git_lfs_pointer_is_named_so(tmp_path):
    song = tmp_path / "song.wav"
    song.write_bytes(POINTER)
    with pytest.raises(audio.AudioError, match=_pointer_message(song, "file is not audio (")):
        audio.load(song, 16000)


@pytest.mark.parametrize("name", ["song.lab", "song.jams"])
def test_annotations_left_as_git_lfs_pointers_are_named_so(tmp_path, name):
    """A .lab pointer was "line 1: expected 'start end label' (3 fields), got 2"; a JAMS one "not valid
    JSON"."""
    annotation = tmp_path / name
    annotation.write_bytes(POINTER)
    with pytest.raises(AnnotationError, match=_pointer_message(annotation)):
        read_annotation(annotation)


def test_a_lab_that_starts_like_a_pointer_but_is_long_is_read_as_a_lab(tmp_path):
    """Only a file under Git LFS's 1024 bytes is a pointer: a .lab is read as one whatever its first line."""
    annotation = tmp_path / "song.lab"
    annotation.write_text(
        "version https://git-lfs.github.com/spec/v1\n" + "# padding\n" * 120 + "0 1 C:maj\n"
    )
    with pytest.raises(AnnotationError, match=re.escape("line 1: expected 'start end label'")):
        read_annotation(annotation)
