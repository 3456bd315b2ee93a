"""Which build of audiotrain is running, as run records and checkpoints record it (`build_version`).

The package version alone ("0.1.0") stayed the same for hundreds of commits, while the checkpoint contents,
the model, the feature code and the demo generators changed: a checkpoint could not tell which build wrote
it. The build adds the git commit, as a PEP 440 local version (``0.1.0+g0fc96c8a1b2c``, the form
setuptools-scm gives), where it can be read without running anything:

- audiotrain imported from a git checkout (an editable install, or ``PYTHONPATH``): the commit its ``HEAD``
  names, read from the files in ``.git`` (a worktree's too);
- audiotrain imported from, or built from, a tree ``git archive`` made (GitHub's tarballs and "Download
  ZIP", ``pip install https://github.com/.../archive/<sha>.zip``), which has no ``.git``: the commit
  ``git archive`` wrote into ``.git_archival.txt`` (``.gitattributes``: ``export-subst``);
- a copy built into a wheel or sdist (``python -m build``, ``pip install .``, ``pip install git+...``):
  the commit the build found, which setup.py writes into the built package as ``audiotrain/_build_info.py``
  (`build_info_module`), with ``.dirty`` after it where the tree had uncommitted or untracked changes
  (``0.1.0+g0fc96c8a1b2c.dirty``): such a wheel is not that commit;
- an installed copy that pip took from a git repository before builds wrote the commit: the commit pip
  recorded in the distribution's ``direct_url.json``.

The package metadata keeps the plain version (an index refuses a local version such as ``+g...``). At run
time a checkout's uncommitted changes are not seen (telling them would mean reading every file); a build
asks git once. Anything unexpected (no git, an unreadable or odd file) gives the plain version: recording
it must never fail a run or a build.
"""

from __future__ import annotations

import functools
import json
import re
import subprocess
from pathlib import Path

_COMMIT = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")  # SHA-1, or SHA-256 repositories
#: Digits of the commit kept in the version: as ``git describe``'s abbreviations, unique in practice.
SHORT_COMMIT = 12
#: A tracked file whose placeholder ``node: $Format:%H$`` ``git archive`` replaces with the commit.
ARCHIVAL_FILE = ".git_archival.txt"


@functools.cache
def build_version() -> str:
    """``<version>+g<commit>`` where the commit of this copy of audiotrain can be read, else ``<version>``."""
    from audiotrain import __version__

    package = Path(__file__).resolve().parent
    try:
        # A checkout's .git first: it names the commit its files are at now, where a _build_info.py in it
        # (an unpacked sdist put under git) names the build it came from.
        commit, dirty = _checkout_commit(package.parent) or _archived_commit(package.parent), False
        if not commit:
            commit, dirty = _built_commit()
        commit = commit or _installed_commit(package)
    except Exception:  # noqa: BLE001 - a version string must never stop a run
        commit = None
    if not commit:
        return __version__
    return f"{__version__}+g{commit[:SHORT_COMMIT]}" + (".dirty" if dirty else "")


def build_info_module(root: Path) -> str | None:
    """The text of ``audiotrain/_build_info.py`` for a build from `root` (setup.py writes it into the wheel
    and the sdist): the commit checked out there, and whether ``git status`` lists any change (uncommitted,
    or an untracked file, which the wheel may ship); in a tree ``git archive`` made, the commit it wrote
    (whether its files were changed since is not known). None where `root` is neither (an unpacked sdist:
    the build keeps the module the sdist carries)."""
    commit = _checkout_commit(root)
    if commit is None:
        commit = _archived_commit(root)
        return None if commit is None else _build_info_text(commit, None)
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
        dirty = bool(status.strip())
    except (OSError, subprocess.SubprocessError):  # no git, or a repository git refuses (safe.directory)
        dirty = None  # unknown: the version then names the commit alone
    return _build_info_text(commit, dirty)


def _build_info_text(commit: str, dirty: bool | None) -> str:
    return (
        '"""Written by the build (setup.py): the commit this copy of audiotrain was built from."""\n\n'
        f"COMMIT = {commit!r}\nDIRTY = {dirty!r}  # uncommitted or untracked changes in the tree built\n"
    )


def _built_commit() -> tuple[str | None, bool]:
    """The commit, and whether the tree had changes, that the build wrote into this installed copy."""
    try:
        from audiotrain import _build_info
    except ImportError:  # a checkout, or a copy built before builds wrote it
        return None, False
    commit = getattr(_build_info, "COMMIT", None)
    if not (isinstance(commit, str) and _COMMIT.fullmatch(commit)):
        return None, False
    return commit, getattr(_build_info, "DIRTY", None) is True


def _checkout_commit(root: Path) -> str | None:
    """The commit checked out in `root` when it is audiotrain's own git checkout (its pyproject.toml and
    ``.git`` beside the package), read from git's files: ``HEAD``, then the branch it names (a loose ref, or
    ``packed-refs``); a worktree's ``.git`` file names its git folder, whose ``commondir`` holds the refs."""
    git = root / ".git"
    if not (root / "pyproject.toml").is_file():
        return None
    if git.is_file():  # a worktree (or submodule): "gitdir: PATH"
        text = git.read_text(encoding="utf-8").strip()
        if not text.startswith("gitdir:"):
            return None
        git_dir = root / text[len("gitdir:") :].strip()  # (an absolute PATH replaces root)
    elif git.is_dir():
        git_dir = git
    else:
        return None
    head = (git_dir / "HEAD").read_text(encoding="utf-8").strip()
    if _COMMIT.fullmatch(head):  # a detached HEAD
        return head
    ref = head.removeprefix("ref:").strip()
    if not head.startswith("ref:") or not ref.startswith("refs/") or ".." in ref:
        return None
    common = git_dir
    if (git_dir / "commondir").is_file():
        common = git_dir / (git_dir / "commondir").read_text(encoding="utf-8").strip()
    for folder in (git_dir, common):
        loose = folder / ref
        if loose.is_file():
            value = loose.read_text(encoding="utf-8").strip()
            return value if _COMMIT.fullmatch(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            value, _, name = line.partition(" ")
            if name == ref and _COMMIT.fullmatch(value):
                return value
    return None


def _archived_commit(root: Path) -> str | None:
    """The commit ``git archive`` wrote into `root`'s `ARCHIVAL_FILE` (``node: <commit>``) where `root` is a
    tree of audiotrain it made; None elsewhere, and in a checkout, whose file holds the placeholder."""
    path = root / ARCHIVAL_FILE
    if not ((root / "pyproject.toml").is_file() and path.is_file()):
        return None
    for line in path.read_text(encoding="utf-8").splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "node" and _COMMIT.fullmatch(value.strip()):
            return value.strip()
    return None


def _installed_commit(package: Path) -> str | None:
    """The commit pip recorded for an installed audiotrain taken from a git repository, where `package` is
    that installation's (not some other copy's on the path)."""
    from importlib import metadata

    try:
        distribution = metadata.distribution("audiotrain")
    except metadata.PackageNotFoundError:
        return None
    if not package.is_relative_to(Path(distribution.locate_file("")).resolve()):
        return None
    direct_url = json.loads(distribution.read_text("direct_url.json") or "null")
    commit = (
        ((direct_url or {}).get("vcs_info") or {}).get("commit_id") if isinstance(direct_url, dict) else None
    )
    return commit if isinstance(commit, str) and _COMMIT.fullmatch(commit) else None
