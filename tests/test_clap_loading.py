"""Loading CLAP checkpoints (safetensors, torch .bin without torch, shards, hub ids), export, the tokenizer."""

import collections
import hashlib
import io
import json
import os
import pickle
import re
import shutil
import subprocess
import sys
import types
import zipfile
from pathlib import Path
from types import SimpleNamespace

import audiotrain  # noqa: F401  (loads the optimized BLAS; must precede mlx)
from audiotrain.models.clap import (
    CLAP,
    CheckpointError,
    ClapConfigError,
    ClapFeatureExtractor,
    ClapTokenizer,
    StateDictError,
    TokenizerError,
    TorchCheckpointError,
    UnsafeCheckpointError,
    load_pretrained,
    load_torch_state_dict,
    save_pretrained,
)

import mlx.core as mx
import mlx.nn as nn
import numpy as np
import pytest
from bytes_read import bytes_read
from mlx.utils import tree_flatten
from reference import require

FIXTURE = Path(__file__).parent / "fixtures" / "clap_tiny"


def _rel(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.abs(a - b).max() / np.abs(b).max())


def _reference():
    return dict(np.load(FIXTURE / "reference.npz"))


def _outputs(model, ref):
    out = model(mx.array(ref["input_features"]), mx.array(ref["input_ids"]), mx.array(ref["attention_mask"]))
    return {k: np.array(v) for k, v in out.items()}


def _safetensors_copy(tmp_path: Path, edit=None) -> Path:
    """The fixture as a safetensors checkpoint folder, optionally with its tensors edited."""
    from safetensors.numpy import save_file

    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    (folder / "pytorch_model.bin").unlink()
    state = load_torch_state_dict(FIXTURE / "pytorch_model.bin")
    if edit is not None:
        edit(state)
    save_file(state, str(folder / "model.safetensors"))
    return folder


# ------------------------------------------------------------------------------------------- loading
def test_bin_checkpoint_loads_without_torch(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    model, config = load_pretrained(FIXTURE)
    assert config.source == FIXTURE
    ref = _reference()
    out = _outputs(model, ref)
    assert _rel(out["logits_per_audio"], ref["logits_per_audio"]) <= 1e-5
    assert config.num_batches_tracked  # the BatchNorm counters were read, to be written back on export


def test_safetensors_and_bin_give_identical_parameters(tmp_path):
    from_bin, _ = load_pretrained(FIXTURE)
    from_safetensors, _ = load_pretrained(_safetensors_copy(tmp_path))
    a, b = dict(tree_flatten(from_bin.parameters())), dict(tree_flatten(from_safetensors.parameters()))
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(np.array(a[name]), np.array(b[name]), err_msg=name)


def test_bfloat16_loading(tmp_path):
    model, _ = load_pretrained(FIXTURE, dtype=mx.bfloat16)
    assert {v.dtype for _, v in tree_flatten(model.parameters())} == {mx.bfloat16}
    ref = _reference()
    out = model.get_text_features(mx.array(ref["input_ids"]), mx.array(ref["attention_mask"]))
    assert _rel(np.array(out.astype(mx.float32)), ref["text_embeds"]) < 0.1


def test_the_weights_type_is_taken_by_name_or_numpy_type_and_a_non_float_one_is_refused_naming_dtype():
    # An integer type loaded the weights truncated (every audio embedding all zeros, no error); a name or a
    # numpy type, which save_pretrained takes, failed in MLX's astype naming neither dtype nor what it takes.
    for dtype in ("float16", np.float16):
        model, _ = load_pretrained(FIXTURE, dtype=dtype)
        assert {v.dtype for _, v in tree_flatten(model.parameters())} == {mx.float16}
    for dtype in (mx.int32, "int8", np.int16, None):
        with pytest.raises(ValueError, match=r"dtype .*: expected a floating-point type, one of float32"):
            load_pretrained(FIXTURE, dtype=dtype)
        with pytest.raises(ValueError, match=r"dtype .*: expected a floating-point type"):
            CLAP(FIXTURE, dtype=dtype)


def _sharded_copy(tmp_path: Path) -> Path:
    """The fixture as a safetensors checkpoint in two shards with their index."""
    from safetensors.numpy import load_file, save_file

    folder = _safetensors_copy(tmp_path)
    state = load_file(str(folder / "model.safetensors"))
    (folder / "model.safetensors").unlink()
    names = sorted(state)
    shards = {"model-00001-of-00002.safetensors": names[::2], "model-00002-of-00002.safetensors": names[1::2]}
    weight_map = {}
    for shard, keys in shards.items():
        save_file({k: state[k] for k in keys}, str(folder / shard))
        weight_map.update(dict.fromkeys(keys, shard))
    (folder / "model.safetensors.index.json").write_text(
        json.dumps({"metadata": {}, "weight_map": weight_map})
    )
    return folder


def test_sharded_safetensors_checkpoint(tmp_path):
    model, _ = load_pretrained(_sharded_copy(tmp_path))
    ref = _reference()
    assert _rel(_outputs(model, ref)["text_embeds"], ref["text_embeds"]) <= 1e-5


def test_a_single_weights_file_is_preferred_to_stale_shards_next_to_it(tmp_path):
    """A folder holding model.safetensors and, left from an older save, an index and its shards: the single
    file is read, as transformers reads it."""
    from safetensors.numpy import load_file, save_file

    folder = _sharded_copy(tmp_path)
    stale = {}
    for shard in folder.glob("model-*.safetensors"):
        state = load_file(str(shard))
        stale.update(state)
        save_file({k: np.full_like(v, 7.0) for k, v in state.items()}, str(shard))
    save_file(stale, str(folder / "model.safetensors"))
    model, _ = load_pretrained(folder)
    ref = _reference()
    assert _rel(_outputs(model, ref)["text_embeds"], ref["text_embeds"]) <= 1e-5


def test_a_shard_in_a_subfolder_is_read_from_there(tmp_path):
    """An index naming ``sub/model-00002-of-00002.safetensors`` loaded the top-level file of that name (another
    model's weights), and without one said the shard "is not in" the folder that holds it: it is joined to
    the folder as transformers joins it, and a missing one is named as the index names it."""
    from safetensors.numpy import load_file, save_file

    folder = _sharded_copy(tmp_path)
    shard = "model-00002-of-00002.safetensors"
    (folder / "sub").mkdir()
    (folder / shard).rename(folder / "sub" / shard)
    decoy = {k: np.full_like(v, 7.0) for k, v in load_file(str(folder / "sub" / shard)).items()}
    save_file(decoy, str(folder / shard))
    index = folder / "model.safetensors.index.json"
    record = json.loads(index.read_text())
    record["weight_map"] = {k: f"sub/{v}" if v == shard else v for k, v in record["weight_map"].items()}
    index.write_text(json.dumps(record))
    model, _ = load_pretrained(folder)
    ref = _reference()
    assert _rel(_outputs(model, ref)["text_embeds"], ref["text_embeds"]) <= 1e-5
    (folder / "sub" / shard).unlink()
    with pytest.raises(CheckpointError, match=rf"lists shard sub/{shard}, which is not in {folder}$"):
        load_pretrained(folder)


def test_a_weights_file_or_shard_that_is_a_fifo_or_a_folder_is_named_so(tmp_path):
    """A pytorch_model.bin that was a FIFO said "no weights file (one of ..., pytorch_model.bin); the folder
    holds ... pytorch_model.bin", and a shard that was a folder "lists shard X, which is not in FOLDER": both
    as if the file were missing. Neither is opened (a read of a FIFO waits for a writer forever)."""
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    (folder / "pytorch_model.bin").unlink()
    os.mkfifo(folder / "pytorch_model.bin")
    with pytest.raises(
        CheckpointError, match=re.escape(f"{folder / 'pytorch_model.bin'}: is a FIFO, not a regular file")
    ):
        load_pretrained(folder)
    sharded = _sharded_copy(tmp_path / "sharded")
    shard = sharded / "model-00002-of-00002.safetensors"
    shard.unlink()
    shard.mkdir()
    with pytest.raises(CheckpointError, match=re.escape(f"{shard}: is a folder, not a regular file")):
        load_pretrained(sharded)
    index = sharded / "model.safetensors.index.json"  # (an index naming itself was "not a zip archive")
    record = json.loads(index.read_text())
    record["weight_map"] = dict.fromkeys(record["weight_map"], index.name)
    index.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=re.escape(f"{index}: lists itself as shard {index.name}")):
        load_pretrained(sharded)


STRAY_INDEX = "audio_model.audio_encoder.layers.7.blocks.3.attention.self.relative_position_index"
STRAY_COUNTER = "audio_model.audio_encoder.norm_extra.num_batches_tracked"
PATCH_KERNEL = "audio_model.audio_encoder.patch_embed.proj.weight"


def test_missing_unexpected_and_misshaped_tensors_are_all_listed(tmp_path):
    def edit(state):
        del state["text_model.pooler.dense.bias"]
        del state["audio_model.audio_encoder.layers.1.blocks.0.attention.self.relative_position_bias_table"]
        state["text_model.extra_head.weight"] = np.zeros((2, 2), np.float32)
        # buffers of blocks the model does not have (a deeper model's file): not derived, not counters
        state[STRAY_INDEX] = np.zeros((4, 4), np.int64)
        state[STRAY_COUNTER] = np.array(5, np.int64)
        state["audio_projection.linear2.weight"] = np.zeros((24, 23), np.float32)
        # as many elements as the model's (48, 24), stored transposed: a forward pass would fail unnamed
        transposed = "text_model.encoder.layer.0.intermediate.dense.weight"
        state[transposed] = state[transposed].T.copy()
        # a conv kernel stored flat (8, 1, 4, 4) -> (8, 16): it cannot be turned to MLX's layout
        state[PATCH_KERNEL] = state[PATCH_KERNEL].reshape(8, 16)
        # a derived buffer of another shape: named with both shapes, not as of wrong values
        state["text_model.embeddings.position_ids"] = state["text_model.embeddings.position_ids"][0].copy()

    with pytest.raises(StateDictError) as info:
        load_pretrained(_safetensors_copy(tmp_path, edit))
    message = str(info.value)
    assert "model.safetensors" in message
    assert "2 missing" in message and "text_model.pooler.dense.bias" in message
    assert "layers.1.blocks.0.attention.self.relative_position_bias_table" in message
    assert "3 unexpected" in message and "text_model.extra_head.weight" in message
    assert STRAY_INDEX in message and STRAY_COUNTER in message
    assert "4 mis-shaped" in message
    assert f"{PATCH_KERNEL}: checkpoint (8, 16), expected a 4-D conv kernel" in message
    assert "text_model.embeddings.position_ids: checkpoint (80,), model (1, 80)" in message
    assert "do not follow from config.json" not in message
    assert "audio_projection.linear2.weight: checkpoint (24, 23), model (24, 24)" in message
    assert (
        "text_model.encoder.layer.0.intermediate.dense.weight: checkpoint (24, 48), model (48, 24)" in message
    )


def test_a_derived_buffer_with_wrong_values_is_refused(tmp_path):
    name = "audio_model.audio_encoder.layers.0.blocks.1.attention.self.relative_position_index"

    def edit(state):
        state[name] = state[name][::-1].copy()

    with pytest.raises(StateDictError, match="do not follow from config.json") as info:
        load_pretrained(_safetensors_copy(tmp_path, edit))
    assert name in str(info.value)


def test_legacy_layernorm_names_are_accepted(tmp_path):
    def edit(state):
        for suffix, legacy in (("weight", "gamma"), ("bias", "beta")):
            key = f"text_model.embeddings.LayerNorm.{suffix}"
            state[f"text_model.embeddings.LayerNorm.{legacy}"] = state.pop(key)

    model, _ = load_pretrained(_safetensors_copy(tmp_path, edit))
    ref = _reference()
    assert _rel(_outputs(model, ref)["text_embeds"], ref["text_embeds"]) <= 1e-5


def test_checkpoint_location_errors(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="no such folder"):
        load_pretrained(tmp_path / "nowhere" / "clap")
    # a relative path with two slashes is no hub id either (owner/name), not looked up in the cache
    with pytest.raises(CheckpointError, match="^owner/name/extra: no such folder, and not a hub id"):
        load_pretrained("owner/name/extra")
    # a mistyped relative folder (one slash, like owner/name) is named as missing, not looked up on the hub
    monkeypatch.chdir(tmp_path)
    for relative in ("./clap", "../clap"):
        with pytest.raises(
            CheckpointError, match=f"^{re.escape(relative)}: no such folder, and not a hub id"
        ):
            load_pretrained(relative)
    with pytest.raises(
        CheckpointError, match=f"^{FIXTURE / 'config.json'}: expected a checkpoint folder .*, got a file"
    ):
        load_pretrained(FIXTURE / "config.json")
    (tmp_path / "config.json").write_text((FIXTURE / "config.json").read_text())
    (tmp_path / "notes.txt").write_text("hi")
    with pytest.raises(CheckpointError, match="no weights file.*config.json, notes.txt"):
        load_pretrained(tmp_path)


def _online(monkeypatch) -> None:
    """Undo conftest's HF_HUB_OFFLINE=1, for tests whose hub calls are all replaced by fakes."""
    import huggingface_hub

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)


def _fake_hub(tmp_path: Path, monkeypatch, remote: Path) -> tuple[Path, list]:
    """huggingface_hub's two calls replaced by a fake hub serving the folder `remote`: the folder downloads
    go to, and the list of (repo_id, revision, allow_patterns) requested."""
    import fnmatch

    import huggingface_hub

    cache = tmp_path / "cache"
    requests = []

    def in_repo(path: Path) -> str:  # (a file's name in the repository, as the hub gives it: sub/x.json)
        return path.relative_to(remote).as_posix()

    def snapshot_download(repo_id, revision=None, allow_patterns=None):
        requests.append((repo_id, revision, tuple(allow_patterns)))
        cache.mkdir(exist_ok=True)
        for path in sorted(p for p in remote.rglob("*") if p.is_file()):
            if any(fnmatch.fnmatch(in_repo(path), pattern) for pattern in allow_patterns):
                (cache / in_repo(path)).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, cache / in_repo(path))
        return str(cache)

    def model_info(repo_id, revision=None):
        files = sorted(p for p in remote.rglob("*") if p.is_file())
        return SimpleNamespace(siblings=[SimpleNamespace(rfilename=in_repo(p)) for p in files])

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    monkeypatch.setattr(huggingface_hub, "model_info", model_info)
    _online(monkeypatch)
    return cache, requests


def test_hub_id_downloads_config_tokenizer_and_one_weights_format(tmp_path, monkeypatch):
    """The online path, with a fake hub serving a local folder."""
    remote = _safetensors_copy(tmp_path)
    shutil.copyfile(FIXTURE / "pytorch_model.bin", remote / "pytorch_model.bin")  # the hub repo has both
    cache, requests = _fake_hub(tmp_path, monkeypatch, remote)
    model, config = load_pretrained("laion/clap-htsat-unfused", revision="main")
    assert config.source == cache
    assert (cache / "model.safetensors").is_file() and not (cache / "pytorch_model.bin").exists()
    assert (cache / "tokenizer.json").is_file() and (cache / "preprocessor_config.json").is_file()
    assert all(r[:2] == ("laion/clap-htsat-unfused", "main") for r in requests)
    ref = _reference()
    assert _rel(_outputs(model, ref)["logits_per_text"], ref["logits_per_text"]) <= 1e-5


