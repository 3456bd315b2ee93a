"""`self.log` in a hook (outside a compiled step), by Lightning's rules (its `_FxValidator` and result
collection).

Which hook runs decides the defaults: in the training batch hooks (`on_train_batch_start`,
`on_train_batch_end`) `on_step=True, on_epoch=False`, in every other hook `on_step=False, on_epoch=True`.
`on_step=True` is refused outside the training batch hooks (an epoch-level hook has no step of its own;
in validation and test a value is its mean over the loader, as a value the step logs).

- `on_step`: the last value goes to the loggers at the next logging step (`log_every_n_steps`), and to
  `callback_metrics`.
- `on_epoch`: its mean over the training epoch, or over the validation / test loader, weighted by
  `batch_size` where given, else by `TrainModule.batch_size(batch)` in a batch hook, else 1. It goes to
  `callback_metrics`, the history's row (training) and the loggers at the epoch's end, or at the stage's
  end (validation, test: only what was logged during that stage).
- Both: the loggers get `<name>_step` and `<name>_epoch`, `callback_metrics` those and `<name>`.
- `logger=False` keeps it out of the loggers (not `callback_metrics`); `prog_bar=True` shows it in the bar.

The module holds the entries (`TrainModule._logged`: (phase, name) → `HookLog`, each replaced, never
changed, so a copy of the dict is a snapshot); a checkpoint saves them (`to_state` / `load_state`), so a
run resumed inside an epoch ends it with the same means as an uninterrupted one. Under data parallel each
emission is one `all_gather_object` of every rank's sums, at points where all ranks meet anyway.
"""

from __future__ import annotations

import contextlib
import dataclasses
import warnings
from typing import TYPE_CHECKING, Any

from audiotrain._caller import user_stacklevel
from audiotrain.distributed import collectives
from audiotrain.train.checkpoint import CheckpointError
from audiotrain.train.lazy import LazyScalar
from audiotrain.train.outputs import LogOptions, options_text

import mlx.core as mx

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule

TRAIN_BATCH_HOOKS = frozenset({"on_train_batch_start", "on_train_batch_end"})
#: The hooks `self.log` works in: Lightning's (its `_FxValidator`), and `on_validation_end`, `on_test_end`
#: (their `metrics` argument holds the stage's means: a value derived from them counts for the stage) and
#: `on_fit_start` (it counts for the first epoch), where Lightning refuses. Anywhere else (`on_train_end`,
#: `on_fit_end`, `setup`, `teardown`, `on_save_checkpoint`, the predict and sanity-check hooks) a value
#: would be lost, or count for a later fit: refused, as in Lightning.
LOGGING_HOOKS = (
    TRAIN_BATCH_HOOKS
    | frozenset(
        f"on_{stage}_{when}"
        for stage in ("train", "validation", "test")
        for when in ("start", "epoch_start", "epoch_end", "batch_start", "batch_end")
    )
    | frozenset({"on_validation_end", "on_test_end", "on_fit_start"})
)
_EPOCH_END_HOOKS = frozenset(
    {"on_train_epoch_end", "on_validation_epoch_end", "on_test_epoch_end", "on_validation_end", "on_test_end"}
)
EVAL_BATCH_HOOKS = frozenset(
    {"on_validation_batch_start", "on_validation_batch_end", "on_test_batch_start", "on_test_batch_end"}
)


class LogRefused(ValueError):
    """`self.log` in a hook where Lightning refuses it: the user's call, never a checkpoint's fault (a load
    hook's refusal passes `checkpoint.named_source` as it is)."""


@dataclasses.dataclass(frozen=True)
class HookLog:
    """One name's values logged in one hook during a phase ("train": the training epoch, "val", "test"). The
    same name logged in two hooks is two entries, as in Lightning: the later hook's value is the name's."""

    name: str
    phase: str
    on_step: bool
    on_epoch: bool
    hook: str = ""  # (empty in a checkpoint written before entries were kept per hook)
    logger: bool = True
    prog_bar: bool = False
    total: Any = 0.0  # Σ value·weight since the phase began (an mx array stays lazy until read)
    weight: float = 0.0
    last: Any = None  # the last value
    pending: bool = False  # a step value not yet sent (on_step)
    loader: int | None = None  # the evaluation loader a name kept with add_dataloader_idx=False came from

    def state(self, owner: str) -> dict[str, Any]:
        """As JSON: every value read as a float (`owner`: the module's class, for an error)."""
        out = dataclasses.asdict(self)
        out["total"], out["last"] = self.read(self.total, owner), self.read(self.last, owner)
        return out

    def read(self, value: Any, owner: str) -> float | None:
        """`value` (its total or last) read on the host: an mx array waits for what computes it, and one
        kept from inside a compiled step is explained (`explain_kept_step_arrays`). None stays None."""
        if value is None:
            return None
        if isinstance(value, mx.array):
            from audiotrain.train.reporting import explain_kept_step_arrays

            with explain_kept_step_arrays(f"{owner}.log({self.name!r}, ...) in a hook"):
                return float(value.item())
        return float(value)


