"""Which build wrote a run record or checkpoint: the version and the git commit (`audiotrain._build`)."""

import json
import subprocess
from pathlib import Path

import audiotrain
from audiotrain import _build
from audiotrain._system import versions

import pytest

COMMIT = "0fc96c8" + "a" * 33
OTHER = "8021250" + "b" * 33


def _checkout(root: Path, head: str = "ref: refs/heads/main\n") -> Path:
    """A folder laid out as audiotrain's git checkout: pyproject.toml and .git beside the package."""
    (root / "audiotrain").mkdir(parents=True)
    (root / "pyproject.toml").write_text('[project]\nname = "audiotrain"\n')
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text(head)
    return root


def test_run_records_and_checkpoints_name_the_commit_of_a_checkout():
    """Every build recorded 'audiotrain 0.1.0': a checkpoint could not tell which of 736 commits wrote it."""
    _build.build_version.cache_clear()
    recorded = versions()["audiotrain"]
    assert recorded.startswith(audiotrain.__version__)
    repo = Path(audiotrain.__file__).resolve().parent.parent
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("audiotrain is not imported from a git checkout here")
    assert recorded == f"{audiotrain.__version__}+g{head[:12]}"


def test_the_commit_is_read_from_a_branch_a_packed_ref_a_detached_head_and_a_worktree(tmp_path):
    root = _checkout(tmp_path / "repo")
    (root / ".git" / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    assert _build._checkout_commit(root) == COMMIT
    (root / ".git" / "refs" / "heads" / "main").unlink()  # after `git gc`: in packed-refs
    (root / ".git" / "packed-refs").write_text(f"# pack-refs with: peeled\n{OTHER} refs/heads/main\n")
    assert _build._checkout_commit(root) == OTHER
    (root / ".git" / "HEAD").write_text(COMMIT + "\n")
    assert _build._checkout_commit(root) == COMMIT
    # A worktree: .git is a file naming its git folder, whose commondir holds the branches.
    tree = tmp_path / "tree"
    (tree / "audiotrain").mkdir(parents=True)
    (tree / "pyproject.toml").write_text("")
    git_dir = root / ".git" / "worktrees" / "tree"
    git_dir.mkdir(parents=True)
    (git_dir / "HEAD").write_text("ref: refs/heads/fix\n")
    (git_dir / "commondir").write_text("../..\n")
    (root / ".git" / "refs" / "heads" / "fix").write_text(OTHER + "\n")
    (tree / ".git").write_text(f"gitdir: {git_dir}\n")
    assert _build._checkout_commit(tree) == OTHER


@pytest.mark.parametrize(
    "head",
    ["ref: refs/heads/missing\n", "ref: ../../etc/passwd\n", "not a ref\n", "ref: refs/heads/main\n"],
)
def test_anything_unexpected_gives_no_commit_rather_than_an_error(tmp_path, head):
    root = _checkout(tmp_path / "repo", head)
    (root / ".git" / "refs" / "heads" / "main").write_text("garbage\n")
    assert _build._checkout_commit(root) is None


def test_a_folder_that_is_not_audiotrains_checkout_is_not_read(tmp_path):
    """A site-packages inside some other repository must not record that repository's commit."""
    root = _checkout(tmp_path / "repo")
    (root / ".git" / "refs" / "heads" / "main").write_text(COMMIT + "\n")
    (root / "pyproject.toml").unlink()
    assert _build._checkout_commit(root) is None


def test_a_build_version_never_fails(monkeypatch):
    def broken(*args):
        raise PermissionError("no access")

    monkeypatch.setattr(_build, "_checkout_commit", broken)
    _build.build_version.cache_clear()
    try:
        assert _build.build_version() == audiotrain.__version__
    finally:
        _build.build_version.cache_clear()


@pytest.mark.parametrize("dirty, suffix", [(True, ".dirty"), (False, ""), (None, "")])
def test_a_built_copy_is_called_dirty_only_where_the_build_saw_changes(monkeypatch, dirty, suffix):
    """DIRTY is None where git refused to say (safe.directory): not known to differ, so not called dirty."""
    import sys
    from types import ModuleType

    build_info = ModuleType("audiotrain._build_info")
    build_info.COMMIT, build_info.DIRTY = COMMIT, dirty
    monkeypatch.setitem(sys.modules, "audiotrain._build_info", build_info)
    monkeypatch.setattr(audiotrain, "_build_info", build_info, raising=False)
    monkeypatch.setattr(_build, "_checkout_commit", lambda root: None)  # an installed copy: no checkout
    monkeypatch.setattr(_build, "_archived_commit", lambda root: None)
    _build.build_version.cache_clear()
    try:
        assert _build.build_version() == f"{audiotrain.__version__}+g{COMMIT[:12]}{suffix}"
    finally:
        _build.build_version.cache_clear()


def test_a_pip_install_from_git_records_the_commit_pip_wrote(tmp_path, monkeypatch):
    from importlib import metadata

    site = tmp_path / "site"
    package = site / "audiotrain"
    package.mkdir(parents=True)

    class Installed:
        def locate_file(self, name):
            return site / name

        def read_text(self, name):
            assert name == "direct_url.json"
            return json.dumps(
                {"url": "https://x/audiotrain.git", "vcs_info": {"vcs": "git", "commit_id": COMMIT}}
            )

    monkeypatch.setattr(metadata, "distribution", lambda name: Installed())
    assert _build._installed_commit(package) == COMMIT
    assert _build._installed_commit(tmp_path / "elsewhere" / "audiotrain") is None  # another copy's record


def test_info_and_version_show_the_build_the_run_records_name():
    """`info` (what a bug report quotes) and `--version` said 0.1.0 where the run folder said 0.1.0+g<commit>."""
    import sys

    recorded = versions()["audiotrain"]
    for argv in (["info"], ["--version"]):
        out = subprocess.run(
            [sys.executable, "-m", "audiotrain", *argv], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        shown = [line.split()[-1] for line in out.stdout.splitlines() if "audiotrain" in line]
        assert shown == [recorded], (argv, out.stdout)


def test_a_tree_git_archive_made_reports_the_commit_it_was_made_from(tmp_path):
    """A wheel built from GitHub's tarball or "Download ZIP" (`git archive`: no .git) said 0.1.0, no commit."""
    import shutil

    if shutil.which("git") is None:
        pytest.skip("no git to make a repository with")
    repo = Path(audiotrain.__file__).resolve().parent.parent
    source = tmp_path / "source"
    (source / "audiotrain").mkdir(parents=True)
    for name in ("pyproject.toml", ".gitattributes", _build.ARCHIVAL_FILE):  # this repository's own files
        shutil.copy(repo / name, source / name)
    (source / "audiotrain" / "__init__.py").write_text("")

    def git(*args: str, cwd: Path = source) -> str:
        command = ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args]
        return subprocess.run(command, cwd=cwd, capture_output=True, check=True).stdout.decode().strip()

    git("init", "-q")
    git("add", "-A")
    git("commit", "-q", "-m", "a commit")
    head = git("rev-parse", "HEAD")
    archive = tmp_path / "archive.tar"
    git("archive", "-o", str(archive), "HEAD")
    unpacked = tmp_path / "unpacked"
    unpacked.mkdir()
    shutil.unpack_archive(archive, unpacked)
    assert not (unpacked / ".git").exists()
    info = {}
    exec(_build.build_info_module(unpacked), info)  # what setup.py writes into the wheel and the sdist
    assert (info["COMMIT"], info["DIRTY"]) == (head, None)
    assert _build._archived_commit(unpacked) == head  # (and an import of the tree itself reads it)
    # A checkout's copy of the file holds the placeholder: a copied tree (no .git) reports no commit.
    shutil.rmtree(source / ".git")
    assert _build.build_info_module(source) is None


def test_a_run_record_names_the_versions_and_the_openblas_coretype_it_ran_with(monkeypatch):
    """A run folder's config.json and a checkpoint's trainer_state.json hold `versions()`: what is there must
    be what ran, not only the names of the fields."""
    import mlx.core as mx
    import numpy as np

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    recorded = versions()
    assert recorded["mlx"] == mx.__version__ and recorded["numpy"] == np.__version__
    assert recorded["OPENBLAS_CORETYPE"] == "Haswell"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    assert versions()["OPENBLAS_CORETYPE"] is None
