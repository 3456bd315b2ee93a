"""A warning at ``import audiotrain`` where an installed dependency is outside the range audiotrain declares
(pyproject.toml's ``dependencies``): an environment built with ``--no-deps``, by conda, or changed by a later
``pip install`` of another package. Without it, a numpy or safetensors older than declared showed up later
as an error deep inside a feature, with nothing naming the version.

The installed versions are read from the ``*.dist-info`` folder names on ``sys.path`` rather than through
``importlib.metadata`` and ``packaging``, whose imports alone took several times as long as the rest of
``import audiotrain``. Nothing is checked where audiotrain itself is not installed (a clone on PYTHONPATH):
then nothing says which ranges to hold it to."""

from __future__ import annotations

import os
import re
import sys
import warnings


class DependencyVersionWarning(UserWarning):
    """An installed dependency is older (or newer) than the range audiotrain declares."""


# (Compiled once: every dist-info folder's name on sys.path is normalized at import.)
_SEPARATORS = re.compile(r"[-_.]+")


def _normalized(name: str) -> str:
    return _SEPARATORS.sub("-", name).lower()  # PEP 503


def _release(version: str) -> tuple[int, ...]:
    """The release numbers of a version ("1.24.0rc1" -> (1, 24, 0)), trailing zeros dropped so that 1.24 and
    1.24.0 compare equal. A pre-release counts as its release: this is a warning, not a resolver."""
    match = re.match(r"(?:\d+!)?(\d+(?:\.\d+)*)", version.strip())
    numbers = [int(part) for part in match.group(1).split(".")] if match else [0]
    while len(numbers) > 1 and numbers[-1] == 0:
        numbers.pop()
    return tuple(numbers)


def _satisfies(version: str, specifier: str) -> bool:
    found = _release(version)
    for clause in specifier.split(","):
        match = re.fullmatch(r"\s*(>=|<=|==|!=|>|<)\s*([^\s*]+)\s*", clause)
        if match is None:
            continue  # (~=, ===, wildcards: none of audiotrain's own requirements uses them)
        op, bound = match.group(1), _release(match.group(2))
        ok = {
            ">=": found >= bound,
            "<=": found <= bound,
            ">": found > bound,
            "<": found < bound,
            "==": found == bound,
            "!=": found != bound,
        }[op]
        if not ok:
            return False
    return True


def _installed() -> tuple[dict[str, str], dict[str, str]]:
    """({normalized name: version}, {normalized name: its metadata folder}), the first of each name along
    ``sys.path`` (the one Python imports)."""
    versions: dict[str, str] = {}
    folders: dict[str, str] = {}
    for entry in sys.path:
        try:
            names = os.listdir(entry or ".")
        except OSError:  # (a zip file, a missing folder)
            continue
        for name in names:
            if name.endswith(".dist-info"):
                project, _, version = name[: -len(".dist-info")].partition("-")
            elif name.endswith(".egg-info"):  # (name-version[-pyX.Y].egg-info)
                project, _, rest = name[: -len(".egg-info")].partition("-")
                version = rest.split("-")[0]
            else:
                continue
            key = _normalized(project)
            if version and key not in versions:
                versions[key] = version
                folders[key] = os.path.join(entry or ".", name)
    return versions, folders


def _declared(metadata_folder: str) -> list[tuple[str, str, str]]:
    """[(name as written, normalized name, specifier)] of the installed audiotrain's requirements that hold
    everywhere (no extra, no environment marker)."""
    try:
        with open(os.path.join(metadata_folder, "METADATA"), encoding="utf-8") as file:
            lines = file.read().split("\n\n", 1)[0].splitlines()
    except OSError:
        return []
    out = []
    for line in lines:
        if not line.startswith("Requires-Dist:") or ";" in line:
            continue
        match = re.fullmatch(r"Requires-Dist:\s*([A-Za-z0-9._-]+)\s*(?:\[[^\]]*\])?\s*\(?([^)]*)\)?\s*", line)
        if match and match.group(2).strip():
            out.append((match.group(1), _normalized(match.group(1)), match.group(2).strip()))
    return out


def dependencies_out_of_range() -> list[str]:
    """Each installed dependency of audiotrain outside its declared range, as "NAME VERSION is installed,
    audiotrain needs NAME>=..." (for ``python -m audiotrain info`` too, which a bug report quotes)."""
    versions, folders = _installed()
    if "audiotrain" not in folders:
        return []
    return [
        f"{name} {versions[key]} is installed, audiotrain needs {name}{specifier}"
        for name, key, specifier in _declared(folders["audiotrain"])
        if key in versions and not _satisfies(versions[key], specifier)
    ]


def warn_of_dependencies_out_of_range() -> list[str]:
    """Warn (`DependencyVersionWarning`, once, naming each package, the version found and the range needed)
    where an installed dependency of audiotrain is outside its declared range; return those descriptions.
    Called by ``audiotrain``'s ``__init__``: the warning names the line that imports audiotrain."""
    from audiotrain._blas import _importer_stacklevel

    if os.environ.get("AUDIOTRAIN_DATA_WORKER"):  # (a DataLoader worker: its parent said it)
        return []
    wrong = dependencies_out_of_range()
    if wrong:
        needed = " ".join(f'"{line.rsplit(" needs ", 1)[1]}"' for line in wrong)
        them = "it" if len(wrong) == 1 else "them"
        warnings.warn(
            "; ".join(wrong)
            + f" (pyproject.toml's dependencies): parts of audiotrain may fail with {them}. Install the "
            + f"declared versions: pip install {needed}",
            DependencyVersionWarning,
            stacklevel=_importer_stacklevel(),
        )
    return wrong