# ---- which hook runs ---------------------------------------------------------------------------------
@contextlib.contextmanager
def running_hook(trainer: Any, name: str, args: tuple = ()):
    """While hook `name` runs (callbacks' and the module's), `self.log` reads its name and batch here. Hooks
    nest (a callback's hook calling the Trainer): the one before is put back after."""
    if trainer is None or not hasattr(trainer, "_running_hook"):
        yield
        return
    before = trainer._running_hook
    trainer._running_hook = (name, _batch_of(name, args))
    try:
        yield
    finally:
        trainer._running_hook = before


def _batch_of(name: str, args: tuple) -> Any:
    """The batch a batch hook gets (`(batch, batch_idx)` at its start, `(outputs, batch, batch_idx)` at its
    end); None for any other hook."""
    if name.endswith("_batch_start") and args:
        return args[0]
    if name.endswith("_batch_end") and len(args) > 1:
        return args[1]
    return None


def phase_of(trainer: Any) -> str:
    if trainer is None:
        return "train"
    if trainer.sanity_checking or trainer.validating:
        return "val"
    return "test" if trainer.testing else "train"


# ---- self.log in a hook ----------------------------------------------------------------------------------
def record(
    module: TrainModule,
    name: str,
    value: Any,
    *,
    prog_bar: bool,
    logger: bool,
    on_step: bool | None,
    on_epoch: bool | None,
    batch_size: int | None,
    add_dataloader_idx: bool = True,
) -> None:
    """`module.log(name, value, ...)` outside a step: added to its entry by Lightning's rules (module
    docstring). In an evaluation batch hook of one of a stage's several loaders the name gets that loader's
    suffix, `name/dataloader_idx_1`, as in Lightning (unless `add_dataloader_idx=False`)."""
    from audiotrain.train.reporting import checked_hook_value

    owner = type(module).__name__
    value = checked_hook_value(owner, name, value)
    if isinstance(value, LazyScalar):
        value = value.array
    trainer = module._trainer
    if trainer is None:
        # As Lightning's: a module no Trainer has run yet (a step called in a unit test, `__init__`) warns and
        # logs nothing, so that a step can be tested on its own (Lightning: "not an error to support testing
        # the `*_step` methods without a `Trainer` reference"); the value checks above still hold.
        warnings.warn(
            f"{owner}.log({name!r}, ...): not logged: the module has no Trainer yet (it was not given to a "
            "Trainer's fit, validate or test), as Lightning says: \"You are trying to `self.log()` but the "
            '`self.trainer` reference is not registered on the model yet"',
            UserWarning,
            stacklevel=user_stacklevel(),  # (the user's line, through log_dict too)
        )
        return
    hook, batch = getattr(trainer, "_running_hook", None) or (None, None)
    if hook not in LOGGING_HOOKS:
        where = f"inside `{hook}`" if hook is not None else "outside the hooks the Trainer runs"
        raise LogRefused(
            f"{owner}.log({name!r}, ...): you can't self.log() {where}, as in Lightning: a value logged there "
            "would be lost or count for a later fit. Log it in a training, validation or test hook (e.g. "
            "on_train_epoch_end, on_validation_epoch_end), or write it to the logger directly "
            "(self.logger.log_metrics({...}, step=self.global_step))"
        )
    train_batch = hook in TRAIN_BATCH_HOOKS
    on_step = train_batch if on_step is None else bool(on_step)
    on_epoch = (not train_batch) if on_epoch is None else bool(on_epoch)
    if on_step and not train_batch:
        where = f"in `{hook}`" if hook is not None else "outside a hook the Trainer runs"
        reason = (
            "in validation and test a value is its mean over the loader here, as in a validation_step, where "
            "Lightning also logs <name>_step"
            if hook in EVAL_BATCH_HOOKS
            else "this hook has no step of its own, as in Lightning"
        )
        raise ValueError(
            f"{owner}.log({name!r}, ..., on_step=True): you can't self.log(on_step=True) {where} ({reason}). "
            "Log it with on_epoch=True, or per step in on_train_batch_start / on_train_batch_end"
        )
    if not (on_step or on_epoch):
        # Refused as in a step (and as Lightning's "is not useful"): kept, it would reach neither the loggers
        # nor `callback_metrics`, and the line would look like it worked.
        raise ValueError(
            f"{owner}.log({name!r}, ...) in `{hook}` with on_step=False and on_epoch=False logs nothing: "
            "pass on_epoch=True (the mean over the epoch or loader)"
            + (", or on_step=True (each step's value)" if train_batch else "")
        )
    loader = getattr(trainer, "_dataloader_idx", None)
    if hook in EVAL_BATCH_HOOKS and add_dataloader_idx and loader is not None:
        name = f"{name}/dataloader_idx_{loader}"
    phase = phase_of(trainer)
    key = (phase, hook, name)
    entry = module._logged.get(key)
    if entry is not None and _flags(entry) != [on_step, on_epoch, bool(logger), bool(prog_bar)]:
        # As Lightning's (and a step's here): one name of a hook is one series, reported one way; the later
        # call silently decided where the value went (the bar, the loggers, per step or per epoch).
        before = LogOptions(entry.on_step, entry.on_epoch, entry.prog_bar, entry.logger)
        now = LogOptions(on_step, on_epoch, bool(prog_bar), bool(logger))
        raise ValueError(
            f"{owner}.log({name!r}, ...) was called twice in `{hook}` with different arguments "
            f"({options_text(before)}, then {options_text(now)}); as in Lightning this is not allowed: log "
            "it the same way each time, or under two names"
        )
    entry = entry or HookLog(name, phase, on_step, on_epoch, hook=hook)
    if hook in EVAL_BATCH_HOOKS and loader is not None and not add_dataloader_idx:
        if entry.weight and entry.loader not in (None, loader):
            # As Lightning's ("twice ... with different arguments"): one mean over two loaders, reported as
            # each loader's, was neither loader's value.
            raise ValueError(
                f"{owner}.log({name!r}, ..., add_dataloader_idx=False) in `{hook}` was called for loaders "
                f"{entry.loader} and {loader}, whose values would be mixed into one mean (Lightning refuses "
                f"it too): log it with the loader's index (the default: '{name}/dataloader_idx_{loader}'), "
                "or under a name of its own for each loader"
            )
        entry = dataclasses.replace(entry, loader=loader)
    changes: dict[str, Any] = {
        "on_step": on_step,
        "on_epoch": on_epoch,
        "logger": bool(logger),
        "prog_bar": bool(prog_bar),
        "last": value,
        "pending": entry.pending or on_step,
    }
    if on_epoch:
        if batch_size is not None:
            weight = float(batch_size)
        elif batch is not None:
            counted = module.batch_size(batch)
            weight = float(counted.item() if isinstance(counted, mx.array) else counted)
        else:
            weight = 1.0
        if isinstance(value, mx.array) and not (
            mx.issubdtype(value.dtype, mx.floating) and value.dtype.size >= 4
        ):
            # Summed in float32 at least, as Lightning's: a bfloat16 sum stops growing by 1 past 256, so an
            # epoch's mean of bfloat16 values drifted (1.28 for 400 values of 1.0078), and an int8 overflows.
            value = value.astype(mx.float32)
        total = entry.total + value * weight if weight else entry.total
        if isinstance(total, mx.array):
            # Evaluated as it goes (without waiting): a sum of an epoch's values left lazy would be one
            # chain as long as the epoch, slower than linear to evaluate at its end.
            mx.async_eval(total)
        changes["total"] = total
        changes["weight"] = entry.weight + weight
    module._logged[key] = dataclasses.replace(entry, **changes)
    if hook in _EPOCH_END_HOOKS and trainer is not None and not trainer.sanity_checking:
        # The callbacks (and the module) after this one in the same hook read it, as in Lightning; its
        # value over the ranks replaces it once the hook has run (under data parallel).
        trainer.callback_metrics[name] = entry.read(value, owner)