def test_a_sharded_hub_repository_downloads_its_index_and_every_shard(tmp_path, monkeypatch):
    """A large CLAP on the hub is stored as model.safetensors.index.json and its shards: all of them are
    downloaded (the index alone would leave loading to name a shard missing from the cache), no .bin."""
    remote = _sharded_copy(tmp_path)
    shutil.copyfile(FIXTURE / "pytorch_model.bin", remote / "pytorch_model.bin")  # the hub repo has both
    cache, _ = _fake_hub(tmp_path, monkeypatch, remote)
    model, config = load_pretrained("laion/clap-htsat-unfused")
    assert config.source == cache
    weights = sorted(
        p.name for p in cache.iterdir() if p.suffix in (".safetensors", ".bin") or "index" in p.name
    )
    assert weights == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    ref = _reference()
    assert _rel(_outputs(model, ref)["logits_per_text"], ref["logits_per_text"]) <= 1e-5


def test_a_sharded_hub_repository_with_its_shards_in_a_subfolder_downloads_them_there(tmp_path, monkeypatch):
    """An index naming ``sub/model-00001-of-00002.safetensors``: that file of the repository is downloaded
    (asking for its name alone fetched nothing, and loading named the shard missing)."""
    remote = _sharded_copy(tmp_path)
    index = json.loads((remote / "model.safetensors.index.json").read_text())
    (remote / "sub").mkdir()
    for shard in set(index["weight_map"].values()):
        (remote / shard).rename(remote / "sub" / shard)
    index["weight_map"] = {key: f"sub/{shard}" for key, shard in index["weight_map"].items()}
    (remote / "model.safetensors.index.json").write_text(json.dumps(index))
    cache, _ = _fake_hub(tmp_path, monkeypatch, remote)
    model, config = load_pretrained("laion/clap-htsat-unfused")
    assert config.source == cache
    assert sorted(p.name for p in (cache / "sub").iterdir()) == [
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
    ]
    ref = _reference()
    assert _rel(_outputs(model, ref)["logits_per_text"], ref["logits_per_text"]) <= 1e-5


def test_a_hub_index_naming_a_shard_outside_the_repository_is_refused_before_any_weights_are_fetched(
    tmp_path, monkeypatch
):
    """The index is checked as loading checks it, right after the metadata download: the shard it names
    outside the repository is never asked of the hub, nor is any other weights file."""
    remote = _sharded_copy(tmp_path)
    index = json.loads((remote / "model.safetensors.index.json").read_text())
    index["weight_map"][next(iter(index["weight_map"]))] = "../../secret.safetensors"
    (remote / "model.safetensors.index.json").write_text(json.dumps(index))
    cache, requests = _fake_hub(tmp_path, monkeypatch, remote)
    with pytest.raises(CheckpointError, match="names shard '../../secret.safetensors'; shards must be files"):
        load_pretrained("laion/clap-htsat-unfused")
    assert [allow_patterns for _, _, allow_patterns in requests] == [("*.json", "*.txt")]
    assert not list(cache.glob("*.safetensors"))


HUB_ID = "laion/clap-htsat-unfused"


def _hf_cache(tmp_path: Path, monkeypatch, files=None, source: Path = FIXTURE) -> Path:
    """A Hugging Face cache in a temporary HF_HOME holding ``files`` of the fixture as a snapshot of HUB_ID.

    Laid out as huggingface_hub does: ``hub/models--laion--clap-htsat-unfused/`` with ``refs/main`` naming
    the commit, ``blobs/`` the contents and ``snapshots/<commit>/`` links to them. Every call that could
    reach the network fails the test.
    """
    import huggingface_hub
    from huggingface_hub import constants  # a submodule: huggingface_hub 1.x does not load it as an attribute

    def no_network(*args, **kwargs):
        raise AssertionError("a test tried to reach the Hugging Face hub")

    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(home / "hub"))
    for name in ("model_info", "list_repo_files", "repo_info", "hf_hub_download"):
        monkeypatch.setattr(huggingface_hub, name, no_network)
    real_snapshot_download = huggingface_hub.snapshot_download

    def snapshot_download(*args, **kwargs):
        if not kwargs.get("local_files_only"):
            no_network()
        return real_snapshot_download(*args, **kwargs)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    repo = home / "hub" / ("models--" + HUB_ID.replace("/", "--"))
    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    for name in files if files is not None else [p.name for p in source.iterdir() if p.suffix != ".npz"]:
        # (named by their content's sha256, as huggingface_hub names a large file's blob)
        blob = repo / "blobs" / hashlib.sha256((source / name).read_bytes()).hexdigest()
        shutil.copyfile(source / name, blob)
        (snapshot / name).symlink_to(Path("..", "..", "blobs", blob.name))
    return snapshot


