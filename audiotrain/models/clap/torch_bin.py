"""Read a PyTorch ``pytorch_model.bin`` state dict without torch and without running pickle code.

``torch.save`` (torch >= 1.6) writes a zip archive: ``<name>/data.pkl`` is a pickle describing the dict and its
tensors, ``<name>/data/<key>`` hold the raw storages. An ordinary ``pickle.load`` of ``data.pkl`` would import and
call whatever the file names, i.e. run arbitrary code. Here the unpickler resolves only the few globals a state
dict uses (``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` / ``_rebuild_parameter``, the typed
storage classes) to local, side-effect-free functions, and refuses every other global with
:class:`UnsafeCheckpointError` naming it.

Sizes are checked before anything is allocated or decompressed: a storage member must hold exactly the bytes
the pickle says (a 1.8 MB zip can declare a 1.5 GB member of zeros), ``data.pkl`` and ``byteorder`` may not
be larger than `MAX_PICKLE_BYTES` / `MAX_BYTEORDER_BYTES`, a tensor may not view more elements than its storage
holds (a 4-byte storage viewed with stride 0 as 250000 x 1000 would otherwise become a 1 GB array), nor more
than the largest tensor the model's config describes. The zip reader never returns more than a member's
declared size, so checking the declared size bounds what is decompressed. In total, the storages read and
the tensors made of them may each take at most `MAX_EXPANSION` times the file's size on disk (plus
`EXPANSION_ALLOWANCE_BYTES`): ``torch.save`` stores its members uncompressed, so a genuine file is never
near it, while many maximum-size storages of deflated zeros (or tensors viewing one storage over and over)
would otherwise pass each check above and still fill memory.
"""

from __future__ import annotations

import collections
import pickle
import zipfile
from dataclasses import dataclass
from pathlib import Path

from audiotrain._files import check_regular_file
from audiotrain._lfs import file_pointer_text

import numpy as np

# Storage class name in the pickle -> numpy dtype of its raw bytes ("bfloat16": read as uint16, widened below).
_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": "bfloat16",
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


# data.pkl describes the dict (about 200 bytes per tensor): a state dict of 300000 tensors stays under this.
MAX_PICKLE_BYTES = 64 * 2**20
# The byteorder member holds "little" or "big".
MAX_BYTEORDER_BYTES = 64
# The most bytes of storages read, and of tensors made, per byte of the file (torch.save writes 1; an
# archive deflated again by other tools reaches about 1.2 on float weights) ...
MAX_EXPANSION = 4
# ... plus this, for small files whose buffers of zeros deflate well.
EXPANSION_ALLOWANCE_BYTES = 2**20


class UnsafeCheckpointError(pickle.UnpicklingError):
    """The pickle asks for something a plain tensor state dict never contains."""


class TorchCheckpointError(ValueError):
    """A ``.bin`` file that is not a readable zip-format PyTorch state dict."""


@dataclass(frozen=True)
class _StorageType:
    name: str


