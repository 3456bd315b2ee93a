"""OmegaConf configs (Hydra's DictConfig / ListConfig) where audiotrain takes dicts and lists: read as the
plain containers they hold. omegaconf is imported only when such a config is given, so users without it
never need it."""

from __future__ import annotations

from typing import Any


def is_omegaconf(value: Any) -> bool:
    """Whether `value` is an OmegaConf container (Hydra's DictConfig / ListConfig), told by its module so
    that audiotrain does not import omegaconf for users who have none."""
    return type(value).__module__.split(".")[0] == "omegaconf" and hasattr(value, "_get_node")


def plain_omegaconf(value: Any, where: str, name: str) -> Any:
    """An OmegaConf container as the plain dicts and lists it holds, `${...}` interpolations resolved (the
    values the module saw), so that a checkpoint's JSON can hold it; anything else as it is. A missing
    value (`???`) or an interpolation that does not resolve is named with its key."""
    if not is_omegaconf(value):
        return value
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = (str(err).splitlines() or [""])[0]
        raise ValueError(
            f"{where}: {name} holds a value that cannot be read: key '{key}': {reason} (give the config's "
            "missing values (???), e.g. as a command-line override, before it is used)"
        ) from None


def config_views(hparams: dict[str, Any], names: Any) -> dict[str, Any]:
    """`hparams` with the values of `names` (saved plain from OmegaConf configs) made configs again, as
    Lightning's `hparams` keeps them: `self.hparams.net.depth` reads as it does on the config given. A dict or
    list value only (a scalar stays as it is)."""
    from omegaconf import OmegaConf

    return {
        k: OmegaConf.create(v) if k in names and isinstance(v, (dict, list)) else v
        for k, v in hparams.items()
    }


def plain_hyperparameters(hparams: Any) -> dict[str, Any]:
    """`hparams` for a checkpoint's JSON or the loggers: its OmegaConf values (`config_views`) as the plain
    dicts and lists they hold."""
    return {k: plain_omegaconf(v, "hparams", k) for k, v in hparams.items()}


def as_omegaconf(value: Any, where: str, name: str) -> Any:
    """A saved OmegaConf config (plain dicts and lists in the checkpoint) made a DictConfig / ListConfig
    again for `__init__`, as it was given; refused by name where omegaconf is not installed."""
    try:
        from omegaconf import OmegaConf
    except ImportError:
        raise ImportError(
            f"{where}: {name} was saved from an OmegaConf config (Hydra's DictConfig), and omegaconf is not "
            f"installed to make it one again: pip install omegaconf, or pass {name}=... yourself"
        ) from None
    return OmegaConf.create(value)