def test_cached_hub_id_loads_offline(tmp_path, monkeypatch):
    snapshot = _hf_cache(tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, config = load_pretrained(HUB_ID)
    assert config.source == snapshot
    ref = _reference()
    assert _rel(_outputs(model, ref)["logits_per_audio"], ref["logits_per_audio"]) <= 1e-5
    # A revision that is the cached commit works too.
    _, config = load_pretrained(HUB_ID, revision=snapshot.name)
    assert config.source == snapshot


def test_cached_hub_id_loads_where_the_caches_blobs_folder_is_a_link_to_another_disk(tmp_path, monkeypatch):
    """A cache whose ``blobs/`` was moved to a bigger disk and linked back (``ln -s /data/blobs blobs``) is
    still the snapshot's own store: the hub id, the snapshot folder and the tokenizer and front end on their
    own load from it, where each file was refused as 'leads outside' the snapshot (copy it in with cp -L)."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    blobs = snapshot.parent.parent / "blobs"
    disk = tmp_path / "bigger_disk"
    disk.mkdir()
    blobs.rename(disk / "blobs")
    blobs.symlink_to(disk / "blobs")
    ref = _reference()
    for given in (HUB_ID, snapshot):
        model, config = load_pretrained(given)
        assert config.source == snapshot
        assert _rel(_outputs(model, ref)["logits_per_audio"], ref["logits_per_audio"]) <= 1e-5
    ClapTokenizer.from_pretrained(snapshot)
    ClapFeatureExtractor.from_pretrained(snapshot)


def test_a_cache_whose_blobs_folder_links_to_a_folder_high_up_still_reads_nothing_else_from_it(
    tmp_path, monkeypatch
):
    """A blobs/ linked to a folder high up (ln -s / blobs, or a home folder) made every link of the snapshot
    that led anywhere under it part of the snapshot: its config.json, a link to a file elsewhere on that
    disk, was loaded, where "loading reads nothing outside the checkpoint folder". Only a blob (a file named
    by its hash directly in blobs/) is the snapshot's."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    blobs = snapshot.parent.parent / "blobs"
    for blob in blobs.iterdir():  # (the blobs moved to the disk's top folder, as with ln -s / blobs)
        blob.rename(tmp_path / blob.name)
    blobs.rmdir()
    blobs.symlink_to(tmp_path)
    elsewhere = tmp_path / "someone" / "config.json"
    elsewhere.parent.mkdir()
    (snapshot / "config.json").resolve().rename(elsewhere)
    (snapshot / "config.json").unlink()
    (snapshot / "config.json").symlink_to(elsewhere)
    with pytest.raises(CheckpointError, match=f"{snapshot / 'config.json'} leads outside"):
        load_pretrained(snapshot)
    (snapshot / "config.json").unlink()
    (snapshot / "config.json").symlink_to(Path("..", "..", "blobs", "someone", "config.json"))
    with pytest.raises(CheckpointError, match=f"{snapshot / 'config.json'} leads outside"):
        load_pretrained(snapshot)


@pytest.mark.parametrize("name", ["config.json", "pytorch_model.bin"])
def test_a_cache_file_whose_blob_is_gone_is_named_as_a_broken_link(tmp_path, monkeypatch, name):
    """A snapshot's file whose blob was deleted (a cache cleaned by hand), or a snapshot copied without its
    blobs (cp -r), is named as a link to a blob that does not exist, with the way out. The hub id said the
    snapshot 'needs config.json ..., it holds config.json, ...', and the folder 'cannot be read (No such file
    or directory)' of a file ls lists."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    copy = tmp_path / "copied"
    shutil.copytree(snapshot, copy, symlinks=True)  # as cp -r does: the relative links now lead nowhere
    (snapshot / name).resolve().unlink()
    given_and_broken = ((HUB_ID, snapshot / name), (snapshot, snapshot / name), (copy, copy / "config.json"))
    for given, broken in given_and_broken:
        with pytest.raises((CheckpointError, ClapConfigError)) as raised:
            load_pretrained(given)
        message = str(raised.value)
        assert f"{broken}: a link to ../../blobs/" in message, message
        assert "which does not exist" in message and "cp -rL" in message and "download" in message, message


@pytest.mark.parametrize("name", ["tokenizer.json", "tokenizer_config.json"])
def test_a_tokenizer_file_whose_blob_is_gone_is_refused_not_passed_over(tmp_path, monkeypatch, name):
    """A tokenizer file the snapshot lists but whose blob was deleted was passed over without a word: the
    captions were tokenized from vocab.json + merges.txt, or with tokenizer_config.json's settings left at
    their defaults, not from the files the model was published with. It is named, as the front end's
    files and the weights are."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    (snapshot / name).resolve().unlink()
    with pytest.raises(TokenizerError, match=re.escape(f"{snapshot / name}: a link to ../../blobs/")):
        ClapTokenizer.from_pretrained(snapshot)


def test_a_cache_repository_folder_names_the_snapshot_and_the_hub_id_to_pass(tmp_path, monkeypatch):
    """The cache's ``models--owner--name/`` folder, the one ``ls ~/.cache/huggingface/hub`` shows, holds no
    model itself: it said '.../config.json: no such file'. It names the snapshot refs/main points to and
    the hub id, which loads offline from the cache."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    repo = snapshot.parent.parent
    for load in (load_pretrained, ClapTokenizer.from_pretrained, ClapFeatureExtractor.from_pretrained):
        with pytest.raises((CheckpointError, TokenizerError, FileNotFoundError)) as raised:
            load(repo)
        message = str(raised.value)
        assert "Hugging Face cache" in message and str(snapshot) in message and HUB_ID in message, message


def test_a_revision_the_cache_lacks_is_named_with_the_ones_it_holds(tmp_path, monkeypatch):
    """A revision pinned by a commit the cache does not hold said 'no snapshot of it under HUB', as if the
    model were not cached at all; it names the revision and the commits and refs the cache holds."""
    snapshot = _hf_cache(tmp_path, monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointError) as raised:
        load_pretrained(HUB_ID, revision="c" * 40)
    message = str(raised.value)
    assert f"revision {'c' * 40}" in message and f"{snapshot.name} (main)" in message, message


def test_the_front_end_given_a_hub_id_says_where_its_folder_is(tmp_path, monkeypatch):
    """ClapFeatureExtractor.from_pretrained('owner/name') said 'no such file', where the tokenizer's says it
    takes a folder and that load_pretrained(id)[1].source is the one the model was loaded from."""
    _hf_cache(tmp_path, monkeypatch)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match=re.escape("load_pretrained(id)[1].source")):
        ClapFeatureExtractor.from_pretrained(HUB_ID)


def test_cached_hub_id_loads_when_the_hub_cannot_be_reached(tmp_path, monkeypatch):
    import huggingface_hub

    snapshot = _hf_cache(tmp_path, monkeypatch)
    _online(monkeypatch)
    calls = []

    def unreachable(repo_id, revision=None):
        calls.append(repo_id)
        raise ConnectionError("[Errno -2] Name or service not known")

    monkeypatch.setattr(huggingface_hub, "model_info", unreachable)
    _, config = load_pretrained(HUB_ID)
    assert config.source == snapshot
    assert calls == [HUB_ID]  # one attempt, then the cache


@pytest.mark.parametrize("offline", ["1", "true", "ON"])  # as huggingface_hub reads it
def test_hub_id_offline_and_not_cached_is_explained(tmp_path, monkeypatch, offline):
    _hf_cache(tmp_path, monkeypatch, files=[])
    monkeypatch.setenv("HF_HUB_OFFLINE", offline)
    with pytest.raises(
        CheckpointError, match="clap-htsat-unfused-other: not a local folder.*Offline"
    ) as info:
        load_pretrained("laion/clap-htsat-unfused-other")
    assert "not in the Hugging Face cache" in str(info.value) and "HF_HUB_OFFLINE" in str(info.value)
    # The repo is cached, but without its weights (an interrupted download).
    with pytest.raises(
        CheckpointError, match="cached snapshot .* needs config.json and one of model.safetensors"
    ):
        load_pretrained(HUB_ID)
    # ... or with its weights but not its config.json
    _hf_cache(tmp_path / "weights_only", monkeypatch, files=["pytorch_model.bin"])
    with pytest.raises(
        CheckpointError, match="cached snapshot .* needs config.json .*, it holds pytorch_model.bin"
    ):
        load_pretrained(HUB_ID)


def test_a_hub_id_with_a_trailing_slash_is_named_with_the_id_it_may_mean(tmp_path, monkeypatch):
    """A hub id copied with the hub page's trailing slash said only "not a hub id of the form 'owner/name'";
    huggingface_hub refuses the slash too, so it is refused, naming the id without it."""
    monkeypatch.chdir(tmp_path)
    for load in (load_pretrained, CLAP):
        with pytest.raises(
            CheckpointError,
            match=r"laion/clap-htsat-unfused/: no such folder, and not a hub id .* \(without the trailing "
            r"slash: laion/clap-htsat-unfused\)",
        ):
            load("laion/clap-htsat-unfused/")


# --------------------------------------------------------------------------------------- torch .bin
def _torch_zip(
    folder: Path, pickle_bytes: bytes, storages: dict[str, bytes] | None = None, byteorder: str | None = None
) -> Path:
    path = folder / "pytorch_model.bin"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes)
        if byteorder is not None:  # torch.save writes it ("little" or "big") since torch 2.1
            archive.writestr("archive/byteorder", byteorder)
        for key, data in (storages or {}).items():
            archive.writestr(f"archive/data/{key}", data)
        archive.writestr("archive/version", "3\n")
    return path


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_code_in_a_bin_file_is_refused_not_run(tmp_path, capsys):
    path = _torch_zip(tmp_path, pickle.dumps({"weight": _Evil()}, protocol=2))
    with pytest.raises(UnsafeCheckpointError, match=r"refusing to load '(__builtin__|builtins)\.print'"):
        load_torch_state_dict(path)
    assert "pwned" not in capsys.readouterr().out


@pytest.mark.parametrize(
    "module, name",
    [
        ("collections", "namedtuple"),  # the module of the one allowed global, OrderedDict
        ("torch._utils", "_rebuild_device_tensor_from_numpy"),  # the module of the allowed rebuilders
        ("torch", "load"),  # the module of the allowed storage classes
        ("os", "FloatStorage"),  # an allowed storage class's name in another module
    ],
)
def test_only_the_globals_a_state_dict_needs_are_allowed_not_their_modules(tmp_path, module, name):
    """The allow-list is of names, not of modules: a global next to an allowed one is refused before it is
    resolved, let alone called."""
    # {"w": module.name()}, as pickle opcodes: PROTO 2, EMPTY_DICT, "w", GLOBAL, EMPTY_TUPLE, REDUCE, SETITEM
    payload = b"\x80\x02}X\x01\x00\x00\x00wc" + f"{module}\n{name}\n".encode() + b")Rs."
    path = _torch_zip(tmp_path, payload)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(f"{path}: refusing to load '{module}.{name}'")):
        load_torch_state_dict(path)


class _StorageNamedByAString(pickle.Pickler):
    """Pickles `...` as a persistent record whose storage type is the string "FloatStorage", not the class."""

    def persistent_id(self, obj):
        return ("storage", "FloatStorage", "0", "cpu", 1) if obj is ... else None


def _storage_named_by_a_string() -> bytes:
    buffer = io.BytesIO()
    _StorageNamedByAString(buffer, protocol=2).dump({"w": ...})
    return buffer.getvalue()


@pytest.mark.parametrize(
    "payload, refused",
    [
        (_storage_named_by_a_string(), "unexpected persistent record ('storage', 'FloatStorage',"),
        # {"w": torch._utils._rebuild_tensor_v2(1.0, 0, (1,), (1,))}: a number where the storage goes
        (
            b"\x80\x02}X\x01\x00\x00\x00wctorch._utils\n_rebuild_tensor_v2\n"
            + pickle.dumps((1.0, 0, (1,), (1,)), protocol=2)[2:-1]
            + b"Rs.",
            "a tensor record without a storage",
        ),
    ],
    ids=["storage type", "tensor storage"],
)
def test_records_torch_save_never_writes_are_refused_as_unsafe(tmp_path, payload, refused):
    """A persistent record or tensor that is not made of a storage class of torch's: an UnsafeCheckpointError
    naming the record, not an AttributeError wrapped as an unreadable file."""
    path = _torch_zip(tmp_path, payload)
    with pytest.raises(UnsafeCheckpointError, match=re.escape(f"{path}: {refused}")):
        load_torch_state_dict(path)


def test_non_tensor_entries_and_legacy_files_are_refused(tmp_path):
    path = _torch_zip(tmp_path, pickle.dumps({"step": 3}, protocol=2))
    with pytest.raises(TorchCheckpointError, match="not named tensors: step"):
        load_torch_state_dict(path)
    legacy = tmp_path / "old.bin"
    legacy.write_bytes(pickle.dumps({"a": 1}))
    with pytest.raises(TorchCheckpointError, match="not a zip archive.*torch 1.6"):
        load_torch_state_dict(legacy)


def _without_member(path: Path, member: str) -> Path:
    """`path` rewritten without `member` (a damaged copy: a storage lost)."""
    with zipfile.ZipFile(path) as archive:
        kept = {item: archive.read(item) for item in archive.namelist() if item != member}
    with zipfile.ZipFile(path, "w") as archive:
        for item, data in kept.items():
            archive.writestr(item, data)
    return path


def _float_entry(value: float = 1.0) -> tuple:
    return np.array([value], "<f4").tobytes(), 1, (1,), (1,)


# How each damaged or odd file is made (folder, monkeypatch -> path), and the start of its refusal.
_ODD_BIN_FILES = {
    "truncated pickle": (
        lambda folder, _: _torch_zip(folder, pickle.dumps({"a": 1}, protocol=2)[:-3]),
        "data.pkl cannot be read as a state dict (pickle data was truncated)",
    ),
    "a list": (lambda folder, _: _torch_zip(folder, pickle.dumps([1, 2], protocol=2)), "holds a list"),
    "a tensor named by a number": (
        lambda folder, patch: _bin_without_torch(folder, "FloatStorage", {3: _float_entry()}, patch),
        "entries that are not named tensors: 3",
    ),
    "a storage missing": (
        lambda folder, patch: _without_member(
            _bin_without_torch(folder, "FloatStorage", {"w": _float_entry()}, patch), "archive/data/0"
        ),
        "storage archive/data/0 is missing from the archive",
    ),
    "two data.pkl": (
        lambda folder, _: _recompressed(
            _torch_zip(folder, pickle.dumps({}, protocol=2)), {"other/data.pkl": pickle.dumps({}, protocol=2)}
        ),
        "expected one data.pkl in the archive, found 2",
    ),
    "no file": (lambda folder, _: folder / "missing.bin", "no such file"),
    # (these two were "not a zip archive. Only the zip format torch.save has written since torch 1.6 ...")
    "cut short": (
        lambda folder, _: _written(folder / "cut.bin", (FIXTURE / "pytorch_model.bin").read_bytes()[:-100]),
        "the file is damaged: it starts as a zip archive",
    ),
    "empty": (lambda folder, _: _written(folder / "empty.bin", b""), "the file is empty (0 bytes)"),
}


def _written(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(_ODD_BIN_FILES))
def test_damaged_or_odd_bin_files_are_refused_naming_the_file(tmp_path, monkeypatch, case):
    """Each is a TorchCheckpointError (a ValueError: the CLI's one-line error) that starts with the file: a
    truncated data.pkl was a bare UnpicklingError (a traceback), a file of something else than a dict an
    AttributeError, a tensor named by a number came back under an int key, a missing storage was not said to
    be of this file, a second data.pkl was ignored and a missing file called "not a zip archive"."""
    make, refused = _ODD_BIN_FILES[case]
    path = make(tmp_path, monkeypatch)
    with pytest.raises(TorchCheckpointError, match=re.escape(f"{path}: {refused}")):
        load_torch_state_dict(path)


@pytest.mark.parity
def test_bin_reader_matches_torch_load(tmp_path):
    torch = require("torch")
    base = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    state = {
        "f32": torch.randn(3, 4),
        "f16": torch.randn(5).half(),
        "bf16": torch.randn(2, 3).bfloat16(),
        "bf16_scalar": torch.tensor(2.5).bfloat16(),  # a 0-d tensor, like logit_scale_a
        "i64": torch.tensor(7),
        "bool": torch.tensor([True, False, True]),
        "transposed": base.t(),  # a strided view sharing storage with the next two
        "sliced": base[2:5, 3:],
        "row": base[4],
        "empty": torch.zeros(0, 3),
    }
    path = tmp_path / "state.bin"
    torch.save(state, path)
    ours = load_torch_state_dict(path)
    theirs = torch.load(path, weights_only=True)
    assert ours.keys() == theirs.keys()
    for name, tensor in theirs.items():
        expected = tensor.float().numpy() if tensor.dtype == torch.bfloat16 else tensor.numpy()
        assert ours[name].shape == expected.shape, name
        assert ours[name].dtype == expected.dtype, name
        np.testing.assert_array_equal(ours[name], expected, err_msg=name)


@pytest.mark.parity
def test_bin_reader_reads_a_module_state_dict_with_metadata(tmp_path):
    """``torch.save(module.state_dict())``: an OrderedDict carrying ``_metadata``, BatchNorm counters, Parameters."""
    torch = require("torch")
    module = torch.nn.Sequential(torch.nn.Conv2d(2, 3, 3), torch.nn.BatchNorm2d(3), torch.nn.Linear(4, 2))
    path = tmp_path / "pytorch_model.bin"
    torch.save(module.state_dict(), path)
    torch.save({"weight": torch.nn.Parameter(torch.randn(2, 2))}, tmp_path / "param.bin")
    ours = load_torch_state_dict(path)
    assert list(ours) == list(module.state_dict())
    for name, tensor in module.state_dict().items():
        np.testing.assert_array_equal(ours[name], tensor.numpy(), err_msg=name)
    param = load_torch_state_dict(tmp_path / "param.bin")["weight"]
    assert param.shape == (2, 2) and param.dtype == np.float32


def _bfloat16_bin_without_torch(path: Path, tensors: dict[str, np.ndarray], monkeypatch) -> Path:
    """``torch.save({name: tensor.bfloat16()})`` written without torch (values must be exact in bfloat16)."""
    entries = {}
    for name, value in tensors.items():
        value = np.asarray(value, dtype=np.float32)
        stride = tuple(int(np.prod(value.shape[i + 1 :])) for i in range(value.ndim))
        entries[name] = (
            (value.view(np.uint32) >> 16).astype("<u2").tobytes(),
            value.size,
            value.shape,
            stride,
        )
    return _bin_without_torch(path, "BFloat16Storage", entries, monkeypatch)


def _bin_without_torch(
    folder: Path,
    storage_type: str,
    entries: dict,
    monkeypatch,
    byteorder: str | None = None,
    parameters: bool = False,
) -> Path:
    """A ``torch.save`` zip written without torch: name -> (storage bytes, storage elements, size, stride[,
    storage offset]); storage bytes given as an int n: the storage of the n-th entry (as tied weights share
    one). `parameters`: each tensor saved as an ``nn.Parameter`` (``state_dict(keep_vars=True)``).

    The pickle names torch's globals as torch.save does; stand-ins are registered under those names only while
    pickling (the reader under test never imports them).
    """
    fake_torch, fake_utils = types.ModuleType("torch"), types.ModuleType("torch._utils")

    def _rebuild_tensor_v2(*args):
        raise AssertionError("never called: the reader resolves this name to its own function")

    def _rebuild_parameter(*args):
        raise AssertionError("never called: the reader resolves this name to its own function")

    storage_class = type(storage_type, (), {})
    for obj, module in (
        (_rebuild_tensor_v2, fake_utils),
        (_rebuild_parameter, fake_utils),
        (storage_class, fake_torch),
    ):
        obj.__module__, obj.__qualname__ = module.__name__, obj.__name__
        setattr(module, obj.__name__, obj)

    class Storage:
        def __init__(self, key: str, numel: int) -> None:
            self.key, self.numel = key, numel

    class View:  # pickles as torch.Tensor does: a _rebuild_tensor_v2 call on a persistent storage
        def __init__(self, storage, size, stride, offset=0):
            self.args = (storage, offset, tuple(size), tuple(stride), False, collections.OrderedDict())

        def __reduce__(self):
            return _rebuild_tensor_v2, self.args

    class Parameter:  # pickles as torch.nn.Parameter does: the tensor, requires_grad, backward hooks
        def __init__(self, view) -> None:
            self.view = view

        def __reduce__(self):
            return _rebuild_parameter, (self.view, True, collections.OrderedDict())

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", storage_class, obj.key, "cpu", obj.numel) if isinstance(obj, Storage) else None

    storages, state = {}, collections.OrderedDict()
    for i, (name, (data, numel, size, stride, *offset)) in enumerate(entries.items()):
        key = str(data) if isinstance(data, int) else str(i)
        storages.setdefault(key, data)
        view = View(Storage(key, numel), size, stride, *offset)
        state[name] = Parameter(view) if parameters else view
    buffer = io.BytesIO()
    with monkeypatch.context() as patch:
        patch.setitem(sys.modules, "torch", fake_torch)
        patch.setitem(sys.modules, "torch._utils", fake_utils)
        Pickler(buffer, protocol=2).dump(state)
    return _torch_zip(folder, buffer.getvalue(), storages, byteorder)


def test_bfloat16_scalars_and_arrays_are_read_without_torch(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # any `import torch` now fails
    tensors = {
        "logit_scale_a": np.array(2.5),
        "weight": np.array([[1.0, -0.375, 3.0], [0.0, 96.0, -1.5]]),
        "bias": np.array([0.125]),
    }
    state = load_torch_state_dict(_bfloat16_bin_without_torch(tmp_path, tensors, monkeypatch))
    assert list(state) == list(tensors)
    for name, want in tensors.items():
        assert isinstance(state[name], np.ndarray) and state[name].dtype == np.float32, name
        np.testing.assert_array_equal(state[name], want.astype(np.float32), err_msg=name)


def test_views_at_an_offset_with_strides_are_read_without_torch(tmp_path, monkeypatch):
    """What torch.save writes for views of one storage (a transposed weight, a slice, a row): each tensor
    holds the storage's elements its offset and strides pick, not the storage's first ones in C order."""
    monkeypatch.setitem(sys.modules, "torch", None)
    base = np.arange(60, dtype=np.float32).reshape(6, 10)
    data = base.astype("<f4").tobytes()
    entries = {
        "base": (data, 60, (6, 10), (10, 1)),
        "transposed": (0, 60, (10, 6), (1, 10)),
        "sliced": (0, 60, (3, 7), (10, 1), 23),
        "row": (0, 60, (10,), (1,), 40),
        "column": (0, 60, (6,), (10,), 7),
    }
    state = load_torch_state_dict(_bin_without_torch(tmp_path, "FloatStorage", entries, monkeypatch))
    want = {"base": base, "transposed": base.T, "sliced": base[2:5, 3:], "row": base[4], "column": base[:, 7]}
    for name, value in want.items():
        assert state[name].dtype == np.float32, name
        np.testing.assert_array_equal(state[name], value, err_msg=name)
        assert state[name].flags.writeable, name  # a copy, not a view into the archive's bytes


@pytest.mark.parametrize("byteorder", [None, "little", "big"])
def test_float16_and_big_endian_storages_are_read_without_torch(tmp_path, monkeypatch, byteorder):
    """HalfStorage is float16 (not int16); a checkpoint saved on a big-endian machine says "big" in its
    byteorder member and holds big-endian storages."""
    monkeypatch.setitem(sys.modules, "torch", None)
    order = ">" if byteorder == "big" else "<"
    values = {"HalfStorage": [1.5, -2.25, 65504.0, 2.0**-14], "FloatStorage": [1.5, -2.25, 3e38, 1e-30]}
    for storage_type, numbers in values.items():
        want = np.array(numbers, dtype=np.float16 if storage_type == "HalfStorage" else np.float32)
        data = want.astype(want.dtype.newbyteorder(order)).tobytes()
        folder = tmp_path / storage_type
        folder.mkdir()
        entries = {"w": (data, 4, (2, 2), (2, 1)), "tail": (0, 4, (2,), (1,), 2)}
        path = _bin_without_torch(folder, storage_type, entries, monkeypatch, byteorder)
        state = load_torch_state_dict(path)
        assert state["w"].dtype == want.dtype and state["w"].dtype.isnative, storage_type
        np.testing.assert_array_equal(state["w"], want.reshape(2, 2), err_msg=storage_type)
        np.testing.assert_array_equal(state["tail"], want[2:], err_msg=storage_type)


@pytest.mark.parametrize(
    "storage_type, values",
    [
        ("DoubleStorage", np.array([1e300, -2.5, 1 / 3, 5e-324])),  # not float32's range or precision
        ("FloatStorage", np.array([1.5, -2.25, 3e38, 1e-30], np.float32)),
        ("LongStorage", np.array([2**40, -1, 0, 7])),
        ("IntStorage", np.array([-1, 2**31 - 1, -(2**31), 7], np.int32)),
        ("ShortStorage", np.array([-1, 2**15 - 1, -(2**15), 7], np.int16)),
        ("CharStorage", np.array([-1, 127, -128, 7], np.int8)),
        ("ByteStorage", np.array([255, 0, 128, 7], np.uint8)),
        ("BoolStorage", np.array([True, False, False, True])),
    ],
)
@pytest.mark.parametrize("parameters", [False, True], ids=["tensors", "parameters"])
def test_every_storage_type_is_read_with_its_dtype_without_torch(
    tmp_path, monkeypatch, storage_type, values, parameters
):
    """Each storage class torch.save names is read as its dtype (a float64 file was refused as damaged when
    read as float32, an int32 -1 read as 4294967295 when unsigned), and a state dict saved with its
    ``nn.Parameter`` objects (``state_dict(keep_vars=True)``) holds the tensors one of plain tensors holds."""
    monkeypatch.setitem(sys.modules, "torch", None)
    entries = {"w": (values.astype(values.dtype.newbyteorder("<")).tobytes(), 4, (2, 2), (1, 2))}
    path = _bin_without_torch(tmp_path, storage_type, entries, monkeypatch, parameters=parameters)
    state = load_torch_state_dict(path)
    assert state["w"].dtype == values.dtype
    np.testing.assert_array_equal(state["w"], values.reshape(2, 2).T)  # the (1, 2) strides: transposed


@pytest.mark.parity
def test_bfloat16_bin_checkpoint_loads(tmp_path):
    """A pytorch_model.bin saved in bfloat16, 0-d logit scales included."""
    torch = require("torch")
    folder = tmp_path / "bf16"
    shutil.copytree(FIXTURE, folder)
    state = torch.load(FIXTURE / "pytorch_model.bin", weights_only=True)
    bf16 = {k: v.bfloat16() if v.is_floating_point() else v for k, v in state.items()}
    assert bf16["logit_scale_a"].dim() == 0
    torch.save(bf16, folder / "pytorch_model.bin")
    model, _ = load_pretrained(folder)
    for name, value in (("logit_scale_a", model.logit_scale_a), ("logit_scale_t", model.logit_scale_t)):
        assert value.shape == () and float(value) == float(bf16[name].float()), name
    np.testing.assert_array_equal(
        np.array(model.audio_projection.linear1.weight),
        bf16["audio_projection.linear1.weight"].float().numpy(),
    )
    ref = _reference()
    assert _rel(_outputs(model, ref)["logits_per_audio"], ref["logits_per_audio"]) < 0.05


@pytest.mark.parity
def test_truncated_storage_is_reported(tmp_path):
    torch = require("torch")
    path = tmp_path / "state.bin"
    torch.save({"w": torch.randn(100)}, path)
    broken = tmp_path / "broken.bin"
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(broken, "w") as dst:
        for item in src.namelist():
            data = src.read(item)
            dst.writestr(item, data[:40] if "/data/" in item else data)
    with pytest.raises(
        TorchCheckpointError,
        match=r"storage 0 holds 40 bytes, the pickle says 100 elements .400 bytes. .member state/data/0.",
    ):
        load_torch_state_dict(broken)


# -------------------------------------------------------------------------------------------- export
def _perturbed_model():
    model, config = load_pretrained(FIXTURE)
    # Stand-in for fine-tuning: change a weight in each tower and a logit scale.
    proj = model.audio_projection.linear1.weight
    model.audio_projection.linear1.weight = proj + 0.05
    model.text_model.encoder.layer[0].attention.self.query.bias = mx.zeros_like(
        model.text_model.encoder.layer[0].attention.self.query.bias
    )
    model.logit_scale_a = mx.array(2.5)
    return model, config


def test_export_files_follow_the_umask(tmp_path):
    """A serving process running as another user can read the exported model (tempfile's 0o600 before)."""
    import os

    model, config = _perturbed_model()
    before = os.umask(0o002)
    try:
        out = save_pretrained(model, config, tmp_path / "export")
    finally:
        os.umask(before)
    for name in ("model.safetensors", "config.json", "tokenizer.json"):
        assert (out / name).stat().st_mode & 0o777 == 0o664, name


@pytest.mark.parametrize("dtype", ["bfloat16", mx.bfloat16, "int8", mx.int32])
def test_an_export_dtype_it_cannot_write_is_refused_before_anything_is_created(tmp_path, dtype):
    """dtype="bfloat16" (or mx.bfloat16) ended in numpy's bare "data type 'bfloat16' not understood" and left
    an empty out_dir behind."""
    model, config = _perturbed_model()
    # bfloat16 is refused with what to do instead (load the float32 export as bfloat16), not only as unknown.
    expected = "bfloat16 is not offered" if "bfloat16" in str(dtype) else "expected float32"
    with pytest.raises(ValueError, match=rf"save_pretrained: dtype .*{expected}"):
        save_pretrained(model, config, tmp_path / "export", dtype=dtype)
    assert not (tmp_path / "export").exists()
    out = save_pretrained(model, config, tmp_path / "half", dtype=mx.float16)  # an MLX dtype works
    assert json.loads((out / "config.json").read_text())["dtype"] == "float16"


def test_the_audio_tower_alone_is_refused_naming_the_clap_model_to_export(tmp_path):
    """A classifier's fine-tuned backbone (`model.audio_model`) passed alone got a StateDictError of 118
    unexpected and 167 missing weights that advised merging LoRA adapters."""
    model, config = _perturbed_model()
    encoder = model.audio_model.audio_encoder
    encoder.norm.weight = encoder.norm.weight + 0.1  # the fine-tuning the export must carry
    with pytest.raises(TypeError, match=r"audio tower alone \(ClapAudioModel\).*clap.audio_model.update"):
        save_pretrained(model.audio_model, config, tmp_path / "export")
    assert not (tmp_path / "export").exists()
    clap, _ = load_pretrained(FIXTURE)  # the documented way round: the tuned tower in a whole ClapModel
    clap.audio_model.update(model.audio_model.parameters())
    reloaded, _ = load_pretrained(save_pretrained(clap, config, tmp_path / "whole"))
    np.testing.assert_array_equal(
        np.array(reloaded.audio_model.audio_encoder.norm.weight),
        np.array(model.audio_model.audio_encoder.norm.weight),
    )


def test_an_export_into_a_killed_exports_folder_leaves_no_temporary_file(tmp_path):
    """A CLAP run killed as it exported left ``hf_model/.tmp-*.safetensors``; its resume exported beside it,
    and the folder uploaded to the Hub carried the stray file. A user's own hidden files stay."""
    model, config = _perturbed_model()
    out = tmp_path / "export"
    out.mkdir()
    (out / ".tmp-13be94b5aa2c4f0e9d3b7a6c5e4f3a21.safetensors").write_bytes(b"")  # the killed export's
    (out / ".tmp-0f1e2d3c4b5a69788796a5b4c3d2e1f0.json").write_text("{")  # its config.json's
    (out / ".gitattributes").write_text("*.safetensors filter=lfs\n")
    save_pretrained(model, config, out)
    assert sorted(p.name for p in out.glob(".*")) == [".gitattributes"]


def test_saving_into_a_folder_holding_a_model_is_refused_unless_overwrite(tmp_path):
    """save_pretrained wrote into any folder: a notebook's save into config.source replaced the pretrained
    checkpoint the model was loaded from with the fine-tuned weights, without a word."""
    model, config = _perturbed_model()
    saved = save_pretrained(model, config, tmp_path / "pretrained")
    loaded, loaded_config = load_pretrained(saved)
    weights = (saved / "model.safetensors").read_bytes()
    loaded.logit_scale_a = mx.array(0.0)  # fine-tuned
    with pytest.raises(FileExistsError) as refused:
        save_pretrained(loaded, loaded_config, loaded_config.source)
    assert str(refused.value) == (
        f"save_pretrained: {saved} already holds the checkpoint this model was loaded from (config.json, "
        "model.safetensors, preprocessor_config.json and 4 more); choose a new folder, or pass "
        "overwrite=True to replace them"
    )
    copy = shutil.copytree(FIXTURE, tmp_path / "copy")  # a pytorch_model.bin, another model's
    with pytest.raises(FileExistsError, match=r"copy already holds a model's files \(config\.json, pytorch_"):
        save_pretrained(loaded, loaded_config, copy)
    assert not (copy / "model.safetensors").exists()
    assert (saved / "model.safetensors").read_bytes() == weights
    save_pretrained(loaded, loaded_config, saved, overwrite=True)
    assert (saved / "model.safetensors").read_bytes() != weights
    with pytest.raises(
        NotADirectoryError, match=r"save_pretrained: .*config\.json is a file; expected a folder"
    ):
        save_pretrained(loaded, loaded_config, saved / "config.json", overwrite=True)


def test_the_refusal_sees_the_loaded_checkpoint_by_a_relative_path_and_a_dangling_link(tmp_path, monkeypatch):
    """The checkpoint the model came from, named by another path to it, is still said to be that one; a
    config.json that is a link to nothing is still a model's file to keep."""
    model, config = _perturbed_model()
    loaded, loaded_config = load_pretrained(save_pretrained(model, config, tmp_path / "pretrained"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileExistsError, match="already holds the checkpoint this model was loaded from"):
        save_pretrained(loaded, loaded_config, "pretrained")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "config.json").symlink_to(tmp_path / "gone.json")
    with pytest.raises(FileExistsError, match=r"linked already holds a model's files \(config\.json\)"):
        save_pretrained(model, config, linked)


def test_export_round_trips_bitwise_with_all_files(tmp_path):
    model, config = _perturbed_model()
    out = save_pretrained(model, config, tmp_path / "export")
    for name in (
        "config.json",
        "model.safetensors",
        "preprocessor_config.json",
        "tokenizer.json",
        "vocab.json",
    ):
        assert (out / name).is_file(), name
    assert not list(out.glob(".*"))  # no temporary files left behind
    again, again_config = load_pretrained(out)
    a, b = dict(tree_flatten(model.parameters())), dict(tree_flatten(again.parameters()))
    for name in a:
        np.testing.assert_array_equal(np.array(a[name]), np.array(b[name]), err_msg=name)
    assert again_config == config
    assert again_config.num_batches_tracked == config.num_batches_tracked
    # the BatchNorm counter is the fixture's, written back as transformers saves it (not reset to 0)
    from safetensors.numpy import load_file

    counter = "audio_model.audio_encoder.batch_norm.num_batches_tracked"
    assert config.num_batches_tracked == {counter: 112}
    assert load_file(str(out / "model.safetensors"))[counter].tolist() == 112
    # transformers' from_pretrained refuses a safetensors file without this metadata.
    from safetensors import safe_open

    with safe_open(str(out / "model.safetensors"), "numpy") as weights:
        assert weights.metadata() == {"format": "pt"}
    tokens = ClapTokenizer.from_pretrained(out)(["a dog barks"])
    assert tokens["input_ids"].shape == (1, 77)


def test_the_export_takes_the_front_end_and_tokenizer_it_is_given(tmp_path):
    """extractor_dir=, tokenizer= (a folder or a ClapTokenizer, as the CLAP recipe's export passes) and the
    config passed decide where the front-end and tokenizer files come from, not the model's own config."""
    from dataclasses import replace

    model, config = _perturbed_model()
    other = tmp_path / "other"
    other.mkdir()
    for name in ("preprocessor_config.json", "tokenizer_config.json"):
        marked = {**json.loads((FIXTURE / name).read_text()), "marker": "other"}
        (other / name).write_text(json.dumps(marked))
    for name in ("tokenizer.json", "vocab.json", "merges.txt"):
        shutil.copyfile(FIXTURE / name, other / name)

    def marker(out, name):
        return json.loads((out / name).read_text()).get("marker")

    out = save_pretrained(model, config, tmp_path / "given", extractor_dir=other, tokenizer=other)
    assert marker(out, "preprocessor_config.json") == marker(out, "tokenizer_config.json") == "other"
    out = save_pretrained(model, replace(config, source=other), tmp_path / "config_source")
    assert marker(out, "preprocessor_config.json") == marker(out, "tokenizer_config.json") == "other"
    tokenizer = ClapTokenizer.from_pretrained(other)
    out = save_pretrained(model, replace(config, source=None), tmp_path / "tokenizer", tokenizer=tokenizer)
    assert marker(out, "tokenizer_config.json") == "other" and (out / "tokenizer.json").is_file()
    assert not (out / "preprocessor_config.json").exists()  # (no source, no extractor_dir: none to copy)


@pytest.mark.parity
def test_export_loads_in_transformers_with_identical_outputs(tmp_path):
    torch = require("torch")
    require("transformers")
    from transformers import ClapModel as HFClapModel

    model, config = _perturbed_model()
    model.eval()
    out = save_pretrained(model, config, tmp_path / "export")
    hf, info = HFClapModel.from_pretrained(out, output_loading_info=True)
    hf.eval()
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"], info
    for name, tensor in hf.state_dict().items():
        if name.endswith("num_batches_tracked"):
            assert int(tensor) == config.num_batches_tracked[name], name
    ref = _reference()
    ours = model(
        mx.array(ref["input_features"]),
        mx.array(ref["input_ids"]),
        mx.array(ref["attention_mask"]),
    )
    with torch.no_grad():
        theirs = hf(
            input_features=torch.from_numpy(ref["input_features"]),
            input_ids=torch.from_numpy(ref["input_ids"]).long(),
            attention_mask=torch.from_numpy(ref["attention_mask"]).long(),
        )
    for key in ("audio_embeds", "text_embeds", "logits_per_audio", "logits_per_text"):
        assert _rel(np.array(ours[key]), getattr(theirs, key).numpy()) <= 1e-5, key
    # The edits were exported (outputs differ from the unedited fixture's).
    assert not np.allclose(theirs.logits_per_audio.numpy(), ref["logits_per_audio"])


def _float16_source(tmp_path: Path) -> Path:
    """The fixture with the dtype entries a float16 download's config.json carries (transformers 4 and 5)."""
    folder = tmp_path / "fp16"
    shutil.copytree(FIXTURE, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(dtype="float16", torch_dtype="float16")
    config["text_config"]["torch_dtype"] = "float16"
    (folder / "config.json").write_text(json.dumps(config))
    return folder


def test_export_declares_the_dtype_of_its_weights(tmp_path):
    from safetensors.numpy import load_file

    model, config = load_pretrained(_float16_source(tmp_path))
    for dtype, name in ((np.float32, "float32"), (np.float16, "float16")):
        out = save_pretrained(model, config, tmp_path / name, dtype=dtype)
        written = json.loads((out / "config.json").read_text())
        assert written["dtype"] == written["torch_dtype"] == written["text_config"]["torch_dtype"] == name
        assert load_file(str(out / "model.safetensors"))["logit_scale_a"].dtype == dtype
    # A source without dtype entries: the export names its type all the same.
    model, config = load_pretrained(FIXTURE)
    written = json.loads((save_pretrained(model, config, tmp_path / "plain") / "config.json").read_text())
    assert written["dtype"] == "float32"


@pytest.mark.parity
def test_export_of_a_float16_source_loads_in_transformers_as_float32(tmp_path):
    torch = require("torch")
    require("transformers")
    from transformers import ClapModel as HFClapModel

    model, config = load_pretrained(_float16_source(tmp_path))
    out = save_pretrained(model, config, tmp_path / "export")
    hf = HFClapModel.from_pretrained(out)
    assert {p.dtype for p in hf.parameters()} == {torch.float32}


# ------------------------------------------------------------------------------------------ tokenizer
CAPTIONS = ["a dog barks twice in the distance", "rain falls", "", "birds chirp " * 60]


def test_tokenizer_pads_to_77_and_truncates_with_end_token():
    tokenizer = ClapTokenizer.from_pretrained(FIXTURE)
    tokens = tokenizer(CAPTIONS)
    ids, mask = tokens["input_ids"], tokens["attention_mask"]
    assert ids.shape == mask.shape == (4, 77) and ids.dtype == np.int32
    assert (ids[:, 0] == 0).all()  # <s>
    lengths = mask.sum(axis=1)
    assert lengths[3] == 77 and ids[3, -1] == 2  # truncated, still closed with </s>
    assert lengths[2] == 2  # empty caption: <s></s>
    for row, n in zip(ids, lengths):
        assert row[n - 1] == 2 and (row[n:] == 1).all()
    assert tokenizer.decode(ids[0]) == CAPTIONS[0]
    longest = ClapTokenizer.from_pretrained(FIXTURE, padding="longest")(CAPTIONS[:2])
    assert longest["input_ids"].shape[1] == mask[:2].sum(axis=1).max()
    # No captions: empty rows, not max() of nothing.
    assert ClapTokenizer.from_pretrained(FIXTURE, padding="longest")([])["input_ids"].shape == (0, 0)
    # One caption given as a bare string is one row, not a row per character.
    alone = tokenizer(CAPTIONS[0])
    assert alone["input_ids"].shape == alone["attention_mask"].shape == (1, 77)
    np.testing.assert_array_equal(alone["input_ids"], ids[:1])
    np.testing.assert_array_equal(alone["attention_mask"], mask[:1])


def test_the_tokenizer_takes_transformers_keywords():
    """padding=, truncation= and return_tensors= as transformers' tokenizers take them (ClapProcessor passes
    them on); each was a TypeError, and a value that would change the result is refused, not ignored."""
    import mlx.core as mx

    tokenizer = ClapTokenizer.from_pretrained(FIXTURE)
    plain = tokenizer(CAPTIONS)
    longest = ClapTokenizer.from_pretrained(FIXTURE, padding="longest")(CAPTIONS[:2])
    for padding in ("longest", True):
        got = tokenizer(CAPTIONS[:2], padding=padding)
        for name, value in longest.items():
            np.testing.assert_array_equal(got[name], value)
    as_mlx = tokenizer(CAPTIONS, padding="max_length", truncation=True, return_tensors="mlx")
    as_numpy = tokenizer(CAPTIONS, truncation="longest_first", return_tensors="np")
    for name, value in plain.items():
        assert isinstance(as_mlx[name], mx.array)
        np.testing.assert_array_equal(np.array(as_mlx[name]), value)
        np.testing.assert_array_equal(as_numpy[name], value)
    with pytest.raises(TokenizerError, match="padding=False is not available"):
        tokenizer(CAPTIONS, padding=False)
    with pytest.raises(TokenizerError, match=r"truncation=False is not available: .* cut to max_length \(77"):
        tokenizer(CAPTIONS, truncation=False)
    with pytest.raises(TokenizerError, match=r"return_tensors='pt' is not available"):
        tokenizer(CAPTIONS, return_tensors="pt")


@pytest.mark.parity
def test_tokenizer_matches_transformers():
    require("torch")
    require("transformers")
    from transformers import AutoTokenizer

    theirs = AutoTokenizer.from_pretrained(str(FIXTURE))
    want = theirs(CAPTIONS, padding="max_length", truncation=True, max_length=77, return_tensors="np")
    got = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])


def test_tokenizer_from_vocab_and_merges_only(tmp_path):
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    slow = ClapTokenizer.from_pretrained(tmp_path)(CAPTIONS)
    fast = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)
    np.testing.assert_array_equal(slow["input_ids"], fast["input_ids"])


def test_a_folder_with_only_vocab_and_merges_tokenizes_as_roberta_does(tmp_path):
    """No tokenizer_config.json: add_prefix_space is RobertaTokenizer's default (false), so the first word
    gets the same id as through the fixture's tokenizer.json (with a prefix space it was another token)."""
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    slow_tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    slow = slow_tokenizer(CAPTIONS)
    fast = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)
    np.testing.assert_array_equal(slow["input_ids"], fast["input_ids"])
    np.testing.assert_array_equal(slow["attention_mask"], fast["attention_mask"])
    # <s>, </s> and <pad> are special tokens there too: decoding a row gives the caption alone.
    assert slow_tokenizer.decode(slow["input_ids"][0]) == CAPTIONS[0]


