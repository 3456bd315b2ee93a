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

        def refusing(path, *args, real=real, **kwargs):
            if closed in Path(os.path.abspath(path)).parents:
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
