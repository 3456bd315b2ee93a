"""`BaseFinetuning` and `BackboneFinetuning`: Lightning's fine-tuning callbacks, with parameter groups as
`MultiOptimizer` groups (an MLX optimizer has one learning rate)."""

from __future__ import annotations

import copy
import math
import warnings
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from audiotrain.distributed import collectives
from audiotrain.train.callback import Callback
from audiotrain.train.module import coming_rate, rate_as_given

import mlx.core as mx
import mlx.nn as nn
import mlx.optimizers as optim
from mlx.utils import tree_flatten

if TYPE_CHECKING:
    from audiotrain.train.module import TrainModule
    from audiotrain.train.trainer import Trainer

_RUNNING_STATS = ("running_mean", "running_var")


def multiplicative(epoch: int) -> float:
    """Lightning's default `lambda_func`: the backbone's rate doubles every epoch."""
    return 2.0


def _flatten(modules: Any, where: str) -> list[nn.Module]:
    """`modules` (a module, or an iterable of modules and iterables) as a list of modules."""
    if isinstance(modules, nn.Module):
        return [modules]
    if isinstance(modules, Iterable) and not isinstance(modules, (str, bytes, dict)):
        return [m for part in modules for m in _flatten(part, where)]
    raise TypeError(f"{where}: modules must be an mlx.nn.Module or an iterable of them, got {modules!r}")


def _leaf_or_owns_parameters(module: nn.Module) -> bool:
    # (`modules()` lists the module itself too: one entry is a leaf.)
    return len(module.modules()) == 1 or any(isinstance(value, mx.array) for value in module.values())


def _batch_norms(modules: list[nn.Module]) -> list[nn.BatchNorm]:
    return [sub for m in modules for sub in m.modules() if isinstance(sub, nn.BatchNorm)]


def _affine_keys(bn: nn.BatchNorm) -> list[str]:
    return [key for key in ("weight", "bias") if key in bn]