def test_a_vocab_and_merges_folder_keeps_the_tokens_its_added_tokens_json_adds(tmp_path):
    """transformers' RobertaTokenizer reads the tokens a user added (add_tokens, then save_pretrained) from
    added_tokens.json: "<laugh>" is its one id there. It was ignored here, the token split into byte-level
    pieces, other ids than transformers' (checked against transformers 5.24 by hand), silently."""
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    next_id = len(json.loads((FIXTURE / "vocab.json").read_text()))
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<laugh>": next_id, "<mask>": 4}))
    tokenizer = ClapTokenizer.from_pretrained(tmp_path, padding="longest")
    plain = tokenizer(["a dog"])["input_ids"][0].tolist()
    assert tokenizer(["a dog<laugh>"])["input_ids"][0].tolist() == [*plain[:-1], next_id, plain[-1]]
    # An id `tokenizers` would not give it (it gives the next one) is named, not encoded as another id.
    (tmp_path / "added_tokens.json").write_text(json.dumps({"<laugh>": next_id + 5}))
    with pytest.raises(
        TokenizerError, match=f"added_tokens.json: '<laugh>' has id {next_id + 5}, expected {next_id}"
    ):
        ClapTokenizer.from_pretrained(tmp_path)


def test_a_tokenizer_config_without_add_prefix_space_reads_vocab_and_merges_as_roberta_does(tmp_path):
    """RobertaTokenizer's default (false) where tokenizer_config.json does not state add_prefix_space: with a
    prefix space the first word of every caption was another token ("a" 69 became "Ġa" 261)."""
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    slow = ClapTokenizer.from_pretrained(tmp_path)(CAPTIONS)
    fast = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)
    np.testing.assert_array_equal(slow["input_ids"], fast["input_ids"])