@dataclass
class _Storage:
    key: str
    dtype: object
    numel: int
    data: np.ndarray


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(
        self,
        file,
        archive: zipfile.ZipFile,
        prefix: str,
        path: Path,
        big_endian: bool,
        max_elements: int | None = None,
    ) -> None:
        super().__init__(file)
        self._max_elements = max_elements
        self._archive = archive
        self._prefix = prefix
        self._path = path
        self._big_endian = big_endian
        self._storages: dict[str, _Storage] = {}
        file_bytes = path.stat().st_size
        self._budget = MAX_EXPANSION * file_bytes + EXPANSION_ALLOWANCE_BYTES
        self._budget_why = (
            f"more than {MAX_EXPANSION} times the file's {file_bytes} bytes (+ {EXPANSION_ALLOWANCE_BYTES})"
        )
        self._storage_bytes = 0  # of the storages read so far
        self._tensor_bytes = 0  # of the tensors made so far

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return self._rebuild_tensor
        if module == "torch._utils" and name == "_rebuild_parameter":
            return _rebuild_parameter
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafeCheckpointError(
            f"{self._path}: refusing to load '{module}.{name}': a PyTorch state dict holds only tensors, and "
            "unpickling this global could run code. Convert the file to safetensors with a trusted torch install."
        )

    def persistent_load(self, pid):
        if not (
            isinstance(pid, tuple)
            and len(pid) == 5
            and pid[0] == "storage"
            and isinstance(pid[1], _StorageType)
        ):
            raise UnsafeCheckpointError(
                f"{self._path}: unexpected persistent record {pid!r} (expected a tensor storage)"
            )
        _, storage_type, key, _location, numel = pid
        key = str(key)
        if key not in self._storages:
            dtype = _STORAGE_DTYPES[storage_type.name]
            raw_dtype = np.uint16 if dtype == "bfloat16" else np.dtype(dtype)
            member = f"{self._prefix}data/{key}"
            try:
                info = self._archive.getinfo(member)
            except KeyError:
                raise TorchCheckpointError(
                    f"{self._path}: storage {member} is missing from the archive"
                ) from None
            numel = int(numel)
            # torch.save writes a storage's bytes exactly; a larger member would be decompressed in full.
            if numel < 0 or info.file_size != numel * np.dtype(raw_dtype).itemsize:
                raise TorchCheckpointError(
                    f"{self._path}: storage {key} holds {info.file_size} bytes, the pickle says {numel} elements "
                    f"({numel * np.dtype(raw_dtype).itemsize} bytes) (member {member})"
                )
            self._check_elements(numel, f"storage {key}")
            self._storage_bytes += info.file_size
            if self._storage_bytes > self._budget:
                raise TorchCheckpointError(
                    f"{self._path}: its storages up to {member} declare {self._storage_bytes} bytes in all, "
                    f"{self._budget_why}: a zip bomb, or a damaged file; re-save it with torch.save"
                )
            raw = self._archive.read(member)
            data = np.frombuffer(
                raw, dtype=np.dtype(raw_dtype).newbyteorder(">" if self._big_endian else "<")
            )
            self._storages[key] = _Storage(key, dtype, int(numel), data)
        return self._storages[key]

    def _rebuild_tensor(self, storage, offset, size, stride, requires_grad=False, hooks=None, metadata=None):
        if not isinstance(storage, _Storage):
            raise UnsafeCheckpointError(f"{self._path}: a tensor record without a storage")
        size, stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)
        offset = int(offset)
        if len(size) != len(stride) or any(s < 0 for s in (*size, *stride)) or offset < 0:
            raise TorchCheckpointError(
                f"{self._path}: storage {storage.key}: invalid size {size} / stride {stride}"
            )
        elements = 1
        for n in size:
            elements *= n  # Python ints: no overflow for absurd sizes
        if elements > storage.numel:
            raise TorchCheckpointError(
                f"{self._path}: storage {storage.key}: a {size} view (stride {stride}) has {elements} elements, "
                f"more than the {storage.numel} its storage holds; the tensors of a state dict never repeat values"
            )
        self._check_elements(elements, f"a {size} tensor of storage {storage.key}")
        self._tensor_bytes += elements * storage.data.itemsize
        if self._tensor_bytes > self._budget:
            raise TorchCheckpointError(
                f"{self._path}: its tensors up to a {size} view of storage {storage.key} take "
                f"{self._tensor_bytes} bytes in all, {self._budget_why}: the tensors of a state dict "
                "view their storages once (tied weights twice)"
            )
        if 0 not in size:
            last = offset + sum((n - 1) * s for n, s in zip(size, stride))
            if last >= storage.numel:
                raise TorchCheckpointError(
                    f"{self._path}: storage {storage.key}: a {size} view at offset {offset} reads past its "
                    f"{storage.numel} elements"
                )
        item = storage.data.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage.data[offset:] if storage.data.size > offset else storage.data[:0],
            shape=size,
            strides=tuple(s * item for s in stride),
            writeable=False,
        )
        array = np.array(view, dtype=storage.data.dtype.newbyteorder("="))
        if storage.dtype == "bfloat16":
            # bfloat16 is the top half of a float32: widening is exact. Shift in place: ``a << 16`` of a 0-d
            # array (a scalar tensor such as logit_scale_a) returns a numpy scalar, not an array.
            widened = array.astype(np.uint32)
            widened <<= np.uint32(16)  # (a Python 16 is int64 to numpy 1.x: no uint32 result)
            array = widened.view(np.float32)
        return array

    def _check_elements(self, elements: int, what: str) -> None:
        if self._max_elements is not None and elements > self._max_elements:
            raise TorchCheckpointError(
                f"{self._path}: {what} has {elements} elements, more than the largest tensor of the model its "
                f"config.json describes ({self._max_elements}); the weights do not belong to this config"
            )


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data