class ParamGroups:
    """What `finetune_function` receives as `optimizer`: the Trainer's optimizer seen as torch's parameter
    groups. `param_groups[i]["lr"]` reads and sets group i's learning rate (`param_groups[0]` is the
    optimizer `configure_optimizers` returned, or a `MultiOptimizer`'s first), `param_groups[i]["params"]`
    names its parameters (the dotted names of `module.trainable_parameters()`; all the others for group 0),
    and `add_param_group({"params": names, "lr": lr})` adds a group: the Trainer's optimizer becomes a
    `MultiOptimizer` whose new optimizer (a copy of group 0's, with its own rate and fresh state) updates
    those parameters. `optimizer` is the Trainer's optimizer now."""

    def __init__(self, trainer: Trainer, module: TrainModule):
        self._trainer, self._module = trainer, module
        self._base: optim.Optimizer | None = None  # the optimizer configure_optimizers returned
        self.added: list[tuple[frozenset[str], optim.Optimizer]] = []

    @property
    def optimizer(self) -> optim.Optimizer:
        return self._trainer.optimizer

    def reset(self) -> None:
        """Back to the optimizer `configure_optimizers` returned, without added groups."""
        if self._base is not None:
            self._trainer.optimizer = self._base
        self._base, self.added = None, []

    def _base_groups(self) -> list[optim.Optimizer]:
        base = self._base if self._base is not None else self._trainer.optimizer
        return list(base.optimizers) if isinstance(base, optim.MultiOptimizer) else [base]

    @property
    def param_groups(self) -> list[_Group]:
        base = self._base_groups()
        added = [names for names, _ in self.added]
        taken = frozenset().union(*added)
        groups = [_Group(opt, None, taken) for opt in base]
        return groups + [_Group(opt, names, frozenset()) for names, opt in self.added]

    def add_param_group(self, group: dict[str, Any]) -> None:
        """Train the parameters `group["params"]` (dotted names) with an optimizer of their own at
        `group["lr"]` from the next step on. Raises ValueError for a name that is not a trainable parameter
        of the module or already in an added group, or a rate that is not a positive number."""
        where = "ParamGroups.add_param_group"
        if not isinstance(group, dict) or set(group) != {"params", "lr"}:
            raise TypeError(f'{where}: give {{"params": [names], "lr": rate}}, got {group!r}')
        names = group["params"]
        # (A dict is Lightning's module.parameters() here, an MLX tree: iterated, it gives its keys, which
        # would be taken for names. A list of arrays is not printed: its repr is every array.)
        if isinstance(names, (str, dict)) or not all(isinstance(n, str) for n in names):
            given = type(names).__name__ if isinstance(names, dict) else _short_repr(names)
            raise TypeError(
                f"{where}: params must be parameter names (str), the dotted names of "
                "module.trainable_parameters(), e.g. [f'backbone.{name}' for name, _ in "
                f"tree_flatten(module.backbone.trainable_parameters())], got {given}; "
                "BaseFinetuning.unfreeze_and_add_param_group(module.backbone, optimizer, lr) unfreezes "
                "and adds a module's parameters in one call"
            )
        names = frozenset(names)
        lr = _positive_rate(group["lr"], f'{where}: "lr"')
        trainable = {name for name, _ in tree_flatten(self._module.trainable_parameters())}
        unknown = sorted(names - trainable)
        taken = sorted(names & frozenset().union(*(n for n, _ in self.added)))
        if not names or unknown or taken:
            problem = (
                "no parameters"
                if not names
                else f"{', '.join(unknown[:3])}: not trainable parameters of {type(self._module).__name__}"
                if unknown
                else f"{', '.join(taken[:3])}: already in an added group"
            )
            raise ValueError(f"{where}: {problem}")
        self._add(names, lr)

    def _add(self, names: frozenset[str], lr: float) -> None:
        where = "ParamGroups.add_param_group"
        if self._base is None:
            self._base = self._trainer.optimizer
        first = self._base_groups()[0]
        if isinstance(first, optim.MultiOptimizer):
            raise TypeError(f"{where}: a MultiOptimizer nested in a MultiOptimizer is not supported")
        others = sorted(set(first._schedulers) - {"learning_rate"})
        if others:
            raise ValueError(
                f"{where}: {type(first).__name__} has schedules of {', '.join(others)}, which a new group "
                "(its own step count) cannot follow; give them as numbers"
            )
        new = copy.copy(first)
        new._initialized = False
        scalars = {k: v for k, v in first.state.items() if isinstance(v, mx.array) and k != "step"}
        new._state = {"step": mx.array(0, mx.uint64), **scalars}
        new._schedulers = {}
        new.learning_rate = mx.array(lr, dtype=first.state["learning_rate"].dtype)
        self.added.append((names, new))
        self._trainer.optimizer = self._combined()

    def _combined(self) -> optim.MultiOptimizer:
        base = self._base
        base_filters = list(base.filters) if isinstance(base, optim.MultiOptimizer) else [lambda *a: True]
        groups = self._base_groups() + [opt for _, opt in self.added]
        taken = frozenset().union(*(names for names, _ in self.added))
        filters = [_outside(taken, f) for f in base_filters] + [_inside(names) for names, _ in self.added]
        combined = GroupedMultiOptimizer(groups, filters[: len(groups) - 1])
        combined.filters = filters  # (every parameter matches exactly one: the added groups' names first)
        # The name a LearningRateMonitor logs it under: the optimizer configured (lr-Adam/pg1, /pg2, as
        # Lightning names an optimizer's param groups), not this class. A MultiOptimizer configured keeps
        # each group's own class (lr-SGD/pg1, lr-Adam/pg2), as the monitor named them before the add.
        if not isinstance(base, optim.MultiOptimizer) or hasattr(base, "log_name"):
            combined.log_name = getattr(base, "log_name", type(base).__name__)
        return combined


