"""The build's two steps beyond pyproject.toml (which holds everything else):

- the commit the package is built from goes into the wheel and the sdist as ``audiotrain/_build_info.py``,
  so an installed copy reports ``0.1.0+g<commit>`` (``.dirty`` for a tree with changes) where no ``.git``
  lies beside it (`audiotrain._build`); a build from an unpacked sdist keeps the sdist's;
- each build starts from an empty ``build/lib/audiotrain``: setuptools ships everything it finds there, so
  a module deleted or renamed since an earlier build in the same clone was shipped from its stale copy.

Editable installs import the checkout itself and read its ``.git`` at run time: neither step runs for them.
"""

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py
from setuptools.command.sdist import sdist

ROOT = Path(__file__).resolve().parent
PACKAGE = "audiotrain"


def _build_info() -> str | None:
    # _build.py loaded by its path: importing the package would load MLX and the BLAS into the build.
    spec = importlib.util.spec_from_file_location("audiotrain_build", ROOT / PACKAGE / "_build.py")
    build = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(build)
    return build.build_info_module(ROOT)


def _write_build_info(package_dir: Path, text: str | None) -> None:
    if text is not None:
        target = package_dir / "_build_info.py"
        target.unlink(missing_ok=True)  # it may be a hard link to the source tree's file (sdist)
        target.write_text(text, encoding="utf-8")


class BuildPyWithCommit(build_py):
    def run(self) -> None:
        editable = getattr(self, "editable_mode", False)
        if not editable:
            shutil.rmtree(Path(self.build_lib) / PACKAGE, ignore_errors=True)
        super().run()
        if not editable:
            _write_build_info(Path(self.build_lib) / PACKAGE, _build_info())


class SdistWithCommit(sdist):
    def make_release_tree(self, base_dir, files) -> None:
        text = _build_info()  # before the release tree, an untracked folder in the tree, is made
        super().make_release_tree(base_dir, files)
        _write_build_info(Path(base_dir) / PACKAGE, text)


setup(cmdclass={"build_py": BuildPyWithCommit, "sdist": SdistWithCommit})