def test_tokenizer_configs_add_prefix_space_rules_tokenizer_json_as_in_transformers(tmp_path):
    """transformers' RobertaTokenizer sets tokenizer.json's ByteLevel add_prefix_space to
    tokenizer_config.json's (false where unstated). It was read only beside vocab.json + merges.txt: with a
    tokenizer.json the first word of every caption was another id than transformers' (checked against
    transformers 5.24 by hand) where the two files disagree."""
    vocab_files = tmp_path / "vocab_files"
    vocab_files.mkdir()
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(FIXTURE / name, vocab_files / name)
    with_json = tmp_path / "with_json"
    with_json.mkdir()
    shutil.copyfile(FIXTURE / "tokenizer.json", with_json / "tokenizer.json")
    for add_prefix_space in (True, False):
        for folder in (vocab_files, with_json):
            (folder / "tokenizer_config.json").write_text(json.dumps({"add_prefix_space": add_prefix_space}))
        want = ClapTokenizer.from_pretrained(vocab_files)(CAPTIONS)["input_ids"]
        np.testing.assert_array_equal(ClapTokenizer.from_pretrained(with_json)(CAPTIONS)["input_ids"], want)
    # A tokenizer.json saying true beside a config that does not say: false, as transformers reads it.
    spec = json.loads((FIXTURE / "tokenizer.json").read_text())
    spec["pre_tokenizer"]["add_prefix_space"] = True
    (with_json / "tokenizer.json").write_text(json.dumps(spec))
    (with_json / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    got = ClapTokenizer.from_pretrained(with_json)(CAPTIONS)["input_ids"]
    np.testing.assert_array_equal(got, ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)["input_ids"])


def test_a_tokenizer_config_asking_for_left_padding_or_truncation_is_warned_of(tmp_path):
    """transformers follows tokenizer_config.json's padding_side / truncation_side "left"; audiotrain keeps
    right (CLAP pools the first position), so its ids differed from transformers' without a word."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    config = json.loads((FIXTURE / "tokenizer_config.json").read_text())
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "padding_side": "left"}))
    with pytest.warns(UserWarning, match="padding_side 'left' is not used: audiotrain truncates"):
        tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    np.testing.assert_array_equal(
        tokenizer(CAPTIONS)["input_ids"], ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)["input_ids"]
    )
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({**config, "truncation_side": "left"}))
    with pytest.warns(UserWarning, match="truncation_side 'left' is not used"):
        ClapTokenizer.from_pretrained(tmp_path)


def test_a_padding_saved_in_tokenizer_json_does_not_count_pads_as_caption_tokens(tmp_path):
    """A tokenizer.json saved with padding on (transformers writes it when padding was enabled): its pads are
    not real tokens, so the rows and attention masks are those of the same file without it."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    assert spec["padding"] is None
    spec["padding"] = {
        "strategy": {"Fixed": 77},
        "direction": "Right",
        "pad_to_multiple_of": None,
        "pad_id": 1,
        "pad_type_id": 0,
        "pad_token": "<pad>",
    }
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    for padding in ("max_length", "longest"):
        padded = ClapTokenizer.from_pretrained(tmp_path, padding=padding)(CAPTIONS[:3])
        plain = ClapTokenizer.from_pretrained(FIXTURE, padding=padding)(CAPTIONS[:3])
        np.testing.assert_array_equal(padded["input_ids"], plain["input_ids"])
        np.testing.assert_array_equal(padded["attention_mask"], plain["attention_mask"])
    assert padded["attention_mask"].sum(axis=1).tolist()[2] == 2  # the empty caption: <s></s>


def test_a_long_caption_of_long_tokens_keeps_all_its_tokens_after_the_cut(tmp_path):
    """Captions are cut to max_length * CAPTION_CHARS_PER_TOKEN characters before tokenizing: the cut must
    never reach the tokens kept. "and the " splits into the fixture's longest tokens (4 characters)."""
    from tokenizers import Tokenizer

    whole = Tokenizer.from_file(str(FIXTURE / "tokenizer.json"))
    whole.enable_truncation(77)
    for text in ("and the " * 60, "birds chirp " * 60, "x" * 5000):
        rows = ClapTokenizer.from_pretrained(FIXTURE)([text])
        want = whole.encode(text).ids
        assert len(want) == 77
        assert rows["input_ids"][0].tolist() == want, text[:20]
        assert rows["attention_mask"][0].sum() == 77


def test_a_folder_given_with_a_tilde_loads_its_tokenizer_and_front_end_as_clap_loads_its_model(
    tmp_path, monkeypatch
):
    """CLAP("~/ckpt") loaded the model, but ClapTokenizer.from_pretrained("~/ckpt") said "~/ckpt: no such
    folder" and ClapFeatureExtractor.from_pretrained "no such file", for the same folder."""
    from audiotrain.models.clap import ClapFeatureExtractor

    monkeypatch.setenv("HOME", str(tmp_path))
    shutil.copytree(FIXTURE, tmp_path / "ckpt")
    CLAP("~/ckpt")
    tokenizer = ClapTokenizer.from_pretrained("~/ckpt")
    assert tokenizer(["a dog barks"])["input_ids"].shape == (1, 77)
    for given in ("~/ckpt", "~/ckpt/preprocessor_config.json"):
        assert ClapFeatureExtractor.from_pretrained(given).sampling_rate == 48000


def test_a_tokenizer_folder_that_is_not_there_is_named_so(tmp_path):
    """A mistyped folder or a hub id said "no tokenizer.json (or vocab.json + merges.txt)", as if the
    folder were there without them."""
    with pytest.raises(TokenizerError, match=re.escape(f"{tmp_path / 'typo'}: no such folder") + "$"):
        ClapTokenizer.from_pretrained(tmp_path / "typo")
    with pytest.raises(
        TokenizerError,
        match=r"^laion/clap-htsat-unfused: no such folder; .* not a hub id: CLAP\(id\).config.source",
    ):
        ClapTokenizer.from_pretrained("laion/clap-htsat-unfused")
    with pytest.raises(TokenizerError, match=r"config.json: expected a checkpoint folder, got a file$"):
        ClapTokenizer.from_pretrained(FIXTURE / "config.json")


def test_a_tokenizer_file_that_is_a_fifo_or_a_folder_is_named_so(tmp_path):
    """A tokenizer.json that is a FIFO (a folder from someone else) or a folder said "no tokenizer.json (or
    vocab.json + merges.txt)", as if the folder lacked it; neither is opened."""
    os.mkfifo(tmp_path / "tokenizer.json")
    fifo = f"{tmp_path / 'tokenizer.json'}: is a FIFO, not a regular file"  # (not "a FIFO, a device or ...")
    with pytest.raises(TokenizerError, match=re.escape(fifo)):
        ClapTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").unlink()
    (tmp_path / "tokenizer.json").mkdir()
    folder = f"{tmp_path / 'tokenizer.json'}: is a folder, not a regular file"
    with pytest.raises(TokenizerError, match=re.escape(folder)):
        ClapTokenizer.from_pretrained(tmp_path)


def test_a_torch_weights_file_that_is_a_fifo_is_named_so_not_called_missing(tmp_path):
    """load_torch_state_dict said "no such file" of a pytorch_model.bin that was a FIFO; it is not opened."""
    os.mkfifo(tmp_path / "pytorch_model.bin")
    with pytest.raises(
        TorchCheckpointError,
        match=re.escape(f"{tmp_path / 'pytorch_model.bin'}: is a FIFO, not a regular file"),
    ):
        load_torch_state_dict(tmp_path / "pytorch_model.bin")
    with pytest.raises(TorchCheckpointError, match=re.escape(f"{tmp_path / 'missing.bin'}: no such file")):
        load_torch_state_dict(tmp_path / "missing.bin")


def test_tokenizer_errors(tmp_path):
    with pytest.raises(TokenizerError, match=re.escape(f"{tmp_path}: no tokenizer.json")):
        ClapTokenizer.from_pretrained(tmp_path)
    (tmp_path / "vocab.json").write_text("{not json")
    with pytest.raises(
        TokenizerError, match=re.escape(f"{tmp_path}: no tokenizer.json (or vocab.json + merges")
    ):
        ClapTokenizer.from_pretrained(tmp_path)  # vocab.json without merges.txt is no tokenizer either
    shutil.copyfile(FIXTURE / "merges.txt", tmp_path / "merges.txt")
    with pytest.raises(
        TokenizerError, match=re.escape(f"{tmp_path}: vocab.json / merges.txt cannot be read (")
    ):
        ClapTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer.json").write_text("{not json")
    with pytest.raises(
        TokenizerError, match=re.escape(f"{tmp_path / 'tokenizer.json'}: cannot be read by `tokenizers`")
    ):
        ClapTokenizer.from_pretrained(tmp_path)
    tokenizer = ClapTokenizer.from_pretrained(FIXTURE)
    with pytest.raises(TokenizerError, match=r"texts\[1\] is a int"):
        tokenizer(["fine", 3])
    # None or a number met "'NoneType' object is not iterable"; bytes were read as ints ("texts[0] is a int")
    for texts, said in ((None, "NoneType"), (42, "int")):
        with pytest.raises(
            TokenizerError, match=f"^texts must be a string or a list of strings, got {said}$"
        ):
            tokenizer(texts)
    with pytest.raises(TokenizerError, match=r"^texts is bytes: decode it to a string first"):
        tokenizer(b"dog")
    # A lone surrogate (a JSON "\\ud800" escape) met a bare TypeError from `tokenizers` naming nothing.
    with pytest.raises(
        TokenizerError, match=r"^texts\[1\] holds a lone surrogate \('\\udcc3' at character 1: "
    ):
        tokenizer(["fine", "x\udcc3y"])
    assert tokenizer(("a dog", "rain"))["input_ids"].shape[0] == 2
    # transformers' other values ("do_not_pad", True) are not ours: refused, not taken for "longest"
    for padding in ("max", "do_not_pad", True):
        with pytest.raises(TokenizerError, match="padding"):
            ClapTokenizer.from_pretrained(FIXTURE, padding=padding)
    # Two tokens hold only <s></s>: every caption would be the same row.
    with pytest.raises(TokenizerError, match="max_length must be at least 3"):
        ClapTokenizer.from_pretrained(FIXTURE, max_length=2)
    # A string or a float (77.0 from a config) met a raw TypeError naming no parameter.
    for max_length in ("77", 77.0, True):
        with pytest.raises(
            TokenizerError, match=f"max_length must be .* a whole number, got {max_length!r}$"
        ):
            ClapTokenizer.from_pretrained(FIXTURE, max_length=max_length)
    assert ClapTokenizer.from_pretrained(FIXTURE, max_length=3)(["rain falls"])["input_ids"].tolist() == [
        [0, 280, 2]
    ]


def test_trained_tokenizer_has_roberta_special_ids(tmp_path):
    tokenizer = ClapTokenizer.train(["a cat meows", "a cow moos loudly"] * 3, vocab_size=300, max_length=16)
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    tokens = tokenizer(["a cat moos"])
    assert tokens["input_ids"].shape == (1, 16)
    # Its rows are RoBERTa's: <s> caption </s>, then <pad>.
    length = tokens["attention_mask"][0].sum()
    assert tokens["input_ids"][0, 0] == 0 and tokens["input_ids"][0, length - 1] == 2
    assert (tokens["input_ids"][0, length:] == 1).all() and 2 < length < 16
    tokenizer.save_pretrained(tmp_path)
    again = ClapTokenizer.from_pretrained(tmp_path, max_length=16)(["a cat moos"])
    np.testing.assert_array_equal(again["input_ids"], tokens["input_ids"])
    # The saved tokenizer_config.json states the length, which is what a reader that asks for none gets
    # (transformers' model_max_length).
    saved_config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert saved_config["model_max_length"] == 16
    # transformers reads the special tokens from it (AutoTokenizer on an exported demo model).
    specials = ("bos_token", "eos_token", "pad_token", "unk_token", "mask_token", "cls_token", "sep_token")
    assert [saved_config[name] for name in specials] == [
        "<s>",
        "</s>",
        "<pad>",
        "<unk>",
        "<mask>",
        "<s>",
        "</s>",
    ]
    reread = ClapTokenizer.from_pretrained(tmp_path)
    assert reread.max_length == reread.model_max_length == 16


def test_a_tokenizer_read_from_a_folder_saves_copies_of_its_files(tmp_path):
    """save_pretrained next to a fine-tuned model copies the checkpoint's tokenizer files as they are: a
    tokenizer_config.json rewritten with the run's max_length would change the length a reload asks for
    (model_max_length 512 became 40). Saving into the folder it was read from keeps its files: they were
    rewritten so, and a later load with no length asked for got 40 tokens, not 77."""
    names = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt")
    tokenizer = ClapTokenizer.from_pretrained(FIXTURE, max_length=40)
    tokenizer.save_pretrained(tmp_path / "saved")
    for name in names:
        assert (tmp_path / "saved" / name).read_bytes() == (FIXTURE / name).read_bytes(), name
    reread = ClapTokenizer.from_pretrained(tmp_path / "saved", max_length=40)
    np.testing.assert_array_equal(reread(CAPTIONS)["input_ids"], tokenizer(CAPTIONS)["input_ids"])
    assert reread.model_max_length == 512
    shutil.copytree(FIXTURE, tmp_path / "ckpt")
    ClapTokenizer.from_pretrained(tmp_path / "ckpt", max_length=40).save_pretrained(tmp_path / "ckpt")
    for name in names:
        assert (tmp_path / "ckpt" / name).read_bytes() == (FIXTURE / name).read_bytes(), name
    assert ClapTokenizer.from_pretrained(tmp_path / "ckpt").max_length == 77


def test_tokenizer_json_is_read_before_vocab_and_merges(tmp_path):
    """As transformers' fast tokenizer: a folder with tokenizer.json and the slow files is read from
    tokenizer.json, which may hold what the slow files do not (here they are unreadable)."""
    shutil.copyfile(FIXTURE / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "vocab.json").write_text("{not json")
    (tmp_path / "merges.txt").write_text("not merges")
    rows = ClapTokenizer.from_pretrained(tmp_path)(CAPTIONS)
    np.testing.assert_array_equal(
        rows["input_ids"], ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)["input_ids"]
    )