class GroupedMultiOptimizer(optim.MultiOptimizer):
    """A `MultiOptimizer` whose groups see the parameter tree with its lists at full length (`{}` where a
    group has nothing). MLX's rebuilds each group's part with `tree_unflatten`, which shortens a list (a
    `Sequential`'s layers) after the last entry the group holds, and then no longer fits the state its
    first optimizer had built over the whole tree before the group was added."""

    def _split_dictionary(self, gradients: dict) -> list:
        if len(self.optimizers) == 1:
            return [gradients]
        flat = tree_flatten(gradients)
        owner = {}
        for key, value in flat:
            owner[key] = next(i for i, fn in enumerate(self.filters) if fn(key, value))
        return [
            _part(gradients, "", lambda key, i=i: owner.get(key) == i) for i in range(len(self.optimizers))
        ]


def _part(tree: Any, prefix: str, keep: Callable[[str], bool]) -> Any:
    if isinstance(tree, dict):
        parts = {k: _part(v, f"{prefix}{k}.", keep) for k, v in tree.items()}
        return {k: v for k, v in parts.items() if v is not None}
    if isinstance(tree, (list, tuple)):
        return [{} if (p := _part(v, f"{prefix}{i}.", keep)) is None else p for i, v in enumerate(tree)]
    return tree if keep(prefix[:-1]) else None


def _outside(taken: frozenset[str], base_filter: Callable) -> Callable:
    return lambda path, value: path not in taken and base_filter(path, value)


def _inside(names: frozenset[str]) -> Callable:
    return lambda path, value: path in names


class _Group:
    """One parameter group as torch's dict: "lr" (read and set) and "params" (names; None for a base group:
    every parameter no added group takes)."""

    def __init__(self, optimizer: optim.Optimizer, names: frozenset[str] | None, taken: frozenset[str]):
        self.optimizer, self.names, self._taken = optimizer, names, taken

    def __getitem__(self, key: str) -> Any:
        if key == "lr":
            rate = coming_rate(self.optimizer)  # (the next update's, as torch's group lr)
            # (0.1, not float32's 0.10000000149011612: rates computed from it, BackboneFinetuning's x0.1,
            # x2 ..., are then Lightning's, and print as Lightning's)
            return rate_as_given(float(rate.item()) if isinstance(rate, mx.array) else float(rate))
        if key == "params":
            return sorted(self.names) if self.names is not None else None
        raise KeyError(f"a parameter group has 'lr' and 'params', not {key!r}")

    def __setitem__(self, key: str, value: Any) -> None:
        if key != "lr":
            raise KeyError(f"only a parameter group's 'lr' can be set, not {key!r}")
        if "learning_rate" in self.optimizer._schedulers:
            raise ValueError(
                "setting a parameter group's lr: its optimizer's learning rate is a schedule, which would "
                "set it again at the next step; give configure_optimizers a number"
            )
        rate = _positive_rate(value, "a parameter group's lr")
        self.optimizer.learning_rate = mx.array(rate, dtype=self.optimizer.learning_rate.dtype)


def _short_repr(values: Any) -> str:
    """What a user passed, without the contents of any array in it."""
    if isinstance(values, str):
        return repr(values)
    items = list(values)
    kinds = sorted({type(v).__name__ for v in items})
    return f"a {type(values).__name__} of {len(items)} item(s) of type {' / '.join(kinds) or '-'}"