def _check_member_size(archive: zipfile.ZipFile, member: str, limit: int, path: Path) -> None:
    """Refuse `member` of `archive` before decompressing it when it declares more than `limit` bytes."""
    size = archive.getinfo(member).file_size
    if size > limit:
        raise TorchCheckpointError(
            f"{path}: member {member} declares {size} bytes, more than the {limit} a state dict needs; "
            "the file is damaged or not a torch.save state dict"
        )


def load_torch_state_dict(path: str | Path, max_elements: int | None = None) -> dict[str, np.ndarray]:
    """Tensors of a zip-format ``torch.save`` state dict, as numpy arrays, without importing torch.

    Parameters
    ----------
    path : str or Path
        A ``pytorch_model.bin`` (any ``torch.save(state_dict)`` file from torch >= 1.6).
    max_elements : int, optional
        The most elements any tensor (and storage) may have: the largest of the model the weights are for.

    Returns
    -------
    dict of str -> np.ndarray
        bfloat16 tensors come back as float32 (exactly).

    Raises
    ------
    UnsafeCheckpointError
        The pickle references anything besides tensors, storages and ordered dicts.
    TorchCheckpointError
        An empty file, a zip archive cut short, not a zip archive (legacy pre-1.6 format), a missing
        storage or one of another size than the pickle says, an oversized ``data.pkl`` or ``byteorder``,
        storages or tensors larger in all than `MAX_EXPANSION` times the file, or not a flat dict of
        tensors.
    """
    path = Path(path)
    if not path.exists():
        raise TorchCheckpointError(f"{path}: no such file")
    check_regular_file(path, TorchCheckpointError)  # (a FIFO was "no such file"; a read would wait on it)
    if not zipfile.is_zipfile(path):
        # An empty file, or a zip cut short (an interrupted download: its directory is at the end), is not
        # the legacy format: re-saving with a recent torch would not help.
        with path.open("rb") as handle:
            start = handle.read(4)
        if not start:
            raise TorchCheckpointError(f"{path}: the file is empty (0 bytes); copy or download it again")
        pointer = file_pointer_text(path)  # (a model repository cloned without Git LFS)
        if pointer:
            raise TorchCheckpointError(f"{path}: {pointer}")
        if start == b"PK\x03\x04":
            raise TorchCheckpointError(
                f"{path}: the file is damaged: it starts as a zip archive (torch.save's format) but "
                "cannot be read as one (truncated, say by an interrupted download?); copy or download it "
                "again"
            )
        raise TorchCheckpointError(
            f"{path}: not a zip archive. Only the zip format torch.save has written since torch 1.6 is supported; "
            "re-save the state dict with a recent torch, or convert it to model.safetensors."
        )
    with zipfile.ZipFile(path) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("data.pkl")]
        if len(pickles) != 1:
            raise TorchCheckpointError(f"{path}: expected one data.pkl in the archive, found {len(pickles)}")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = f"{prefix}byteorder"
        _check_member_size(archive, pickles[0], MAX_PICKLE_BYTES, path)
        if byteorder in archive.namelist():
            _check_member_size(archive, byteorder, MAX_BYTEORDER_BYTES, path)
        big_endian = byteorder in archive.namelist() and archive.read(byteorder).strip() == b"big"
        with archive.open(pickles[0]) as handle:
            unpickler = _RestrictedUnpickler(handle, archive, prefix, path, big_endian, max_elements)
            try:
                state = unpickler.load()
            except (UnsafeCheckpointError, TorchCheckpointError):
                raise
            except Exception as error:
                raise TorchCheckpointError(
                    f"{path}: data.pkl cannot be read as a state dict ({error})"
                ) from None
    if not isinstance(state, dict):
        raise TorchCheckpointError(f"{path}: holds a {type(state).__name__}, expected a state dict")
    bad = [str(k) for k, v in state.items() if not isinstance(k, str) or not isinstance(v, np.ndarray)]
    if bad:
        raise TorchCheckpointError(f"{path}: entries that are not named tensors: {', '.join(bad[:10])}")
    return dict(state)