# ---- emission -------------------------------------------------------------------------------------------
def step_values(module: TrainModule, world_size: int) -> tuple[dict, dict, dict, dict]:
    """The training hooks' step values waiting since the last logging step, as (for the loggers, for
    `callback_metrics`, for the bar, by plain name: `_named`); marked sent. Under data parallel each is its
    mean over the ranks that logged it (one gather, on every rank)."""
    logged = module._logged
    waiting = {k: e for k, e in logged.items() if k[0] == "train" and e.on_step and e.pending}
    for key, entry in waiting.items():
        logged[key] = dataclasses.replace(entry, pending=False)
    owner = type(module).__name__
    local = {_key(e): [e.read(e.last, owner), 1.0, *_flags(e)] for e in waiting.values()}
    return _named(*_combine(local, world_size), "step")


def epoch_values(
    module: TrainModule, phase: str, world_size: int, clear: bool = True
) -> tuple[dict, dict, dict, dict]:
    """The means of `phase`'s on_epoch values (Σ value·weight / Σ weight, over every rank's under data
    parallel: one gather on every rank), as (for the loggers, for `callback_metrics`, for the bar, by plain
    name: `_named`). With
    `clear` the phase's accumulations end (a step value still waiting is kept for its logging step)."""
    logged = module._logged
    mine = {k: e for k, e in logged.items() if k[0] == phase and e.on_epoch and e.weight > 0}
    owner = type(module).__name__
    local = {_key(e): [e.read(e.total, owner), e.weight, *_flags(e)] for e in mine.values()}
    combined = _combine(local, world_size)
    if clear:
        drop(module, phase)
    return _named(*combined, "epoch")


