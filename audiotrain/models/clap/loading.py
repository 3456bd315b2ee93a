"""Load a CLAP checkpoint (a local Hugging Face folder or a hub id) into :class:`ClapModel`."""

from __future__ import annotations

import os
import re
from pathlib import Path

from audiotrain import _loading
from audiotrain._arguments import path_argument
from audiotrain._files import check_regular_file, read_json_file
from audiotrain.models.clap.config import ClapConfig, shape_defaults_note
from audiotrain.models.clap.convert import StateDictError, hf_to_mlx
from audiotrain.models.clap.model import ClapModel
from audiotrain.models.clap.torch_bin import load_torch_state_dict
from audiotrain.models.clap.training_outputs import training_output_note

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

# In order of preference: safetensors needs no unpickling and keeps bfloat16.
WEIGHT_FILES = (
    "model.safetensors",
    "model.safetensors.index.json",
    "pytorch_model.bin",
    "pytorch_model.bin.index.json",
)
# Config, tokenizer and preprocessor files: always fetched along with the weights.
_META_PATTERNS = ["*.json", "*.txt"]


class CheckpointError(FileNotFoundError):
    """No usable CLAP checkpoint at the given path or hub id."""


def resolve_checkpoint(path_or_hub_id: str | Path, revision: str | None = None) -> Path:
    """A local folder holding the checkpoint: the path itself, or a ``huggingface_hub`` snapshot of a hub id.

    A hub id is downloaded when the hub can be reached. Offline (``HF_HUB_OFFLINE`` set) or when the hub
    cannot be reached, a snapshot already in the Hugging Face cache is used, as transformers does.

    Raises
    ------
    CheckpointError
        The path does not exist and is not a hub id, or the hub cannot be reached and the cache does not
        hold the checkpoint.
    """
    path = Path(path_or_hub_id).expanduser()
    if path.exists():
        if not path.is_dir():
            raise CheckpointError(f"{path}: expected a checkpoint folder (config.json + weights), got a file")
        if not holds_weights(path) and (note := training_output_note(path)):
            raise CheckpointError(note)
        return path
    text = str(path_or_hub_id)
    if text.count("/") != 1 or text.startswith((".", "/", "~")):
        # (a hub page's address copied with its slash: huggingface_hub refuses it too)
        bare = text.rstrip("/")
        hint = f" (without the trailing slash: {bare})" if bare != text and bare.count("/") == 1 else ""
        raise CheckpointError(f"{text}: no such folder, and not a hub id of the form 'owner/name'{hint}")
    try:
        import huggingface_hub
    except ImportError:
        raise CheckpointError(
            f"{text}: not a local folder, and huggingface_hub (needed to fetch a hub id) is not installed"
        ) from None
    if _hub_offline():
        reason = "HF_HUB_OFFLINE is set"
    else:
        try:
            # One request that fails fast without a network (list_repo_files would retry for ~25 s).
            siblings = huggingface_hub.model_info(text, revision=revision).siblings
            files = (
                [s.rfilename for s in siblings]
                if siblings is not None
                else huggingface_hub.list_repo_files(text, revision=revision)
            )
        except Exception as error:
            reason = f"asking the hub failed ({type(error).__name__}: {error})"
        else:
            return _download(text, revision, files)
    folder, cache_error = _cached_snapshot(text, revision)
    if folder is None:
        raise CheckpointError(
            f"{text}: not a local folder, not in the Hugging Face cache ({cache_error}), and {reason}. "
            "Offline? Pass the path of a downloaded checkpoint folder, or download it once with network access."
        )
    return folder


def holds_weights(folder: Path) -> bool:
    """Whether `folder` has config.json and a weights file: a model, whatever else it holds."""
    return (folder / "config.json").is_file() and any(os.path.lexists(folder / name) for name in WEIGHT_FILES)


def _hub_offline() -> bool:
    """``HF_HUB_OFFLINE``, read now (huggingface_hub reads it once, at import)."""
    from huggingface_hub import constants

    value = os.environ.get("HF_HUB_OFFLINE")
    if value is not None:
        return value.strip().upper() in {"1", "ON", "YES", "TRUE"}
    return bool(constants.HF_HUB_OFFLINE)


def _download(repo_id: str, revision: str | None, files: list[str]) -> Path:
    from huggingface_hub import snapshot_download

    try:
        # Only the weights format we will read: a repo with both formats would otherwise download both.
        folder = Path(snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=_META_PATTERNS))
        weights = _pick_weights(folder, repo_id, set(files))
        return Path(
            snapshot_download(repo_id=repo_id, revision=revision, allow_patterns=[*_META_PATTERNS, *weights])
        )
    except CheckpointError:
        raise
    except Exception as error:
        raise CheckpointError(
            f"{repo_id}: not a local folder, and downloading it from the Hugging Face hub failed "
            f"({type(error).__name__}: {error}). Offline? Pass the path of a downloaded checkpoint folder."
        ) from None