def test_a_tokenizer_config_without_model_max_length_gives_77_tokens(tmp_path):
    """Older tokenizer_config.json files do not state model_max_length: LAION's 77, not a raw KeyError."""
    shutil.copyfile(FIXTURE / "tokenizer.json", tmp_path / "tokenizer.json")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "RobertaTokenizer"}))
    tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    assert (tokenizer.max_length, tokenizer.model_max_length) == (77, None)
    # One too short for <s>, a token and </s> states no usable length either.
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 2}))
    tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    assert (tokenizer.max_length, tokenizer.model_max_length) == (77, None)


def test_a_vocabulary_without_roberta_special_tokens_is_named(tmp_path):
    """A vocab.json or tokenizer.json without <s>, </s> or <pad> is refused at load naming the file, not with
    a TypeError from `tokenizers` or numpy (at load, or at the first batch for a missing <pad>)."""
    slow = tmp_path / "slow"
    slow.mkdir()
    shutil.copyfile(FIXTURE / "merges.txt", slow / "merges.txt")
    vocab = json.loads((FIXTURE / "vocab.json").read_text())
    (slow / "vocab.json").write_text(json.dumps({k: v for k, v in vocab.items() if k not in ("<s>", "</s>")}))
    with pytest.raises(TokenizerError, match=re.escape(f"{slow / 'vocab.json'}: no <s> / </s> tokens")):
        ClapTokenizer.from_pretrained(slow)
    fast = tmp_path / "fast"
    fast.mkdir()
    spec = json.loads((FIXTURE / "tokenizer.json").read_text())
    spec["added_tokens"] = [token for token in spec["added_tokens"] if token["content"] != "<pad>"]
    del spec["model"]["vocab"]["<pad>"]
    (fast / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.raises(TokenizerError, match=re.escape(f"{fast}: no <pad> token (not a RoBERTa vocabulary)")):
        ClapTokenizer.from_pretrained(fast)


@pytest.fixture
def tokenizers_1_0(monkeypatch):
    """`tokenizers` laid out as 1.0.0rc3 has it: no submodules (decoders, models, trainers, ...) and a
    Tokenizer without from_str, token_to_id, train_from_iterator, ..."""
    import tokenizers

    fake = types.ModuleType("tokenizers")
    fake.__version__ = "1.0.0rc3"
    kept = ("from_file", "from_pretrained", "encode", "encode_batch", "decode")
    fake.Tokenizer = type("Tokenizer", (), {name: getattr(tokenizers.Tokenizer, name) for name in kept})
    fake.Encoding = tokenizers.Encoding
    for name in [name for name in sys.modules if name.startswith("tokenizers.")]:
        monkeypatch.delitem(sys.modules, name)  # else `from tokenizers import decoders` finds the old one
    monkeypatch.setitem(sys.modules, "tokenizers", fake)


def test_a_tokenizers_without_the_api_used_is_named_with_its_fix_not_blamed_on_the_file(tokenizers_1_0):
    """tokenizers 1.0 lacks Tokenizer.from_str: reading a good checkpoint said 'tokenizer.json: cannot be
    read by `tokenizers`', as if the file were bad."""
    with pytest.raises(TokenizerError) as caught:
        ClapTokenizer.from_pretrained(FIXTURE)
    message = str(caught.value)
    assert "tokenizers 1.0.0rc3 is installed" in message and 'pip install "tokenizers<1"' in message
    assert "tokenizer.json" not in message and "cannot be read" not in message


@pytest.mark.parametrize("stored", [5, 7])
def test_a_storage_not_the_size_its_pickle_says_is_refused_without_torch(tmp_path, monkeypatch, stored):
    """The torch-free twin of test_truncated_storage_is_reported: a storage member one float short of the 6
    elements its pickle declares would be read with the bytes after it as its last element, and one longer
    would be decompressed in full though torch.save writes a storage's bytes exactly."""
    monkeypatch.setitem(sys.modules, "torch", None)
    data = np.arange(stored, dtype="<f4").tobytes()
    path = _bin_without_torch(tmp_path, "FloatStorage", {"w": (data, 6, (6,), (1,))}, monkeypatch)
    with pytest.raises(
        TorchCheckpointError,
        match=re.escape(f"{path}: storage 0 holds {4 * stored} bytes, the pickle says 6 elements (24 bytes)"),
    ):
        load_torch_state_dict(path)


def test_training_a_tokenizer_with_a_tokenizers_without_its_trainers_names_the_version(tokenizers_1_0):
    """The offline demo's tokenizer: a raw ImportError (cannot import name 'decoders' from 'tokenizers')."""
    with pytest.raises(TokenizerError, match=r"tokenizers 1.0.0rc3 is installed.*decoders.*tokenizers<1"):
        ClapTokenizer.train(["a cat meows"], vocab_size=300)


def test_the_refused_payload_really_runs_under_plain_pickle(capsys):
    # Keeps the refusal test honest: an ordinary unpickler executes this payload.
    pickle.loads(pickle.dumps(_Evil(), protocol=2))
    assert "pwned" in capsys.readouterr().out


# ------------------------------------------------------------------ bounded: inside the folder, sizes checked
def _float_bin(folder: Path, entries: dict, monkeypatch) -> Path:
    """A ``torch.save`` zip without torch: name -> (float32 storage values, size, stride), views as given."""
    raw = {}
    for name, (values, size, stride) in entries.items():
        values = np.asarray(values, "<f4").ravel()
        raw[name] = (values.tobytes(), values.size, size, stride)
    return _bin_without_torch(folder, "FloatStorage", raw, monkeypatch)


def test_a_stride_0_view_larger_than_its_storage_fails_before_allocating(tmp_path, monkeypatch):
    """The issue's 1 KB pytorch_model.bin: one 4-byte storage viewed as 250000 x 1000 made the loader
    allocate 2 GB before it failed."""
    import tracemalloc

    path = _float_bin(tmp_path, {"weight": ([1.0], (250000, 1000), (0, 0))}, monkeypatch)
    assert path.stat().st_size < 2048
    tracemalloc.start()
    try:
        with pytest.raises(
            TorchCheckpointError, match=r"250000000 elements, more than the 1 its storage holds"
        ):
            load_torch_state_dict(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000


def _recompressed(path: Path, replace: dict[str, bytes]) -> Path:
    """`path` with the members named in `replace` swapped for new contents, deflated (a zip bomb's trick)."""
    bomb = path.with_name("bomb.bin")
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.namelist():
            dst.writestr(item, replace.get(item, src.read(item)))
        for item in set(replace) - set(src.namelist()):
            dst.writestr(item, replace[item])
    return bomb


@pytest.mark.parametrize("member", ["archive/data/0", "archive/byteorder", "archive/data.pkl"])
def test_a_zip_bomb_member_is_refused_before_it_is_decompressed(tmp_path, monkeypatch, member):
    """A 1.8 MB pytorch_model.bin whose storage, byteorder or data.pkl member inflates to 1.5 GB took 3-4.6 GB,
    and loaded. Here 100 MB of zeros (100 KB deflated) stand for them: refused naming the member, reading
    (almost) nothing."""
    import tracemalloc

    path = _float_bin(tmp_path, {"weight": (np.ones(4), (4,), (1,))}, monkeypatch)
    with zipfile.ZipFile(path) as archive:
        original = archive.read(member) if member in archive.namelist() else b""
    bomb = _recompressed(path, {member: original + bytes(100 * 2**20)})
    assert bomb.stat().st_size < 1_000_000
    tracemalloc.start()
    try:
        with pytest.raises(TorchCheckpointError, match=f"{bomb}: .*{member}"):
            load_torch_state_dict(bomb)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 10_000_000
    assert load_torch_state_dict(path)["weight"].tolist() == [1.0] * 4  # the untouched file still loads


def test_many_storages_of_zeros_are_refused_in_all_before_they_are_decompressed(tmp_path, monkeypatch):
    """Each storage within the largest tensor the config allows, but many of them, deflated: their total is
    bounded by the file's size (`MAX_EXPANSION`), not only each one. Here 64 of 1 MiB from a 70 KB file."""
    import tracemalloc

    from audiotrain.models.clap.torch_bin import MAX_EXPANSION

    zeros = (np.zeros(2**18), (2**18,), (1,))
    path = _float_bin(tmp_path, {f"w{i}": zeros for i in range(64)}, monkeypatch)
    bomb = _recompressed(path, {})
    assert bomb.stat().st_size < 100_000
    tracemalloc.start()
    try:
        with pytest.raises(
            TorchCheckpointError,
            match=rf"{bomb}: its storages up to .* bytes in all, more than {MAX_EXPANSION} times",
        ):
            load_torch_state_dict(bomb, max_elements=2**18)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5 * 2**20
    assert len(load_torch_state_dict(path, max_elements=2**18)) == 64  # stored as torch.save does: it loads


@pytest.mark.parametrize("views", [64, 8])
def test_one_storage_viewed_over_and_over_is_refused_in_all(tmp_path, monkeypatch, views):
    """Every tensor a view of the same 1 MiB storage: 64 of them would take 64 MiB from a 1 MiB file. 8 take 8
    MiB, more than the budget of about 5 MiB: counted in bytes, not in (2 Mi) elements."""
    one = np.zeros(2**18, "<f4").tobytes()
    entries = {f"w{i}": (one if i == 0 else 0, 2**18, (2**18,), (1,)) for i in range(views)}
    path = _bin_without_torch(tmp_path, "FloatStorage", entries, monkeypatch)
    with pytest.raises(TorchCheckpointError, match=rf"{path}: its tensors up to .* view of storage 0 take"):
        load_torch_state_dict(path)
    tied = _bin_without_torch(tmp_path, "FloatStorage", dict(list(entries.items())[:2]), monkeypatch)
    assert len(load_torch_state_dict(tied)) == 2  # tied weights: two views of one storage load


def test_a_tensor_larger_than_the_config_allows_is_refused_by_name_of_the_file(tmp_path, monkeypatch):
    path = _float_bin(tmp_path, {"weight": (np.zeros(100), (10, 10), (10, 1))}, monkeypatch)
    assert load_torch_state_dict(path, max_elements=100)["weight"].shape == (10, 10)
    with pytest.raises(
        TorchCheckpointError, match=r"pytorch_model.bin: storage 0 has 100 elements, more than"
    ):
        load_torch_state_dict(path, max_elements=99)
    # and through load_pretrained: the config's largest tensor is the bound
    folder = tmp_path / "ckpt"
    folder.mkdir()
    shutil.copy(FIXTURE / "config.json", folder / "config.json")
    big = _float_bin(
        folder,
        {"text_model.embeddings.word_embeddings.weight": (np.zeros(4_000_000), (4_000_000,), (1,))},
        monkeypatch,
    )
    with pytest.raises(TorchCheckpointError, match=f"{big}: .*config.json describes"):
        load_pretrained(folder)


@pytest.mark.parametrize("shard", ["../../secret.safetensors", "/etc/passwd", "sub/../../x.safetensors", 7])
def test_an_index_may_name_only_files_inside_the_checkpoint_folder(tmp_path, monkeypatch, shard):
    folder = _safetensors_copy(tmp_path)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    opened = []
    monkeypatch.setattr("audiotrain.models.clap.loading._read_one", lambda p, *a: opened.append(p) or {})
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": "model-00001-of-00001.safetensors", "b": shard}}))
    with pytest.raises(CheckpointError, match=f"{index}: names shard|{index}: not a shard index"):
        load_pretrained(folder)
    assert opened == []  # not even the good shard: every name is checked first


@pytest.mark.parametrize("index_json", [{"weight_map": ["model-00001-of-00001.safetensors"]}, [1, 2], {}])
def test_an_index_without_a_weight_map_object_is_named(tmp_path, index_json):
    folder = _safetensors_copy(tmp_path)
    (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps(index_json))
    with pytest.raises(
        CheckpointError, match=f"^{re.escape(str(index))}: not a shard index with a 'weight_map'"
    ):
        load_pretrained(folder)


def test_each_shard_is_read_once_however_many_tensors_it_holds(tmp_path, monkeypatch):
    """The index names a shard once per tensor: reading it once per name would read a real checkpoint's
    shards hundreds of times."""
    from audiotrain.models.clap import loading

    read = []
    read_one = loading._read_one
    monkeypatch.setattr(
        loading, "_read_one", lambda path, *args: read.append(path.name) or read_one(path, *args)
    )
    load_pretrained(_sharded_copy(tmp_path))
    assert sorted(read) == ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]


def test_a_sharded_checkpoint_in_the_hugging_face_cache_loads(tmp_path, monkeypatch):
    """A snapshot's files are links into the repository's blobs/: part of the checkpoint, shards too."""
    snapshot = _hf_cache(tmp_path, monkeypatch, source=_sharded_copy(tmp_path))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert (snapshot / "model-00001-of-00002.safetensors").is_symlink()
    model, config = load_pretrained(HUB_ID)
    assert config.source == snapshot
    ref = _reference()
    assert _rel(_outputs(model, ref)["text_embeds"], ref["text_embeds"]) <= 1e-5
    assert load_pretrained(snapshot)[1].source == snapshot  # the snapshot folder given as a path


@pytest.mark.parametrize(
    "linked", ["model.safetensors", "pytorch_model.bin", "config.json", "tokenizer.json", "merges.txt"]
)
def test_a_file_linked_from_outside_the_folder_is_refused_whatever_it_is(tmp_path, linked):
    """One rule for every file, sharded weights or not: a checkpoint folder is read from itself alone."""
    if linked == "pytorch_model.bin":  # the weights of the folder
        folder = tmp_path / "ckpt"
        shutil.copytree(FIXTURE, folder)
    else:
        folder = _safetensors_copy(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / linked).rename(elsewhere / linked)
    (folder / linked).symlink_to(elsewhere / linked)
    with pytest.raises(CheckpointError, match=f"{folder / linked} leads outside {folder}"):
        load_pretrained(folder)
    from audiotrain.models.clap import CLAP

    for load in (CLAP, CLAP.from_pretrained):  # seed 001's doors follow the same rule
        with pytest.raises(CheckpointError, match=f"{folder / linked} leads outside {folder}"):
            load(folder)


def test_a_folder_two_levels_below_a_blobs_folder_is_no_cache_snapshot(tmp_path):
    """Only a Hugging Face cache snapshot (``models--owner--name/snapshots/<commit>/``) may lead into its
    repository's ``blobs/``: a plain folder that happens to have a ``blobs/`` two levels up is read from
    itself alone."""
    folder = _safetensors_copy(tmp_path / "data")  # tmp_path/data/ckpt
    (tmp_path / "blobs").mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for linked in ("config.json", "tokenizer.json"):
        (folder / linked).rename(elsewhere / linked)
        (folder / linked).symlink_to(elsewhere / linked)
    with pytest.raises(CheckpointError, match=f"{folder / 'config.json'} leads outside {folder}"):
        load_pretrained(folder)
    with pytest.raises(CheckpointError, match=f"leads outside {folder}"):
        ClapTokenizer.from_pretrained(folder)


@pytest.mark.parametrize(
    "linked, without",
    [
        ("tokenizer.json", None),
        ("tokenizer_config.json", None),
        ("config.json", None),  # read for the text tower's length
        ("vocab.json", "tokenizer.json"),
        ("merges.txt", "tokenizer.json"),
    ],
)
def test_the_tokenizer_loaded_on_its_own_refuses_a_link_leading_outside(tmp_path, linked, without):
    """The package docstring loads the tokenizer on its own (ClapTokenizer.from_pretrained(config.source)):
    the same rule and error as load_pretrained, where it read the linked file."""
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    if without is not None:
        (folder / without).unlink()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (folder / linked).rename(elsewhere / linked)
    (folder / linked).symlink_to(elsewhere / linked)
    with pytest.raises(CheckpointError, match=f"{folder / linked} leads outside {folder}"):
        ClapTokenizer.from_pretrained(folder)


def test_the_tokenizer_and_front_end_of_a_cached_snapshot_load_on_their_own(tmp_path, monkeypatch):
    """A snapshot's files are links into its repository's blobs/, which the rule counts as inside."""
    from audiotrain.features.clap import ClapFeatureExtractor

    snapshot = _hf_cache(tmp_path, monkeypatch)
    assert (
        ClapTokenizer.from_pretrained(snapshot).vocab_size
        == ClapTokenizer.from_pretrained(FIXTURE).vocab_size
    )
    assert ClapFeatureExtractor.from_pretrained(snapshot) == ClapFeatureExtractor.from_pretrained(FIXTURE)


@pytest.mark.parametrize(
    "shard", ["model-00001-of-00001.safetensors", "sub/model-00001-of-00001.safetensors"]
)
def test_a_symlinked_shard_leading_outside_is_refused(tmp_path, shard):
    """A shard in a subfolder is not among the folder's own files that are checked before anything is read:
    the index's shards are checked one by one."""
    folder = _safetensors_copy(tmp_path)
    outside = tmp_path / "outside.safetensors"
    (folder / "model.safetensors").rename(outside)
    (folder / shard).parent.mkdir(exist_ok=True)
    (folder / shard).symlink_to(outside)
    index = folder / "model.safetensors.index.json"
    index.write_text(json.dumps({"weight_map": {"a": shard}}))
    with pytest.raises(CheckpointError, match=re.escape(f"{folder / shard} leads outside {folder}")):
        load_pretrained(folder)


def test_the_clap_command_reports_an_unsafe_pickle_in_one_line(tmp_path, capsys):
    from audiotrain.recipes.clap import cli as clap

    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    for weights in ("model.safetensors", "pytorch_model.bin"):
        (folder / weights).unlink(missing_ok=True)
    _torch_zip(folder, pickle.dumps({"weight": _Evil()}, protocol=2))
    (tmp_path / "data").mkdir()
    assert (
        clap.main(
            ["--pretrained", str(folder), "--data", str(tmp_path / "data"), "--out", str(tmp_path / "run")]
        )
        == 2
    )
    captured = capsys.readouterr()
    assert "pwned" not in captured.out and "Traceback" not in captured.err
    error, how_to_see = captured.err.strip().splitlines()  # (one line, and the variable that shows where)
    assert error.startswith("error: ") and how_to_see.startswith("(set AUDIOTRAIN_TRACEBACK=1")
    assert "pytorch_model.bin: refusing to load" in captured.err
    assert not (tmp_path / "run").exists()


def test_nan_or_infinite_weights_are_refused_naming_the_tensor_and_file(tmp_path):
    def poison(state):
        name = next(k for k in sorted(state) if k.endswith("query.weight"))
        state[name] = state[name].copy()
        state[name][0, 0] = np.nan

    folder = _safetensors_copy(tmp_path, poison)
    with pytest.raises(
        StateDictError, match=r"model.safetensors: tensor audio_model\..*query.weight holds NaN"
    ):
        load_pretrained(folder)


def test_a_file_of_another_model_is_refused_before_its_tensors_are_read(tmp_path):
    """Names and shapes are compared with the model first: an extra tensor however large, or one of another
    shape, is refused unread (all were read and checked for NaN first: the whole file in memory before
    the error, and NaN in a tensor the model does not take called it damaged, not another model's)."""
    big = np.full((16, 2**20), np.nan, np.float32)  # 64 MiB

    def extra(state):
        state["text_model.extra_head.weight"] = big

    folder = _safetensors_copy(tmp_path / "extra", extra)
    before = bytes_read()
    with pytest.raises(StateDictError, match=r"(?s)1 unexpected tensor.*text_model.extra_head.weight"):
        load_pretrained(folder)
    if before is not None:
        assert bytes_read() - before < 16 * 2**20

    def misshaped(state):
        state["audio_projection.linear2.weight"] = np.full((24, 23), np.nan, np.float32)

    with pytest.raises(StateDictError, match=r"linear2.weight: checkpoint \(24, 23\), model \(24, 24\)"):
        load_pretrained(_safetensors_copy(tmp_path / "misshaped", misshaped))


def test_integer_weights_are_refused_naming_the_tensor_and_file(tmp_path):
    """A model.safetensors whose projection weight was int32 (a float's bytes read as whole numbers, 1e9 and
    more) loaded, cast to float, and scored without a word; a chords checkpoint refuses integer weights."""

    def as_integers(state):
        state["text_projection.linear1.weight"] = state["text_projection.linear1.weight"].view(np.int32)

    folder = _safetensors_copy(tmp_path, as_integers)
    with pytest.raises(
        StateDictError,
        match=r"(?s)model.safetensors does not match.*linear1.weight: checkpoint int32, model float",
    ):
        load_pretrained(folder)


def test_a_safetensors_file_whose_tensors_share_bytes_is_refused_naming_both(tmp_path):
    """A damaged model.safetensors whose header gives two tensors the same bytes: loaded, the two would hold
    the same values without a word."""
    folder = _safetensors_copy(tmp_path)
    path = folder / "model.safetensors"
    raw = path.read_bytes()
    size = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8 : 8 + size])
    shared, sharing = "text_model.pooler.dense.bias", "text_projection.linear1.bias"
    header[sharing]["data_offsets"] = header[shared]["data_offsets"]
    text = json.dumps(header, separators=(",", ":")).encode()
    assert len(text) <= size
    path.write_bytes(raw[:8] + text.ljust(size) + raw[8 + size :])
    with pytest.raises(
        CheckpointError,
        match=rf"{path}: tensor '{sharing}' .* overlaps tensor '{shared}'; the file is damaged",
    ):
        load_pretrained(folder)