def _positive_rate(value: Any, what: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{what} must be a positive finite number, got {value!r}")
    return float(value)


class BaseFinetuning(Callback):
    """Lightning's base for fine-tuning schedules: override `freeze_before_training(module)` (run at
    `setup`) and `finetune_function(module, epoch, optimizer)` (run at each epoch start, before the
    module's `on_train_epoch_start`; their parameters are positional, so Lightning's names `(pl_module,
    current_epoch, optimizer)` type-check as well), with the static helpers `freeze(modules, train_bn=True)`,
    `make_trainable(modules)` and `unfreeze_and_add_param_group(modules, optimizer, lr=None,
    initial_denom_lr=10.0, train_bn=True)`. The Trainer rebuilds its compiled step at the epoch start
    where the trainable set or the optimizer changed.

    `optimizer` is a `ParamGroups` view of the Trainer's optimizer (torch's `param_groups[i]["lr"]` and
    `add_param_group`). A group added by `unfreeze_and_add_param_group` trains its parameters with a copy
    of group 0's optimizer at its own rate and from fresh state, as a torch group of new parameters;
    the Trainer's optimizer becomes a `MultiOptimizer` (its groups show in `LearningRateMonitor` as
    `/pg1`, `/pg2`). The added groups and the epoch whose `finetune_function` last ran are in each
    checkpoint: a resumed fit rebuilds the groups before the optimizer's state loads, and a fit resumed
    inside an epoch does not run that epoch's `finetune_function` again, so it ends with the weights of an
    uninterrupted one (Lightning 2.6.6 skips the hook on a mid-epoch resume but freezes the backbone again
    in `freeze_before_training`: resumed inside or after the unfreeze epoch, it never trains again).

    Where it differs from Lightning: a group's rate is a number, which the main group's lr schedule does not
    scale (torch's StepLR, ExponentialLR and CosineAnnealingLR made before the group do scale it: under
    Lightning 2.6.6 a group added at 0.1 under StepLR(gamma=0.5) trains at 0.1, 0.05, 0.025; its LambdaLR
    raises; `BackboneFinetuning` sets its group's rate each epoch, so it is unaffected); `train_bn=False` in
    `unfreeze_and_add_param_group` leaves frozen BatchNorm weights frozen (Lightning makes them require grad
    outside any group: never updated either; BatchNorm weights that trained already go on training in their
    group, as in Lightning); freezing a BatchNorm freezes its weight and bias but not its running statistics
    (MLX's BatchNorm without `track_running_stats` would normalise with batch statistics at evaluation too:
    call `.eval()` on it for fixed statistics); `make_trainable` unfreezes every parameter of the modules but
    BatchNorm's running statistics, as MLX's `unfreeze()`. One fine-tuning callback per Trainer.
    """

    def __init__(self) -> None:
        self._groups: ParamGroups | None = None
        self._restored: list[dict[str, Any]] = []
        self._last_epoch: int | None = None

    # ---- Lightning's static helpers --------------------------------------------------------------------
    @staticmethod
    def flatten_modules(modules: nn.Module | Iterable) -> list[nn.Module]:
        """The modules in `modules` that hold parameters: each leaf module (no submodules) and each module
        with parameters of its own, as Lightning's; a container such as `nn.Sequential` is left out, its
        layers kept."""
        flat = _flatten(modules, "BaseFinetuning.flatten_modules")
        return [sub for m in flat for sub in m.modules() if _leaf_or_owns_parameters(sub)]

    @staticmethod
    def make_trainable(modules: nn.Module | Iterable) -> None:
        """Unfreeze every parameter of `modules` (a BatchNorm's running statistics stay statistics)."""
        flat = _flatten(modules, "BaseFinetuning.make_trainable")
        for m in flat:
            m.unfreeze(
                recurse=True
            )  # (MLX's meaning: a TrainModule's bare unfreeze() also sets training mode)
        for bn in _batch_norms(flat):
            bn.freeze(keys=[key for key in _RUNNING_STATS if key in bn], recurse=False)

    @staticmethod
    def freeze_module(module: nn.Module) -> None:
        """Freeze every parameter of `module` (Lightning's name)."""
        BaseFinetuning.freeze(module, train_bn=False)

    @staticmethod
    def freeze(modules: nn.Module | Iterable, train_bn: bool = True) -> None:
        """Freeze every parameter of `modules`, but the BatchNorm weights and biases where `train_bn`."""
        flat = _flatten(modules, "BaseFinetuning.freeze")
        if not isinstance(train_bn, bool):
            raise TypeError(f"BaseFinetuning.freeze: train_bn must be True or False, got {train_bn!r}")
        for m in flat:
            m.freeze(recurse=True)  # (MLX's meaning: a TrainModule's bare freeze() also sets eval mode)
        if train_bn:
            for bn in _batch_norms(flat):
                bn.unfreeze(keys=_affine_keys(bn), recurse=False)

    @staticmethod
    def unfreeze_and_add_param_group(
        modules: nn.Module | Iterable,
        optimizer: ParamGroups,
        lr: float | None = None,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
    ) -> None:
        """Unfreeze `modules` and train their newly trainable parameters as a group of their own, at `lr`, or
        (None) group 0's current rate / `initial_denom_lr`. Parameters of `modules` that trained already
        stay in their group, with a warning (as Lightning's)."""
        where = "BaseFinetuning.unfreeze_and_add_param_group"
        if not isinstance(optimizer, ParamGroups):
            raise TypeError(
                f"{where}: optimizer must be the one finetune_function receives (a ParamGroups view of the "
                f"Trainer's optimizer), got {type(optimizer).__name__}"
            )
        if lr is not None:
            _positive_rate(lr, f"{where}: lr")
        _positive_rate(initial_denom_lr, f"{where}: initial_denom_lr")
        if not isinstance(train_bn, bool):
            raise TypeError(f"{where}: train_bn must be True or False, got {train_bn!r}")
        flat = _flatten(modules, where)
        root = optimizer._module
        before = {name for name, _ in tree_flatten(root.trainable_parameters())}
        frozen_bn = [
            (bn, [key for key in _affine_keys(bn) if key not in bn.trainable_parameters()])
            for bn in _batch_norms(flat)
        ]
        BaseFinetuning.make_trainable(flat)
        if not train_bn:
            # As Lightning's: make_trainable makes every BatchNorm weight require grad and
            # filter_params(train_bn=False) leaves them all out of the new group. One that was frozen then
            # requires grad in no group (never updated): here it stays frozen. One that trained already (as
            # `freeze(train_bn=True)` keeps them, BackboneFinetuning's freeze too) goes on training in its
            # group: it is not frozen here.
            for bn, keys in frozen_bn:
                if keys:
                    bn.freeze(keys=keys, recurse=False)
        owned = {id(value) for m in flat for _, value in tree_flatten(m.parameters())}
        theirs = {name for name, value in tree_flatten(root.trainable_parameters()) if id(value) in owned}
        # (A BatchNorm's weights that trained already stay in their group by design, without a warning:
        # Lightning's filter_params skips them with train_bn=False; with train_bn=True `freeze` kept them.)
        kept = {id(bn[key]) for bn in _batch_norms(flat) for key in _affine_keys(bn)}
        kept_names = {name for name, value in tree_flatten(root.parameters()) if id(value) in kept}
        already = sorted((theirs & before) - kept_names)
        if already and collectives.is_main_process():
            warnings.warn(
                f"{where}: {len(already)} parameter(s) of these modules trained already "
                f"({', '.join(already[:3])}{', ...' if len(already) > 3 else ''}); they stay in their group",
                UserWarning,
                stacklevel=3,
            )
        new = theirs - before
        if new:
            rate = optimizer.param_groups[0]["lr"] / initial_denom_lr if lr is None else float(lr)
            optimizer.add_param_group({"params": sorted(new), "lr": rate})

    # ---- to override -----------------------------------------------------------------------------------
    def freeze_before_training(self, module: TrainModule, /) -> None:
        """Freeze what trains later (at `setup`, before `configure_optimizers`)."""
        raise NotImplementedError(f"{type(self).__name__}: override freeze_before_training(module)")

    def finetune_function(self, module: TrainModule, epoch: int, optimizer: ParamGroups, /) -> None:
        """Unfreeze and set the groups' rates for `epoch` (at its start)."""
        raise NotImplementedError(
            f"{type(self).__name__}: override finetune_function(module, epoch, optimizer)"
        )

    # ---- hooks -----------------------------------------------------------------------------------------
    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        others = [cb for cb in trainer.callbacks if isinstance(cb, BaseFinetuning) and cb is not self]
        if others:
            raise ValueError(
                f"Trainer: {type(self).__name__} and {type(others[0]).__name__}: one fine-tuning callback "
                "per Trainer (each would add parameter groups to the same optimizer)"
            )
        if stage == "fit":
            self._groups, self._restored, self._last_epoch = ParamGroups(trainer, module), [], None
        self.freeze_before_training(module)

    def on_restore_structure(self, trainer: Trainer, module: TrainModule, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get("callbacks", {}).get(self.state_key)
        if isinstance(saved, dict):
            self.restore_param_groups(trainer, saved)

    def restore_param_groups(self, trainer: Trainer, state: dict[str, Any]) -> None:
        """The groups a checkpoint's run had added, added again to the optimizer `configure_optimizers`
        returned (`on_restore_structure`: before the optimizer's state loads into them)."""
        if self._groups is None:
            self._groups = ParamGroups(trainer, trainer.module)
        self._groups.reset()
        groups = state.get("added_param_groups", [])
        if not isinstance(groups, list) or not all(
            isinstance(g, dict) and isinstance(g.get("params"), list) and "lr" in g for g in groups
        ):
            raise ValueError(
                f'{self.state_key}: "added_param_groups" must be a list of {{"params": [names], "lr": rate}}'
            )
        module = self._groups._module
        names = {n for n, _ in tree_flatten(module.parameters())}
        for group in groups:
            missing = sorted(set(group["params"]) - names)
            if missing:
                raise ValueError(f"{self.state_key}: {type(module).__name__} has no parameter {missing[0]}")
            lr = _positive_rate(group["lr"], f"{self.state_key}: a group's lr")
            self._groups._add(frozenset(group["params"]), lr)

    def on_train_epoch_start(self, trainer: Trainer, module: TrainModule) -> None:
        epoch = trainer.current_epoch
        if epoch == self._last_epoch:
            return  # resumed inside this epoch: its finetune_function ran (its effects are in the checkpoint)
        self.finetune_function(module, epoch, self._groups)
        self._last_epoch = epoch

    def state_dict(self) -> dict[str, Any]:
        groups = self._groups.param_groups[len(self._groups._base_groups()) :] if self._groups else []
        return {
            "added_param_groups": [{"params": g["params"], "lr": g["lr"]} for g in groups],
            "last_epoch": self._last_epoch,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        last = state.get("last_epoch")
        if last is not None and (type(last) is not int or last < 0):
            raise ValueError(
                f"{self.state_key}: last_epoch must be an epoch (int >= 0) or null, got {last!r}"
            )
        self._last_epoch = last


class BackboneFinetuning(BaseFinetuning):
    """Lightning's `BackboneFinetuning`: the module's `backbone` is frozen before training and unfrozen at
    epoch `unfreeze_backbone_at_epoch` as a parameter group of its own, at `backbone_initial_lr`, or the
    current rate x `backbone_initial_ratio_lr`; from the next epoch on its rate is multiplied by
    `lambda_func(epoch + 1)` at each epoch start and, with `should_align`, never exceeds group 0's current
    rate. As Lightning's, `freeze_before_training` freezes the backbone with `freeze`'s default
    train_bn=True whatever `train_bn`, so the backbone's BatchNorm weights train in group 0 from the start
    and go on training there after the unfreeze; `train_bn` (passed on to `unfreeze_and_add_param_group`)
    matters only to a subclass whose `freeze_before_training` froze them: True adds them to the backbone's
    group, False leaves them frozen;
    `verbose` prints both rates on stderr (rounded to `rounding` digits) at each change, on rank 0;
    `initial_denom_lr` is passed on to `unfreeze_and_add_param_group` (used only where a rate is not given,
    as in Lightning).
    A module without an `mlx.nn.Module` `backbone` is refused when `fit` starts. The backbone's rate is a
    number set per epoch (group 0's may be a schedule, read as its current rate); the rest as
    `BaseFinetuning`.
    """

    def __init__(
        self,
        unfreeze_backbone_at_epoch: int = 10,
        lambda_func: Callable[[int], float] = multiplicative,
        backbone_initial_ratio_lr: float = 10e-2,
        backbone_initial_lr: float | None = None,
        should_align: bool = True,
        initial_denom_lr: float = 10.0,
        train_bn: bool = True,
        verbose: bool = False,
        rounding: int = 12,
    ):
        super().__init__()
        name = "BackboneFinetuning"
        if type(unfreeze_backbone_at_epoch) is not int or unfreeze_backbone_at_epoch < 0:
            raise ValueError(
                f"{name}: unfreeze_backbone_at_epoch must be an epoch (int >= 0), "
                f"got {unfreeze_backbone_at_epoch!r}"
            )
        if not callable(lambda_func):
            raise TypeError(f"{name}: lambda_func must be a function of the epoch, got {lambda_func!r}")
        _positive_rate(backbone_initial_ratio_lr, f"{name}: backbone_initial_ratio_lr")
        if backbone_initial_lr is not None:
            _positive_rate(backbone_initial_lr, f"{name}: backbone_initial_lr")
        _positive_rate(initial_denom_lr, f"{name}: initial_denom_lr")
        for flag, value in (("should_align", should_align), ("train_bn", train_bn), ("verbose", verbose)):
            if not isinstance(value, bool):
                raise TypeError(f"{name}: {flag} must be True or False, got {value!r}")
        if type(rounding) is not int or rounding < 0:
            raise ValueError(f"{name}: rounding must be an int >= 0, got {rounding!r}")
        self.unfreeze_backbone_at_epoch = unfreeze_backbone_at_epoch
        self.lambda_func = lambda_func
        self.backbone_initial_ratio_lr = backbone_initial_ratio_lr
        self.backbone_initial_lr = backbone_initial_lr
        self.should_align = should_align
        self.initial_denom_lr = initial_denom_lr
        self.train_bn = train_bn
        self.verbose = verbose
        self.rounding = rounding
        self.previous_backbone_lr: float | None = None

    def setup(self, trainer: Trainer, module: TrainModule, stage: str) -> None:
        backbone = getattr(module, "backbone", None)
        if not isinstance(backbone, nn.Module):
            raise ValueError(
                f"BackboneFinetuning: {type(module).__name__} should have an mlx.nn.Module `backbone` "
                f"attribute (as Lightning requires), got {type(backbone).__name__}"
            )
        if stage == "fit":
            self.previous_backbone_lr = None
        super().setup(trainer, module, stage)

    def freeze_before_training(self, module: TrainModule, /) -> None:
        self.freeze(module.backbone)

    def finetune_function(self, module: TrainModule, epoch: int, optimizer: ParamGroups, /) -> None:
        if epoch == self.unfreeze_backbone_at_epoch:
            current_lr = optimizer.param_groups[0]["lr"]
            initial = (
                self.backbone_initial_lr
                if self.backbone_initial_lr is not None
                else current_lr * self.backbone_initial_ratio_lr
            )
            self.previous_backbone_lr = initial
            self.unfreeze_and_add_param_group(
                module.backbone,
                optimizer,
                initial,
                train_bn=self.train_bn,
                initial_denom_lr=self.initial_denom_lr,
            )
            self._say(current_lr, initial)
        elif epoch > self.unfreeze_backbone_at_epoch and self.previous_backbone_lr is not None:
            current_lr = optimizer.param_groups[0]["lr"]
            following = self.lambda_func(epoch + 1) * self.previous_backbone_lr
            if self.should_align and following > current_lr:
                following = current_lr
            optimizer.param_groups[-1]["lr"] = following
            self.previous_backbone_lr = following
            self._say(current_lr, following)

    def _say(self, current_lr: float, backbone_lr: float) -> None:
        # On stderr as the Trainer's other notes (EarlyStopping's verbose lines): Lightning's logger has a
        # handler of its own, so its lines show; a logger of ours without one showed nothing.
        if self.verbose and collectives.is_main_process() and self._groups is not None:
            self._groups._trainer._note(
                f"Current lr: {round(current_lr, self.rounding)}, "
                f"Backbone lr: {round(backbone_lr, self.rounding)}"
            )

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "previous_backbone_lr": self.previous_backbone_lr}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        previous = state.get("previous_backbone_lr")
        if previous is not None:
            _positive_rate(previous, f"{self.state_key}: previous_backbone_lr")
        super().load_state_dict(state)
        self.previous_backbone_lr = previous


__all__ = ["BackboneFinetuning", "BaseFinetuning", "ParamGroups", "multiplicative"]
