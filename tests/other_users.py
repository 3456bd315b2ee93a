"""Another user's folders, played in a test run by any user (root too, who may look into every folder)."""

import errno
import os
from pathlib import Path


def closed_to_this_user(monkeypatch, closed):
    """`closed` a folder this user may not look into (another user's, made under umask 077): root looks into
    any, so the kernel's refusal of a path inside it is played here."""
    for name in ("stat", "lstat"):
        real = getattr(os, name)

        def refusing(path, *args, real=real, **kwargs):
            if Path(os.path.abspath(path)).parent == closed:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, *args, **kwargs)

        monkeypatch.setattr(os, name, refusing)
