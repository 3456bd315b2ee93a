"""YAML read safely, for config files and the runs listing alike: safe types only, parsed once by libyaml
where PyYAML has it (the pure-Python parser took 71 s for 4.5 MB), and refused when it holds more values
than a config could, its aliases counted as what they stand for (a billion-laughs file of 377 bytes is a tree
of billions, which anything that walks it would then walk)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: Most values (mappings, lists and scalars, each alias counted as what it stands for) a YAML file may hold: a
#: recipe's settings are a few hundred.
MAX_YAML_VALUES = 100_000


def parse_yaml(
    text: str,
    source: Path | str,
    error: type[Exception] = ValueError,
    check_nodes: Callable[[Any], None] | None = None,
) -> Any:
    """`text` read as YAML (None for a file of comments only), or `error` naming `source` in one line: a
    syntax error, nesting too deep, an integer of more than 4300 digits, or more than `MAX_YAML_VALUES`
    values. `check_nodes` is given the composed node tree first (before any merge key is applied)."""
    from audiotrain._files import value_error_text

    import yaml
    from yaml.constructor import SafeConstructor

    stream = io.StringIO(text)
    stream.name = str(source)  # PyYAML's errors name a stream's `name` (text alone is "<unicode string>")
    try:
        root = yaml.compose(stream, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as err:
        if "exceeded maximum nesting depth" in str(err):  # (libyaml's limit, 1000 levels)
            raise error(f"{source}: not valid YAML (nested too deeply)") from None
        raise error(f"{source}: not valid YAML: {err}{_tab_hint(err, text)}") from None
    except RecursionError:
        raise error(f"{source}: not valid YAML (nested too deeply)") from None
    if root is None:
        return None
    if check_nodes is not None:
        check_nodes(root)
    try:
        data = SafeConstructor().construct_document(root)
    except yaml.YAMLError as err:
        raise error(f"{source}: not valid YAML: {err}") from None
    except RecursionError:
        raise error(f"{source}: not valid YAML (nested too deeply)") from None
    except ValueError as err:  # an integer of more than 4300 digits
        raise error(f"{source}: not valid YAML ({value_error_text(err)})") from None
    check_value_count(data, source, error)
    return data


def _tab_hint(err: Exception, text: str) -> str:
    """A hint where the syntax error is at a tab: libyaml's message ("found character that cannot start any
    token") does not name the character, and a tab indenting a line is the commonest slip."""
    mark = getattr(err, "problem_mark", None)
    lines = text.splitlines()
    if (
        mark is None
        or not 0 <= mark.line < len(lines)
        or lines[mark.line][mark.column : mark.column + 1] != "\t"
    ):
        return ""
    return f"\n(line {mark.line + 1} has a tab there: YAML indents with spaces only)"


def check_value_count(data: Any, source: Path | str, error: type[Exception] = ValueError) -> None:
    """Refuse `data` (parsed YAML) of more than `MAX_YAML_VALUES` values, each alias counted as what it
    stands for, or whose aliases refer to themselves; each shared list or mapping is counted once."""
    sizes: dict[int, int] = {}  # id of a shared list or mapping -> its expanded size
    open_nodes: set[int] = set()
    aliased = False

    def size(node: Any) -> int:
        nonlocal aliased
        if not isinstance(node, (dict, list)):
            return 1
        if id(node) in open_nodes:
            raise error(
                f"{source}: a YAML alias refers to a value that holds it; a config cannot be recursive"
            )
        if id(node) in sizes:
            aliased = True
        else:
            open_nodes.add(id(node))
            children = [*node.keys(), *node.values()] if isinstance(node, dict) else node
            total = 1
            for child in children:
                total += size(child)
                if total > MAX_YAML_VALUES:
                    break
            open_nodes.discard(id(node))
            sizes[id(node)] = total
        return sizes[id(node)]

    try:
        total = size(data)
    except RecursionError:
        raise error(f"{source}: not valid YAML (nested too deeply)") from None
    if total > MAX_YAML_VALUES:
        how = " (its YAML aliases, *name, counted as what they stand for)" if aliased else ""
        raise error(
            f"{source}: holds more than {MAX_YAML_VALUES} values{how}; a config holds a few hundred "
            "settings" + (": write them out" if aliased else "")
        )