def _pick_weights(folder: Path, repo_id: str, files: set[str]) -> list[str]:
    for name in WEIGHT_FILES:
        if name in files:
            if name.endswith(".index.json"):
                index = read_json_file(folder / name, CheckpointError)
                shards = index.get("weight_map", {}).values()
                for shard in shards:  # (each checked as loading checks it, before anything is fetched)
                    _shard_in(folder, shard, folder / name)
                # Each shard's path in the repository as the index names it (``sub/model-00002.safetensors``
                # is that file of ``sub/``): its name alone would not fetch it.
                return sorted({Path(shard).as_posix() for shard in shards})
            return [name]
    raise CheckpointError(f"{repo_id}: the hub repository has none of {', '.join(WEIGHT_FILES)}")


def _cached_snapshot(repo_id: str, revision: str | None) -> tuple[Path | None, str]:
    """The cached snapshot folder of ``repo_id`` (None and why not, when there is none), without the network."""
    from huggingface_hub import constants, snapshot_download

    try:
        folder = Path(
            snapshot_download(
                repo_id=repo_id,
                revision=revision,
                allow_patterns=_META_PATTERNS,
                cache_dir=constants.HF_HUB_CACHE,  # the cache in effect now (older versions fix it at import)
                local_files_only=True,
            )
        )
    except Exception as error:
        if type(error).__name__ == "LocalEntryNotFoundError":
            return None, _cached_revisions(Path(constants.HF_HUB_CACHE), repo_id, revision)
        return None, f"{type(error).__name__}: {error}"
    # (lexists: a file whose blob is gone is named as such when it is read, not as missing from a listing
    # that names it)
    weights = any(os.path.lexists(folder / name) for name in WEIGHT_FILES)
    if not os.path.lexists(folder / "config.json") or not weights:
        present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
        return None, (
            f"the cached snapshot {folder} needs config.json and one of {', '.join(WEIGHT_FILES)}, "
            f"it holds {present}"
        )
    return folder, ""


def _cached_revisions(cache: Path, repo_id: str, revision: str | None) -> str:
    """Why `cache` gave no snapshot of `repo_id` at `revision`: none at all, or not that revision (then the
    commits it holds, each with the refs naming it), so that a pinned commit is not read as a missing
    model."""
    repo = cache / ("models--" + repo_id.replace("/", "--"))
    commits = sorted(p.name for p in (repo / "snapshots").glob("*") if p.is_dir())
    if not commits:
        return f"no snapshot of it under {cache}"
    refs: dict[str, list[str]] = {}
    for ref in sorted((repo / "refs").rglob("*")):
        try:
            commit = ref.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):  # (a folder of refs: refs/pr/)
            continue
        refs.setdefault(commit, []).append(ref.relative_to(repo / "refs"))
    held = ", ".join(c + (f" ({', '.join(map(str, refs[c]))})" if c in refs else "") for c in commits)
    wanted = f"revision {revision}" if revision else "its main branch"
    whole = [c for c in commits if revision and c.startswith(revision)]
    hint = f"; the cache names a commit by all 40 characters: {whole[0]}" if len(whole) == 1 else ""
    return f"{wanted} is not among the snapshots under {repo}: {held}{hint}"


def _shard_in(folder: Path, shard: object, index: Path) -> Path:
    """The shard file an index names, joined to `folder` as transformers joins it (``sub/model-00002.safetensors``
    is that file of ``sub/``), which must lie inside `folder` (an index that names ``../../secret`` or
    ``/etc/passwd``, or a link leading out of it, is refused, not opened)."""
    if not isinstance(shard, str) or not shard or Path(shard).is_absolute() or ".." in Path(shard).parts:
        raise CheckpointError(f"{index}: names shard {shard!r}; shards must be files inside {folder}")
    return check_inside(folder, folder / shard)


def _stores_of(folder: Path) -> tuple[Path, ...]:
    """Where the files of checkpoint `folder` may lead: the folder itself, or for a Hugging Face cache snapshot
    (``models--owner--name/snapshots/<commit>/``, whose files are links to ``../../blobs/``) its repository
    folder and its ``blobs/``, wherever that leads (a cache whose blobs were moved to another disk and linked
    back)."""
    folder = folder.resolve()
    repo = folder.parent.parent
    if folder.parent.name == "snapshots" and repo.name.startswith("models--") and (repo / "blobs").is_dir():
        return repo, (repo / "blobs").resolve()
    return (folder,)