def drop(module: TrainModule, phase: str) -> None:
    """End `phase`'s accumulations (what a step value still waits for is kept)."""
    logged = module._logged
    for key, entry in list(logged.items()):
        if key[0] != phase:
            continue
        if entry.pending:
            logged[key] = dataclasses.replace(entry, total=0.0, weight=0.0)
        else:
            del logged[key]


_SEP = "\x1f"  # (between an entry's hook and its name, in the keys the ranks exchange)


def _key(entry: HookLog) -> str:
    return f"{entry.hook}{_SEP}{entry.name}"


def _flags(entry: HookLog) -> list[bool]:
    return [entry.on_step, entry.on_epoch, entry.logger, entry.prog_bar]


def _combine(local: dict[str, list], world_size: int) -> tuple[dict[str, float], dict[str, list[bool]]]:
    """(name → Σ numerator / Σ weight over the ranks that have it, name → its options as the first of those
    ranks has them); this rank's alone in one process. The same on every rank."""
    gathered = collectives.all_gather_object(local) if world_size > 1 else [local]
    sums: dict[str, list[float]] = {}
    flags: dict[str, list[bool]] = {}
    for ranks_values in gathered:
        for name, (numerator, weight, *options) in ranks_values.items():
            acc = sums.setdefault(name, [0.0, 0.0])
            acc[0] += numerator
            acc[1] += weight
            flags.setdefault(name, options)
    return {name: num / w for name, (num, w) in sums.items() if w > 0}, flags


def _named(
    values: dict[str, float], flags: dict[str, list[bool]], kind: str
) -> tuple[dict, dict, dict, dict]:
    """Lightning's names: `<name>_step` / `<name>_epoch` where a value is logged both ways (the callbacks
    also get `<name>`), else `<name>`; the fourth dict has `<name>` alone (the history's name, as a value
    the training step logs both ways has a single column there)."""
    loggers, callbacks, bar, plain = {}, {}, {}, {}
    for key, value in values.items():  # (in the order the hooks logged: a later hook's value wins a name)
        on_step, on_epoch, logger, prog_bar = flags[key]
        name = key.split(_SEP, 1)[1]
        both = on_step and on_epoch
        shown = f"{name}_{kind}" if both else name
        callbacks[shown] = value
        plain[name] = value
        if both:
            callbacks[name] = value
        if logger:
            loggers[shown] = value
        if prog_bar:
            bar[shown] = value
    return loggers, callbacks, bar, plain


# ---- checkpoints -----------------------------------------------------------------------------------------
def to_state(module: TrainModule, world_size: int) -> dict[str, Any]:
    """The module's entries for a checkpoint: under data parallel every rank's sums added up (each rank
    calls this; rank 0 writes it), the last values averaged."""
    local = [e.state(type(module).__name__) for e in module._logged.values()]
    gathered = collectives.all_gather_object(local) if world_size > 1 else [local]
    merged: dict[str, dict[str, Any]] = {}
    lasts: dict[str, list[float]] = {}
    for ranks_entries in gathered:
        for state in ranks_entries:
            key = f"{state['phase']}/{state['hook']}/{state['name']}"
            if state["last"] is not None:
                lasts.setdefault(key, []).append(state["last"])
            if key not in merged:
                merged[key] = dict(state)
                continue
            out = merged[key]
            out["total"] += state["total"]
            out["weight"] += state["weight"]
            out["pending"] = out["pending"] or state["pending"]
    for key, values in lasts.items():
        merged[key]["last"] = sum(values) / len(values)  # (in rank order on every rank)
    return merged


def load_state(module: TrainModule, saved: dict[str, Any], rank: int) -> None:
    """Entries from a checkpoint (`to_state`). Under data parallel rank 0 takes the saved sums, the other
    ranks none (each rank's are added at the epoch's end). An older checkpoint's `{name: value}` (the
    values waiting for the next logging point) is taken as each logged once in a training hook."""
    for key, state in saved.items():
        if not isinstance(state, dict):
            value = float(state)
            state = {"name": str(key), "phase": "train", "on_step": False, "on_epoch": True}
            state.update(total=value, weight=1.0, last=value)
        try:
            entry = HookLog(**state)
        except TypeError as err:  # (a hand-edited trainer_state.json)
            raise CheckpointError(
                f"trainer_state.json: waiting_hook_logs[{key!r}] is not a logged value's entry ({err})"
            ) from None
        if rank != 0:
            entry = dataclasses.replace(entry, total=0.0, weight=0.0)
        module._logged[(entry.phase, entry.hook, entry.name)] = entry