def _edited_copy(tmp_path: Path, name: str, edit) -> Path:
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    path = folder / name
    if edit is None:
        path.unlink()
        path.mkdir()
    elif isinstance(edit, bytes):
        path.write_bytes(edit)
    else:
        data = json.loads(path.read_text())
        edit(data)
        path.write_text(json.dumps(data))
    return folder


@pytest.mark.parametrize(
    "edit, expected",
    [
        (b'{"model_type": "clap", "x": "caf\xe9"}', r"config.json: not UTF-8 text \(byte 32\)"),
        ('{"model_type": "clap"}'.encode("utf-16"), r"config.json: a UTF-16 text file .* save it as UTF-8"),
        (None, r"config.json: is a folder; expected the model's config.json file"),
        (
            lambda d: d["text_config"].update(hidden_size=-4),
            r"text_config.hidden_size: expected a size of at least 1, got -4",
        ),
        (
            lambda d: d["text_config"].update(num_hidden_layers=0),
            r"text_config.num_hidden_layers: expected a size .* got 0",
        ),
        (
            lambda d: d["audio_config"].update(depths=[1, 0]),
            r"audio_config.depths: expected sizes of at least 1, got \[1, 0\]",
        ),
        (
            lambda d: d.update(projection_dim=-1),
            r"config.json: projection_dim: expected a size of at least 1",
        ),
        # A list of the wrong length or items: raw IndexError and TypeError tracebacks before.
        (
            lambda d: d["audio_config"].update(patch_stride=[4]),
            r"config.json: audio_config.patch_stride: expected a list of 2 integers, got \[4\]",
        ),
        (
            lambda d: d["text_config"].update(projection_dim=[[[[]]]]),
            r"config.json: text_config.projection_dim: expected an integer, got \[\[\[\[\]\]\]\]",
        ),
        (
            lambda d: d["audio_config"].update(depths=[]),
            r"config.json: audio_config.depths: expected a non-empty list of integers, got \[\]",
        ),
        (
            lambda d: d["text_config"].update(eos_token_id=[]),
            r"config.json: text_config.eos_token_id: expected",
        ),
    ],
)
def test_config_json_errors_name_the_file_and_field(tmp_path, edit, expected):
    from audiotrain.models.clap import ClapConfigError

    folder = _edited_copy(tmp_path, "config.json", edit)
    with pytest.raises(ClapConfigError, match=expected):
        load_pretrained(folder)


@pytest.mark.parametrize(
    "section, field, error, expected",
    [
        # Only tensors were listed ("word_embeddings.weight: checkpoint (320, 24), model (50265, 24)").
        (
            "text_config",
            "vocab_size",
            StateDictError,
            r"does not set text_config.vocab_size \(default 50265\)",
        ),
        (
            "text_config",
            "max_position_embeddings",
            StateDictError,
            r"does not set text_config.max_position_embeddings \(default 514\)",
        ),
        (
            "audio_config",
            None,
            StateDictError,
            r"does not set audio_config \(the whole block: each field its",
        ),
        # A setting was named with a value the file does not hold ("window_size 8").
        (
            "audio_config",
            "window_size",
            ClapConfigError,
            r"does not set audio_config.window_size \(default 8\)",
        ),
        (
            "audio_config",
            "depths",
            ClapConfigError,
            r"does not set audio_config.depths \(default \[2, 2, 6, 2\]",
        ),
    ],
)
def test_a_field_config_json_leaves_out_is_named_where_its_default_does_not_fit(
    tmp_path, section, field, error, expected
):
    """A config.json missing a field takes transformers' default for it (laion/clap-htsat-fused's), as
    transformers does; where the default does not fit the weights or the other settings, the error names
    the field the file leaves out and the default taken, not only the tensors or a value the file lacks."""
    folder = _edited_copy(
        tmp_path, "config.json", lambda d: d[section].pop(field) if field else d.pop(section)
    )
    with pytest.raises(error, match=f"{folder / 'config.json'} " + expected):
        load_pretrained(folder)


def test_a_bad_tokenizer_config_is_named(tmp_path):
    for name in ("vocab.json", "merges.txt"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    (tmp_path / "tokenizer_config.json").write_text('{"add_prefix_space": tru')
    with pytest.raises(
        TokenizerError, match=r"tokenizer_config.json: not valid JSON at line 1: Expecting value"
    ):
        ClapTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text("[]")
    with pytest.raises(TokenizerError, match=r"tokenizer_config.json: expected a JSON object, got list"):
        ClapTokenizer.from_pretrained(tmp_path)
    (tmp_path / "tokenizer_config.json").write_text('{"add_prefix_space": "yes"}')
    with pytest.raises(
        TokenizerError, match=r"tokenizer_config.json: add_prefix_space: expected true or false"
    ):
        ClapTokenizer.from_pretrained(tmp_path)


def test_the_tokenizer_of_a_small_model_makes_rows_its_text_tower_accepts(tmp_path):
    # A demo export's tokenizer_config said model_max_length 512 while its text tower took 24 tokens, so the
    # tokenizer's default rows of 77 were refused by the model loaded from the same folder.
    from audiotrain.models.clap.tokenizer import ClapTokenizer

    folder = _safetensors_copy(tmp_path)
    model, _ = load_pretrained(folder)
    text = json.loads((folder / "config.json").read_text())["text_config"]
    accepted = text["max_position_embeddings"] - text.get("pad_token_id", 1) - 1
    tokenizer = ClapTokenizer.from_pretrained(folder, max_length=200)
    assert tokenizer.max_length == accepted
    rows = tokenizer(["a dog barks " * 60, "rain"])
    model.get_text_features(mx.array(rows["input_ids"]), mx.array(rows["attention_mask"]))  # not refused
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 24}))
    assert ClapTokenizer.from_pretrained(folder).max_length == 24


def test_a_text_config_without_pad_token_id_limits_rows_with_robertas_pad_id(tmp_path):
    """config.json's text_config may leave pad_token_id out (ClapConfig's default, RoBERTa's 1): the rows the
    tower accepts are max_position_embeddings - 1 - 1 tokens, not one more that the model would refuse."""
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)
    config = json.loads((folder / "config.json").read_text())
    del config["text_config"]["pad_token_id"]
    (folder / "config.json").write_text(json.dumps(config))
    positions = config["text_config"]["max_position_embeddings"]
    assert ClapTokenizer.from_pretrained(folder, max_length=200).max_length == positions - 2


def test_an_explicit_max_length_is_not_lowered_by_model_max_length(tmp_path):
    """As in transformers: tokenizer_config.json's model_max_length is the length when none is asked for; an
    explicit one (--dataset.max_tokens) stands. Captions were cut to 16 tokens when 40 were asked for."""
    folder = tmp_path / "ckpt"
    shutil.copytree(FIXTURE, folder)  # its text tower takes 77 tokens
    config = json.loads((folder / "tokenizer_config.json").read_text())
    (folder / "tokenizer_config.json").write_text(json.dumps({**config, "model_max_length": 16}))
    rows = ClapTokenizer.from_pretrained(folder, max_length=40)(CAPTIONS)
    assert rows["input_ids"].shape == (4, 40) and rows["attention_mask"][3].sum() == 40
    assert ClapTokenizer.from_pretrained(folder, max_length=40).model_max_length == 16
    assert ClapTokenizer.from_pretrained(folder).max_length == 16