def check_inside(folder: Path, path: Path) -> Path:
    """`path`, a file of checkpoint `folder`, unless it is a link that leads outside it (see `_stores_of`):
    the one rule for every reader of a CLAP folder (`load_pretrained`, ``ClapTokenizer.from_pretrained``,
    ``ClapFeatureExtractor.from_pretrained``), which raise the same `CheckpointError`."""
    stores = _stores_of(folder)
    # A blobs/ linked elsewhere counts for its blobs alone (files named by their hash, directly in it): one
    # linked to a folder high up (/, a home folder) made any file under it the snapshot's.
    target = path.resolve()
    if any(target.parent == store and _BLOB_NAME.fullmatch(target.name) for store in stores[1:]):
        return path
    return _loading.check_inside(folder, path, CheckpointError, store=stores[0])


#: A Hugging Face cache blob's name: the git SHA-1 of a small file, the SHA-256 of a large (LFS) one.
_BLOB_NAME = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def check_links(folder: Path) -> None:
    """Every file a checkpoint is read from (config, weights, tokenizer and front-end files: ``*.json``,
    ``*.txt``, ``*.safetensors``, ``*.bin``) must stay inside `folder` (see `_stores_of`)."""
    for path in sorted(folder.iterdir()):
        if path.suffix in (".json", ".txt", ".safetensors", ".bin"):
            check_inside(folder, path)


def read_state_dict(folder: Path, max_elements: int | None = None) -> tuple[dict[str, mx.array], Path]:
    """All tensors of the folder's weights (first of :data:`WEIGHT_FILES` present), by HF name.

    `max_elements` bounds every tensor of a ``.bin`` file before it is allocated (see `load_torch_state_dict`).
    """
    for name in WEIGHT_FILES:
        path = folder / name
        if not os.path.lexists(path):
            continue
        # (a FIFO or a folder in its place was "no weights file" while the message listed that very name)
        check_regular_file(path, CheckpointError)
        if name.endswith(".index.json"):
            index = read_json_file(path, CheckpointError)
            try:
                weight_map = index["weight_map"]
                names = list(weight_map.values())
            except (KeyError, TypeError, AttributeError) as error:
                raise CheckpointError(f"{path}: not a shard index with a 'weight_map' ({error})") from None
            shards = sorted({_shard_in(folder, shard, path) for shard in names})  # all checked first
        else:
            shards = [path]
        state: dict[str, mx.array] = {}
        for shard_path in shards:
            shard = shard_path.relative_to(folder).as_posix()
            if not os.path.lexists(shard_path):
                raise CheckpointError(f"{path}: lists shard {shard}, which is not in {folder}")
            if shard_path == path and name.endswith(".index.json"):  # (read as a pickle: "not a zip archive")
                raise CheckpointError(f"{path}: lists itself as shard {shard}; shards are weights files")
            check_regular_file(shard_path, CheckpointError)
            state.update(_read_one(shard_path, max_elements))
        return state, path
    present = ", ".join(sorted(p.name for p in folder.iterdir())) or "nothing"
    raise CheckpointError(
        f"{folder}: no weights file (one of {', '.join(WEIGHT_FILES)}); the folder holds {present}"
    )


def _read_one(path: Path, max_elements: int | None = None) -> dict[str, mx.array]:
    """The tensors of weights file `path`; a safetensors file's unread (MLX reads a tensor of a file it
    opened itself when it is first evaluated: `load_weights` evaluates only those the model takes)."""
    if path.suffix == ".safetensors":
        entries = _loading.check_safetensors_header(path, CheckpointError)
        # (opened by Python: MLX's mx.load(str) failed with "std::bad_cast" on a name an ASCII locale holds as
        # surrogate escapes, 'runs/実験/hf_model'; the tensors are still read lazily)
        return _loading.read_safetensors(path, entries, CheckpointError, finite=False)
    return {name: mx.array(array) for name, array in load_torch_state_dict(path, max_elements).items()}


