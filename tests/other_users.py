"""Another user's folders, played in a test run by any user (root too, who may look into every folder)."""

import errno
import os
from pathlib import Path


def closed_to_this_user(monkeypatch, closed):
    """`closed` a folder this user may neither list nor look into (another user's, made under umask 077):
    root may look into any, so the kernel's refusals, of the folder's listing and of any path inside it,
    are played here."""

    def refused(path):
        return PermissionError(errno.EACCES, "Permission denied", str(path))

    for name in ("stat", "lstat"):
        real = getattr(os, name)

        def refusing(path, *args, real=real, name=name, **kwargs):
            follows = name == "stat" and kwargs.get("follow_symlinks", True) and not isinstance(path, int)
            # (stat follows a link: one leading into the closed folder is refused, as the kernel does)
            if closed in Path(os.path.realpath(path) if follows else os.path.abspath(path)).parents:
                raise refused(path)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, refusing)
    for name in ("scandir", "listdir"):
        real = getattr(os, name)

        def refusing_list(path=".", *args, real=real, **kwargs):
            if not isinstance(path, int) and Path(os.path.abspath(path)) == closed:
                raise refused(path)
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, refusing_list)


def not_writable_by_this_user(monkeypatch, folder):
    """`folder` another user's, open to read (755), so that this user may make no file or folder in it: root
    may write anywhere, so the kernel's refusal (EACCES) of a new file or folder there is played here."""

    def inside(path):
        where = Path(os.path.abspath(path))
        return where == folder or folder in where.parents

    real_open, real_mkdir = os.open, os.mkdir

    def refusing_open(path, flags, *args, **kwargs):
        if flags & os.O_CREAT and inside(os.path.dirname(os.path.abspath(path))):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    def refusing_mkdir(path, *args, **kwargs):
        if inside(os.path.dirname(os.path.abspath(path))):
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", refusing_open)
    monkeypatch.setattr(os, "mkdir", refusing_mkdir)


def another_users_mlx_folder(monkeypatch, tmp):
    """`tmp` plays a shared server's /tmp (MLX's C++ falls back to it) in which another user ran MLX first, so
    that ``mlx/`` there is theirs; this user set none of the temporary folder's variables."""
    import audiotrain._system

    for name in audiotrain._system.TEMP_DIR_VARIABLES:  # (set first: teardown restores what was there)
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    (tmp / "mlx").mkdir(parents=True)
    monkeypatch.setattr(audiotrain._system, "SYSTEM_TEMP_DIR", str(tmp), raising=False)
    not_writable_by_this_user(monkeypatch, tmp / "mlx")
    return tmp