def test_a_tokenizer_regex_that_panics_is_a_tokenizer_error_naming_the_file_and_caption(tmp_path):
    """A tokenizer.json whose Split regex backtracks past onig's retry limit: the Rust panic escaped
    `except Exception` (pyo3's PanicException is a BaseException) as a raw traceback in training."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    evil = {"type": "Split", "pattern": {"Regex": "(a+)+$"}, "behavior": "Isolated", "invert": False}
    spec["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [evil, spec["pre_tokenizer"]]}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.warns(UserWarning, match="pre_tokenizer .Sequence. is used here"):
        tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    assert tokenizer(["a dog barks"])["input_ids"].shape == (1, 77)
    with pytest.raises(
        TokenizerError, match=r"tokenizer.json: the tokenizer fails on caption 1 of the batch, 'aaaa"
    ):
        tokenizer(["a dog barks", "a" * 40 + "!"])


def test_a_huge_caption_is_cut_before_it_is_tokenized(tmp_path):
    """A 20 MB caption took gigabytes in `tokenizers` (it encodes the whole text before truncating to 77
    tokens) and aborted the run under a memory cap: now only max_length * 1024 characters reach it, which
    give the same 77 tokens. Run under an address-space limit 400 MB above what the process holds (a 4 MB
    caption took over 1 GB)."""
    code = (
        "import resource\n"
        "from audiotrain.models.clap import ClapTokenizer\n"
        f"tokenizer = ClapTokenizer.from_pretrained({str(FIXTURE)!r})\n"
        "short = tokenizer(['x ' * 100])['input_ids']\n"
        "held = int(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmSize'))) * 1024\n"
        "resource.setrlimit(resource.RLIMIT_AS, (held + 400_000_000, resource.RLIM_INFINITY))\n"
        "print((tokenizer(['x ' * 2_000_000])['input_ids'] == short).all())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and done.stdout.split() == ["True"], done.stderr[-2000:]


def test_an_export_from_an_older_folder_writes_whole_numbers_as_ints_and_keeps_the_other_keys(tmp_path):
    """An older audiotrain wrote ``"max_length_s": 2.0``, on which transformers' ClapFeatureExtractor fails
    for every clip not exactly 2 s long; save_pretrained (and so the recipe's hf_model/ and ``clap export``)
    copied the file on byte for byte. Both front-end files are rewritten with ints, every other key kept."""
    older = shutil.copytree(FIXTURE, tmp_path / "older")
    settings = json.loads((FIXTURE / "preprocessor_config.json").read_text())
    floats = {"max_length_s": 2.0, "nb_max_samples": 96000.0, "frequency_max": 8000.0, "frequency_min": 50.0}
    extra = {"processor_class": "ClapProcessor", "some_future_key": [1.0, "x"]}
    (older / "preprocessor_config.json").write_text(json.dumps({**settings, **floats, **extra}, indent=2))
    processor = {
        "feature_extractor": {**settings, **floats, "hop_length": 480.0},
        "processor_class": "ClapProcessor",
        "tokenizer_note": 3.0,
    }
    (older / "processor_config.json").write_text(json.dumps(processor, indent=2))

    model, config = load_pretrained(older)
    out = save_pretrained(model, config, tmp_path / "export")
    written = json.loads((out / "preprocessor_config.json").read_text())
    assert written == {**settings, **floats, **extra}  # the same values and keys ...
    for name in floats:  # ... whole numbers as ints, as transformers writes them
        assert type(written[name]) is int, name
    assert written["padding_value"] == 0.0 and type(written["padding_value"]) is float  # a float there too
    assert written["some_future_key"] == [1.0, "x"] and type(written["some_future_key"][0]) is float
    nested = json.loads((out / "processor_config.json").read_text())
    assert nested == processor
    assert type(nested["feature_extractor"]["max_length_s"]) is int
    assert type(nested["feature_extractor"]["hop_length"]) is int
    assert type(nested["tokenizer_note"]) is float  # outside the front end's block: as it was
    again, again_config = load_pretrained(out)  # and the export reads back
    assert again_config == config


@pytest.mark.parametrize(
    "size, stride, offset, refused",
    [
        # as many elements as the storage, one element further in: the last one is one past its end
        ((2, 3), (3, 1), 1, "a (2, 3) view at offset 1 reads past its 6 elements"),
        # twice the storage's elements, in bounds by a zero stride (values repeated)
        ((4, 3), (0, 1), 0, "a (4, 3) view (stride (0, 1)) has 12 elements, more than the 6"),
        # 1-D, as every bias and LayerNorm is: two elements past the end
        ((4,), (1,), 4, "a (4,) view at offset 4 reads past its 6 elements"),
        # backwards from the storage's start, or starting before it: memory in front of its bytes
        ((4,), (-1,), 0, "invalid size (4,) / stride (-1,)"),
        ((4,), (1,), -1, "invalid size (4,) / stride (1,)"),
        # a stride missing: as_strided's own error, which names no storage
        ((2, 3), (1,), 0, "invalid size (2, 3) / stride (1,)"),
    ],
)
def test_a_view_beyond_its_storage_is_refused_naming_the_storage(
    tmp_path, monkeypatch, size, stride, offset, refused
):
    """A damaged or crafted pytorch_model.bin whose tensor reaches one element past its storage, or holds
    more elements than it: as_strided read past the storage's bytes (or repeated them) without a word."""
    data = np.arange(6, dtype="<f4").tobytes()
    path = _bin_without_torch(tmp_path, "FloatStorage", {"w": (data, 6, size, stride, offset)}, monkeypatch)
    with pytest.raises(TorchCheckpointError, match=re.escape(f"storage 0: {refused}")):
        load_torch_state_dict(path)


def _fine_tuning_run(tmp_path: Path) -> Path:
    """What a CLAP recipe run leaves (its config.json, checkpoints/last, hf_model/); the model is a copy of
    the fixture."""
    run = tmp_path / "run"
    shutil.copytree(FIXTURE, run / "hf_model")
    (run / "config.json").write_text(json.dumps({"recipe": "clap", "model_source": str(FIXTURE)}))
    last = run / "checkpoints" / "last"
    last.mkdir(parents=True)
    (last / "model.safetensors").write_bytes(b"")  # (the trainer's weights; not read)
    (last / "trainer_state.json").write_text("{}")
    return run


@pytest.mark.parametrize(
    "load",
    [
        load_pretrained,
        CLAP.from_pretrained,
        ClapTokenizer.from_pretrained,
        ClapFeatureExtractor.from_pretrained,
    ],
    ids=["load_pretrained", "CLAP", "ClapTokenizer", "ClapFeatureExtractor"],
)
def test_loaders_given_a_run_folder_or_a_trainer_checkpoint_name_what_to_load(tmp_path, load):
    # After fine-tuning, a user's script loads the run folder, or its checkpoints/last, as the model. The
    # errors said "no weights file", "config.json: no such file" or "no tokenizer.json", naming neither
    # hf_model/ nor the export a checkpoint needs.
    run = _fine_tuning_run(tmp_path)
    with pytest.raises((CheckpointError, TokenizerError, FileNotFoundError)) as raised:
        load(run)
    assert f"its fine-tuned model is {run / 'hf_model'}" in str(raised.value)
    with pytest.raises((CheckpointError, ClapConfigError, TokenizerError, FileNotFoundError)) as raised:
        load(run / "checkpoints" / "last")
    message = str(raised.value)
    assert "a trainer checkpoint" in message
    assert f"python -m audiotrain.recipes.clap export --checkpoint {run / 'checkpoints' / 'last'}" in message
    load(run / "hf_model")  # the run's model loads


def test_a_tokenizer_call_takes_max_length_as_transformers_tokenizers_do():
    # tok(captions, padding=True, truncation=True, max_length=16), as a transformers user writes it, was a raw
    # TypeError ("unexpected keyword argument 'max_length'").
    tok = ClapTokenizer.from_pretrained(FIXTURE)
    captions = ["a heavy wooden door slams shut in a large echoing hall " * 3, "a drip"]
    short = tok(captions, padding="max_length", truncation=True, max_length=8)
    assert short["input_ids"].shape == (2, 8)
    made_short = ClapTokenizer.from_pretrained(FIXTURE, max_length=8)(captions)
    np.testing.assert_array_equal(short["input_ids"], made_short["input_ids"])
    np.testing.assert_array_equal(short["attention_mask"], made_short["attention_mask"])
    assert tok(captions)["input_ids"].shape == (2, tok.max_length)  # the next call is the tokenizer's own
    with pytest.raises(TokenizerError, match=f"from_pretrained.*max_length={tok.max_length + 1}"):
        tok(captions, max_length=tok.max_length + 1)
    with pytest.raises(TokenizerError, match="max_length must be at least 3"):
        tok(captions, max_length=2)


def test_truncation_false_with_a_call_s_max_length_names_that_length():
    # tok(captions, truncation=False, max_length=8) was refused as 'captions are always cut to max_length
    # (77 tokens)': the tokenizer's own length, not the one this call cuts to.
    tok = ClapTokenizer.from_pretrained(FIXTURE)
    with pytest.raises(TokenizerError, match=r"cut to max_length \(8 tokens\)"):
        tok(["a drip"], truncation=False, max_length=8)
    with pytest.raises(TokenizerError, match=rf"cut to max_length \({tok.max_length} tokens\)"):
        tok(["a drip"], truncation=False)


def test_the_export_command_named_for_a_trainer_checkpoint_is_one_a_shell_takes(tmp_path):
    # A trainer checkpoint under a folder with a space ("My Runs") was named in "export --checkpoint
    # /.../My Runs/last --out DIR", which a shell splits in two: the pasted command exported nothing.
    import shlex

    checkpoint = tmp_path / "My Runs" / "last"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    with pytest.raises(CheckpointError) as refused:
        load_pretrained(checkpoint)
    command = re.search(r"export it first: (.*), then load DIR", str(refused.value)).group(1)
    assert shlex.split(command)[-3:] == [str(checkpoint), "--out", "DIR"], command


def test_a_model_saved_without_its_processor_names_how_to_add_the_tokenizer(tmp_path):
    """transformers' ClapModel.save_pretrained writes config.json and the weights alone: such a folder loads,
    and then its tokenizer said "no tokenizer.json (or vocab.json + merges.txt); a CLAP checkpoint ships
    RoBERTa's tokenizer", not what to do about it. It now says to save the processor (or tokenizer) into the
    folder too, or copy the tokenizer files of the checkpoint the model came from."""
    for name in ("config.json", "pytorch_model.bin", "preprocessor_config.json"):
        shutil.copy(FIXTURE / name, tmp_path / name)
    load_pretrained(tmp_path)
    with pytest.raises(TokenizerError) as raised:
        ClapTokenizer.from_pretrained(tmp_path)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path}: no tokenizer.json (or vocab.json + merges.txt)"), message
    assert "ClapProcessor.from_pretrained(SOURCE).save_pretrained" in message, message
    assert "copy tokenizer.json" in message, message


def test_a_bpe_dropout_saved_in_tokenizer_json_does_not_make_the_ids_random(tmp_path):
    """A tokenizer.json saved from a BPE trained with dropout (``models.BPE(dropout=0.1)``) keeps it: every
    call split the same caption another way (other ids, so other text embeddings each call). transformers
    5.24's RobertaTokenizer builds its BPE with ``dropout=None`` (checked by hand): so is it here."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["model"]["dropout"] = 0.5
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    want = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)["input_ids"]
    tokenizer = ClapTokenizer.from_pretrained(tmp_path)
    for _ in range(3):
        np.testing.assert_array_equal(tokenizer(CAPTIONS)["input_ids"], want)


def test_a_tokenizer_json_without_a_post_processor_still_frames_captions_in_s_and_end(tmp_path):
    """A tokenizer.json whose post_processor is null (a BPE trained with `tokenizers` and saved as it is)
    gave rows without <s> and </s>: CLAP's text tower pools the first position, a word's token there.
    transformers 5.24's RobertaTokenizer always adds RobertaProcessing (checked by hand): so is it here."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["post_processor"] = None
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    want = ClapTokenizer.from_pretrained(FIXTURE)(CAPTIONS)
    got = ClapTokenizer.from_pretrained(tmp_path)(CAPTIONS)
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])


def test_a_tokenizer_json_normalizer_or_other_pre_tokenizer_is_warned_of(tmp_path):
    """transformers 5.24's RobertaTokenizer rebuilds tokenizer.json's normalizer and pre-tokenizer as
    RoBERTa's (none; ByteLevel: checked by hand), while they are used here: "A DOG" was lowercased here and
    not there, other ids than transformers' without a word."""
    for name in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    spec = json.loads((tmp_path / "tokenizer.json").read_text())
    spec["normalizer"] = {"type": "Lowercase"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.warns(UserWarning, match="tokenizer.json: its normalizer 'Lowercase' is used here"):
        ClapTokenizer.from_pretrained(tmp_path)
    spec["normalizer"], spec["pre_tokenizer"] = None, {"type": "Whitespace"}
    (tmp_path / "tokenizer.json").write_text(json.dumps(spec))
    with pytest.warns(UserWarning, match="its pre_tokenizer 'Whitespace' is used here"):
        ClapTokenizer.from_pretrained(tmp_path)


def test_a_merges_line_of_other_than_two_tokens_is_named_with_its_line(tmp_path):
    """A merges.txt line of three tokens (hand-edited, or a merge holding a space) met pyo3's "failed to
    extract enum PyMerges ('Merges | Filename') ... expected tuple of length 2", naming no line of the
    file."""
    for name in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copyfile(FIXTURE / name, tmp_path / name)
    lines = (tmp_path / "merges.txt").read_text(encoding="utf-8").splitlines()
    lines[2] = "a b c"
    (tmp_path / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(TokenizerError, match=r"merges.txt: line 3: expected two tokens .* got 'a b c'"):
        ClapTokenizer.from_pretrained(tmp_path)


def test_the_tokenizer_takes_captions_by_transformers_keyword_text(tmp_path):
    """transformers' tokenizers and ClapProcessor take the captions as ``text=``; code written for them,
    ``tokenizer(text=captions, padding=True)``, met a raw TypeError ("unexpected keyword argument 'text'")."""
    tokenizer = ClapTokenizer.from_pretrained(FIXTURE)
    want = tokenizer(CAPTIONS, padding=True)
    got = tokenizer(text=CAPTIONS, padding=True)
    np.testing.assert_array_equal(got["input_ids"], want["input_ids"])
    np.testing.assert_array_equal(got["attention_mask"], want["attention_mask"])
    with pytest.raises(TokenizerError, match="texts and text= are both given"):
        tokenizer(CAPTIONS, text=CAPTIONS)
    with pytest.raises(TokenizerError, match="texts must be a string or a list of strings, got NoneType"):
        tokenizer()


def test_a_quantized_or_lora_wrapped_model_is_refused_by_save_pretrained_with_how_to_merge(tmp_path):
    """A QLoRA fine-tune (nn.quantize, then LoRA wrappers) saved as it was: save_pretrained wrote the packed
    uint32 words as float32 'weights' of shape (out, in / 8) beside scales, biases, query.base.weight and
    query.lora_a, without a word; transformers' from_pretrained then failed on the shapes or initialised
    the missing weights at random."""
    model, config = _perturbed_model()
    key = mx.random.state[0].tolist()
    with pytest.raises(StateDictError, match=r"^save_pretrained: the model's weights are not") as refused:
        model.text_model.encoder.layer[0].attention.self.query = Adapted(
            model.text_model.encoder.layer[0].attention.self.query
        )
        save_pretrained(model, config, tmp_path / "adapted")
    said = str(refused.value)
    assert "unexpected text_model.encoder.layer.0.attention.self.query.base.bias" in said, said
    assert "missing text_model.encoder.layer.0.attention.self.query.bias" in said, said
    assert "merged into the layers they wrap" in said, said
    assert mx.random.state[0].tolist() == key  # (the caller's random stream is as it was)
    model, config = _perturbed_model()
    nn.quantize(
        model,
        group_size=32,
        bits=4,
        class_predicate=lambda _, m: isinstance(m, nn.Linear) and m.weight.shape[1] % 32 == 0,
    )
    with pytest.raises(StateDictError, match=r"layers audio_model\..* are quantized.*mx\.dequantize"):
        save_pretrained(model, config, tmp_path / "quantized")
    assert not (tmp_path / "adapted").exists() and not (tmp_path / "quantized").exists()


class Adapted(nn.Module):
    """A LoRA wrapper of a layer, as a QLoRA user writes it."""

    def __init__(self, base):
        super().__init__()
        self.base = base
        self.lora_a = mx.zeros((base.weight.shape[1], 2))
        self.lora_b = mx.zeros((2, base.weight.shape[0]))

    def __call__(self, x):
        return self.base(x) + (x @ self.lora_a) @ self.lora_b