def load_pretrained(
    path_or_hub_id: str | Path, dtype: mx.Dtype = mx.float32, revision: str | None = None
) -> tuple[ClapModel, ClapConfig]:
    """Build a :class:`ClapModel` from a Hugging Face CLAP checkpoint.

    Parameters
    ----------
    path_or_hub_id : str or Path
        A folder with ``config.json`` and ``model.safetensors`` or ``pytorch_model.bin`` (sharded variants too),
        e.g. a download of ``laion/clap-htsat-unfused``; or that hub id itself (downloaded with
        ``huggingface_hub``; offline, or when the hub cannot be reached, from the Hugging Face cache).
    dtype : mx.Dtype, numpy dtype or its name
        Parameter type (float32 for training on CPU; bfloat16 halves memory on GPU); float32, float16,
        bfloat16 or float64, anything else is refused naming it.
    revision : str, optional
        Hub branch, tag or commit.

    Returns
    -------
    model : ClapModel
        In eval mode (dropout off, BatchNorm on running statistics).
    config : ClapConfig
        With ``config.source`` set to the folder (the tokenizer and preprocessor files live there).

    Raises
    ------
    CheckpointError, ClapConfigError, StateDictError, UnsafeCheckpointError
        Naming the file and, for weights, every missing, unexpected or mis-shaped tensor, or a tensor
        holding NaN or infinite values.

    Notes
    -----
    Loading reads nothing outside the folder it was given: a file of it (``config.json``, the weights or the
    shards an index names, the tokenizer and ``processor_config.json`` / ``preprocessor_config.json``) that is
    a link leading elsewhere is refused, whether the weights are one file or sharded. A Hugging Face cache
    snapshot (``models--owner--name/snapshots/<commit>/``, which a hub id resolves to) counts its repository
    folder as part of it: its files are links to ``../../blobs/``. ``ClapTokenizer.from_pretrained`` and
    ``ClapFeatureExtractor.from_pretrained`` follow the same rule (`check_inside`).
    """
    path_argument(path_or_hub_id, "load_pretrained", "path_or_hub_id")  # (a hub id is a str too)
    folder = resolve_checkpoint(path_or_hub_id, revision)
    check_links(folder)
    config = read_config(folder)
    model = ClapModel(config)
    load_weights(model, folder, dtype)
    return model, config


def read_config(folder: Path) -> ClapConfig:
    """The ``config.json`` of a checkpoint folder, with ``source`` set to the folder."""
    config = ClapConfig.from_json(folder / "config.json")
    config.source = folder
    return config


def check_finite(state: dict[str, mx.array], source: Path) -> None:
    """Refuse NaN or infinite weights now, naming the tensors: they would surface only as NaN embeddings
    after the data has been read, naming nothing."""
    _loading.check_finite(state, source, StateDictError)


#: The types `model_dtype` takes (MLX computes float64 on the CPU only).
_MODEL_DTYPES = ("float32", "float16", "bfloat16", "float64")


def model_dtype(dtype) -> mx.Dtype:
    """`dtype` as the MLX floating-point type the weights are loaded in: an MLX or numpy dtype, or its name
    (``"float16"``, as `save_pretrained` and transformers' ``torch_dtype`` take it). Anything else is refused
    naming it: an integer type loaded the weights truncated (every embedding all zeros), and a name or a numpy
    type failed in MLX's ``astype`` naming neither ``dtype`` nor what it takes."""
    if isinstance(dtype, mx.Dtype):
        name = str(dtype).removeprefix("mlx.core.")  # (an MLX dtype prints as mlx.core.float16)
    elif isinstance(dtype, str):
        name = dtype
    elif dtype is None:
        name = None  # (numpy reads None as float64)
    else:
        try:
            name = np.dtype(dtype).name
        except TypeError:
            name = None
    if name not in _MODEL_DTYPES:
        raise ValueError(
            f"dtype {dtype!r}: expected a floating-point type, one of {', '.join(_MODEL_DTYPES)}"
        )
    return getattr(mx, name)


def load_weights(model: ClapModel, folder: Path, dtype: mx.Dtype = mx.float32) -> None:
    """Fill ``model`` (built from the folder's config) with the folder's weights and put it in eval mode."""
    dtype = model_dtype(dtype)  # (before the weights are read)
    # No tensor of the file may be larger than the largest the config describes (checked before allocating).
    largest = max(array.size for _, array in tree_flatten(model.parameters()))
    state, weights_path = read_state_dict(
        folder, max_elements=max(largest, model.config.text_config.max_position_embeddings)
    )
    # Names and shapes first: a safetensors file's tensors are read only when evaluated (`_read_one`), so a
    # file with an extra tensor, or of another shape, is refused before its data is read.
    try:
        params, counters = hf_to_mlx(model, state, dtype=dtype, source=str(weights_path))
    except StateDictError as error:
        note = shape_defaults_note(model.config)  # (a field config.json left out may be why)
        raise StateDictError(f"{error}\n{note}" if note else str(error)) from None
    check_finite(state, weights_path)  # (each tensor is one `params` is made of: the file's, read once)
    model.update(params)
    model.config.num_batches_tracked = counters
    model.eval()
    mx.eval(model.parameters())
