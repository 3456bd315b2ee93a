"""Git LFS pointers: what a repository cloned without Git LFS holds in place of each large file.

A Hugging Face model repository or a dataset on GitHub cloned with plain ``git clone`` (Git LFS not installed,
or ``GIT_LFS_SKIP_SMUDGE=1``) has, instead of ``model.safetensors`` or ``song.wav``, a small text file::

    version https://git-lfs.github.com/spec/v1
    oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393
    size 614420368

Read as the format its name promises, it is a damaged file (a safetensors header length of eight ASCII bytes,
a wav without its RIFF header, a .lab line of two fields), and the user would fetch it again the same way. Said
as what it is, the fix is one command.
"""

from __future__ import annotations

import re
from pathlib import Path

#: How a pointer starts (the second: the spec's name before Git LFS 1.0).
_POINTER_STARTS = (b"version https://git-lfs.github.com/spec/", b"version https://hawser.github.com/spec/")
#: Git LFS reads only a file smaller than this as a pointer (`blobSizeCutoff`, lfs/scanner.go); its spec
#: (docs/spec.md) sets no limit.
MAX_POINTER_BYTES = 1024
_SIZE_LINE = re.compile(rb"^size (\d+)\s*$", re.MULTILINE)


def is_pointer(head: bytes) -> bool:
    """Whether `head` (a file's first bytes, up to `MAX_POINTER_BYTES`) is a Git LFS pointer."""
    return len(head) < MAX_POINTER_BYTES and head.startswith(_POINTER_STARTS)


def pointer_text(head: bytes) -> str:
    """What a file starting with `head` is, if it is a Git LFS pointer ("a Git LFS pointer ...: run `git lfs
    pull` ..."), else ""."""
    if not is_pointer(head):
        return ""
    size = _SIZE_LINE.search(head)
    stands_for = f"a file of {int(size.group(1)):,} bytes" if size else "a file"
    return (
        f"a Git LFS pointer, a few lines of text standing for {stands_for} that was not downloaded: run "
        "`git lfs pull` in the repository it was cloned into (after `git lfs install`, if Git LFS is not "
        "installed), or download the file itself"
    )


def file_pointer_text(path: str | Path) -> str:
    """`pointer_text` of regular file `path`'s first bytes; "" where it is not one or cannot be read."""
    try:
        with open(path, "rb") as handle:
            return pointer_text(handle.read(MAX_POINTER_BYTES))
    except OSError:
        return ""
