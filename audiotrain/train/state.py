"""The Trainer's state, as named objects that each save and restore themselves.

A checkpoint is the dict of these objects' `state_dict()`s (plus the model, optimizer, callbacks and
loggers), and resuming loads every one of them back, so a resumed fit continues exactly where the saved
one stopped (Lightning Fabric's "state is a dict of named objects"):

- `Progress`: where the loop is (epoch, optimizer step, batch in the epoch, the open accumulation window,
  a validation that is due but has not run);
- `RunningMeans`: the weighted sums of the step results, for the logging interval and for the epoch;
- `History`: one row per finished epoch, what `export_history` writes;
- `RandomState`: MLX's key, numpy's global generator, Python's `random` and torch's (when imported);
- `TrainableSets`: which parameters train (freeze / unfreeze) and which the optimizer holds state for.
"""

from __future__ import annotations

import base64
import importlib
import random
from dataclasses import asdict, dataclass, fields
from typing import Any

from audiotrain.train.interrupt import eval_compiling_again
from audiotrain.train.seeding import imported_torch

import mlx.core as mx
import numpy as np


class StateError(ValueError):
    """A checkpoint's saved state does not have the shape this version of audiotrain writes."""


def _require(state: dict[str, Any], keys: list[str], owner: str) -> None:
    missing = [k for k in keys if k not in state]
    if missing:
        raise StateError(
            f"{owner} state is missing {', '.join(missing)} (it has: {', '.join(sorted(state))})"
        )


@dataclass
class Progress:
    """Where the fit loop is. Callbacks read it through the Trainer's properties (`current_epoch`,
    `global_step`, `batch_in_epoch`), never write it.

    `epoch_complete` marks an epoch whose every batch has trained but whose end (validation, hooks) is
    still running: a checkpoint taken then resumes at the next epoch's first batch.
    """

    epoch: int = 0
    global_step: int = 0  # optimizer steps taken
    batch_in_epoch: int = 0  # batches of the current epoch already trained on
    total_batches: int = 0  # batches trained on in every epoch so far
    micro_batches: int = 0  # batches in the accumulation window that is still open
    validation_pending: bool = False  # a validation that was due when the state was saved
    validated_epoch: int = -1  # the last epoch a validation ran in (its history row shows its metrics)
    epoch_complete: bool = False

    def start_epoch(self) -> bool:
        """Begin the current epoch; True when it resumes in the middle of one."""
        self.epoch_complete = False
        return self.batch_in_epoch > 0

    def finish_epoch(self) -> None:
        self.epoch += 1
        self.batch_in_epoch = 0
        self.epoch_complete = False

    def state_dict(self) -> dict[str, Any]:
        state = asdict(self)
        del state["epoch_complete"]
        if self.epoch_complete:  # saved once its batches are done: the resume starts the next epoch
            state.update(epoch=self.epoch + 1, batch_in_epoch=0, validation_pending=False)
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        names = [f.name for f in fields(self) if f.name != "epoch_complete"]
        _require(state, names, "Progress")
        for name in names:
            setattr(self, name, type(getattr(self, name))(state[name]))
        self.epoch_complete = False


class RunningMeans:
    """Weighted sums of the training steps' loss and metrics, for the logging interval and the epoch.

    Each step adds `value * weight` for every value it reports (weight: the examples in its batch, or the
    value's own count when the step returned one), and `weight` to that value's total, so each mean is
    over the steps that reported the value, as Lightning's are: a value logged on some steps only is not
    diluted by the others. The interval means sent to the loggers and the epoch means in the history are
    the same kind of mean over the same batches.

    A step's weight may be a scalar `mx.array` that the device computes (the frames of a masked batch,
    `TrainModule.batch_size`): it stays on the device, so adding a step never waits for it, and the first
    host read is the mean at the logging interval. Whether an interval has steps is a Python fact
    (`has_interval_steps`), not a test of its weight.

    A step's values are only recorded when it is added; they are folded into the sums when a mean is
    read (or every `FOLD_EVERY` steps), one stack and one weighted sum per metric. Adding them up step
    by step cost five small kernels a step on MLX's CPU backend (about 10 us each). The steps not yet
    folded are saved with the sums, so a resumed run folds the same steps together as an uninterrupted
    one and its means are bitwise the same. The epoch's sums take their steps only every `FOLD_EVERY`
    steps and at the epoch's end, never where a mean is read: a stop between logging steps (max_steps)
    reads the epoch's means and logs its last interval there, which a run that goes on does not.
    """

    FOLD_EVERY = 256  # bounds how many steps' scalars are held before they are folded

    def __init__(self) -> None:
        self._clear()

    def _clear(self) -> None:
        self._interval: dict[str, mx.array] = {}
        self._interval_weights: dict[str, float | mx.array] = {}  # each value's total weight
        self._interval_weight: float | mx.array = 0.0  # every folded step's (the pending ones are not in it)
        self._epoch: dict[str, mx.array] = {}
        self._epoch_weights: dict[str, float | mx.array] = {}
        self._epoch_weight: float | mx.array = 0.0
        # The steps not yet in the epoch's sums; the first `_in_interval` of them are in the interval's.
        self._pending: list[tuple[dict[str, mx.array], float | mx.array, dict[str, mx.array]]] = []
        self._in_interval = 0

    def add(
        self,
        values: dict[str, mx.array],
        weight: float | mx.array,
        own_weights: dict[str, mx.array] | None = None,
    ) -> None:
        """Record a step's `values`, each weighted by `weight` (a number, or a scalar array the device
        computes: it is not read here) or by its entry in `own_weights` (a scalar array: a count the step
        computed, such as the frames an accuracy is over)."""
        self._pending.append(
            (values, weight if isinstance(weight, mx.array) else float(weight), own_weights or {})
        )
        if len(self._pending) >= self.FOLD_EVERY:
            self._fold()

    @property
    def has_interval_steps(self) -> bool:
        """Whether a step was added since the last `pop_interval` (pending steps belong to the open interval
        and epoch; every training step reports at least its loss, so folded ones leave a sum)."""
        return bool(self._interval or len(self._pending) > self._in_interval)

    @property
    def interval_weight(self) -> float:
        """Every step's weight in the open interval, read from the device (a host sync: for checkpoints)."""
        return self._with_pending(self._interval_weight, self._pending[self._in_interval :])

    @property
    def epoch_weight(self) -> float:
        """Every step's weight in the open epoch, read from the device (a host sync: for checkpoints)."""
        return self._with_pending(self._epoch_weight, self._pending)

    @staticmethod
    def _with_pending(folded: float | mx.array, pending: list) -> float:
        total = _number(folded)
        for _, weight, _ in pending:
            total += _number(weight)
        return total

    def _fold_interval(self) -> None:
        """The steps not yet in the interval's sums into them (they stay pending for the epoch's)."""
        steps = self._pending[self._in_interval :]
        if not steps:
            return
        _add_steps(steps, self._interval, self._interval_weights)
        self._interval_weight = _add_weights(
            self._interval_weight, _stacked_weights([w for _, w, _ in steps])
        )
        self._in_interval = len(self._pending)
        self._evaluate_sums()

    def fold(self) -> None:
        """Every pending step into the interval's sums and the epoch's: where an epoch has ended (its
        checkpoints then keep no steps apart). Reading a mean never folds the epoch's."""
        self._fold()

    def _fold(self) -> None:
        self._fold_interval()
        pending, self._pending, self._in_interval = self._pending, [], 0
        if not pending:
            return
        _add_steps(pending, self._epoch, self._epoch_weights)
        self._epoch_weight = _add_weights(self._epoch_weight, _stacked_weights([w for _, w, _ in pending]))
        self._evaluate_sums()

    def _evaluate_sums(self) -> None:
        # Evaluate the new sums (without waiting): otherwise the epoch's sums stay one lazy chain that grows
        # with every fold until the epoch ends, which on an endless stream is never (about 2 KB a step at
        # log_every_n_steps=1), and a long chain costs more than linear time when it is finally evaluated.
        # (Through eval_compiling_again as the steps are: the first to meet a new kernel here names a TMPDIR
        # MLX cannot compile in, or compiles again a kernel a Ctrl-C left broken.)
        eval_compiling_again(
            mx.async_eval,
            list(self._interval.values())
            + list(self._epoch.values())
            + _arrays(self._interval_weights)
            + _arrays(self._epoch_weights)
            + _arrays({"interval": self._interval_weight, "epoch": self._epoch_weight}),
        )

    @property
    def interval(self) -> dict[str, mx.array]:
        """The interval's weighted sums (lazy arrays)."""
        self._fold_interval()
        return self._interval

    @property
    def epoch(self) -> dict[str, mx.array]:
        """The epoch's weighted sums so far (lazy arrays); the pending steps are added to a copy."""
        return self._epoch_so_far()[0]

    def _epoch_so_far(self) -> tuple[dict[str, mx.array], dict[str, float | mx.array]]:
        sums, totals = dict(self._epoch), dict(self._epoch_weights)
        _add_steps(self._pending, sums, totals)
        return sums, totals

    def pop_interval(self, reduce: Any = None) -> dict[str, float]:
        """The interval's means, and a new interval. `reduce(sums, weights)` turns the sums into means
        (across processes under data parallel); default: this process's means."""
        means = (reduce or local_means)(self.interval, self._interval_weights)
        self._interval, self._interval_weights, self._interval_weight = {}, {}, 0.0
        return means

    def epoch_means(self, reduce: Any = None) -> dict[str, float]:
        return (reduce or local_means)(*self._epoch_so_far())

    def reset_epoch(self) -> None:
        self._fold_interval()  # (steps of the epoch before still belong to the open interval)
        self._pending, self._in_interval = [], 0
        self._epoch, self._epoch_weights, self._epoch_weight = {}, {}, 0.0

    def state_dict(self) -> dict[str, Any]:
        def floats(values: dict[str, Any]) -> dict[str, float]:
            return {k: float(v.item()) if isinstance(v, mx.array) else float(v) for k, v in values.items()}

        def step(values: dict[str, mx.array], weight: float | mx.array, own: dict[str, mx.array]) -> list:
            # (Own weights only where a step has them: a checkpoint without any loads in older versions.)
            number = _number(weight)
            return [floats(values), number, floats(own)] if own else [floats(values), number]

        return {
            "interval": floats(self._interval),
            "interval_weights": floats(self._interval_weights),
            "interval_weight": self.interval_weight,
            "epoch": floats(self._epoch),
            "epoch_weights": floats(self._epoch_weights),
            "epoch_weight": self.epoch_weight,
            "pending": [step(*entry) for entry in self._pending],
            # (Only where some are: a checkpoint without it loads in older versions.)
            **({"in_interval": self._in_interval} if self._in_interval else {}),
        }

    def load_state_dict(self, state: dict[str, Any], rank: int = 0, world_size: int = 1) -> None:
        """Restore `state_dict`, or every rank's under data parallel (``{"ranks": [state, ...]}``): each of
        as many ranks takes its own, exactly. With another number of ranks, rank 0 takes all of them
        together (sums added, pending steps in turn) and the others start at zero, so the job's means still
        cover every step once (resuming mid-epoch needs the same ranks anyway: the loader checks it).

        A checkpoint written before each value had its own total weight (no `interval_weights`) did not
        record which steps reported which value: each value it summed gets the weight of all the steps it
        folded, as if every one of them had reported it (its unfolded steps say what they hold)."""
        shares = state.get("ranks", [state])
        mine = [shares[rank]] if len(shares) == world_size else shares if rank == 0 else []

        def arrays(values: dict[str, float]) -> dict[str, mx.array]:
            return {k: mx.array(v, mx.float32) for k, v in values.items()}

        self._clear()
        in_interval, outside_interval = [], []
        for share in mine:
            _require(share, ["interval", "interval_weight", "epoch", "epoch_weight"], "RunningMeans")
            pending = [(*entry, {}) if len(entry) == 2 else entry for entry in share.get("pending", [])]
            folded = int(share.get("in_interval", 0))  # (the first pending steps, in the interval's sums)
            for scope in ("interval", "epoch"):
                sums, totals = getattr(self, f"_{scope}"), getattr(self, f"_{scope}_weights")
                outside = pending[folded:] if scope == "interval" else pending
                # (Every step's weight, the pending ones' too: what an older checkpoint's sums are over.)
                everyone = float(share[f"{scope}_weight"]) - sum(float(weight) for _, weight, _ in outside)
                saved_totals = share.get(f"{scope}_weights", dict.fromkeys(share[scope], everyone))
                for k, v in arrays(share[scope]).items():
                    sums[k] = sums[k] + v if k in sums else v
                    totals[k] = totals.get(k, 0.0) + float(saved_totals.get(k, everyone))
                # (What the saved steps weigh apart from the pending ones, which add theirs when folded.)
                setattr(self, f"_{scope}_weight", _number(getattr(self, f"_{scope}_weight")) + everyone)
            # (A checkpoint written before steps were folded lazily has none pending.)
            steps = [(arrays(values), float(weight), arrays(own)) for values, weight, own in pending]
            in_interval += steps[:folded]
            outside_interval += steps[folded:]
        # (Several ranks' shares taken together: the steps in the interval's sums first, as this keeps them.)
        self._pending, self._in_interval = in_interval + outside_interval, len(in_interval)


def _add_steps(
    steps: list[tuple[dict[str, mx.array], float | mx.array, dict[str, mx.array]]],
    sums: dict[str, mx.array],
    totals: dict[str, float | mx.array],
) -> None:
    """Each value's weighted sum over `steps` (one stack and one sum) added to `sums`, and its weights to
    `totals`."""
    names = dict.fromkeys(name for values, _, _ in steps for name in values)
    for name in names:
        reported = [(values[name], own.get(name, weight)) for values, weight, own in steps if name in values]
        values = mx.stack([value for value, _ in reported]).astype(mx.float32)
        weights = [weight for _, weight in reported]
        if all(isinstance(weight, float) for weight in weights):
            weighted = mx.sum(weighted_values(values, mx.array(weights, mx.float32)))
            added: list[float] | mx.array = weights
        else:
            stacked = mx.stack([_float32(weight) for weight in weights])
            weighted, added = mx.sum(weighted_values(values, stacked)), mx.sum(stacked)
        sums[name] = sums[name] + weighted if name in sums else weighted
        totals[name] = _add_weights(totals.get(name, 0.0), added)


def _stacked_weights(weights: list[float | mx.array]) -> list[float] | mx.array:
    """Steps' weights as `_add_weights` adds them: the numbers themselves, or their sum on the device."""
    if all(isinstance(weight, float) for weight in weights):
        return weights
    return mx.sum(mx.stack([_float32(weight) for weight in weights]))


def _number(value: float | mx.array) -> float:
    return float(value.item()) if isinstance(value, mx.array) else float(value)


def _add_weights(total: float | mx.array, added: list[float] | mx.array) -> float | mx.array:
    """`total` plus the steps' weights `added`: step by step while they are numbers (the same additions,
    in the same order, as adding each step's weight when it came), else on the device."""
    if isinstance(added, mx.array):
        return total + added
    for weight in added:
        total = total + weight
    return total


def _import_torch() -> Any:
    """torch, imported for a checkpoint that holds its state: the saved run had imported it, maybe only
    once it was running (`import torch` in a dataset's `__getitem__`); restored now, its first draws
    continue that run's instead of starting over from torch's default seed. None if it is not installed."""
    try:
        importlib.import_module("torch")
    except ImportError:
        return None
    return imported_torch()


def _encode(data: list[int]) -> str:
    return base64.b64encode(bytes(data)).decode("ascii")


def weighted_values(values: mx.array, weights: mx.array | float) -> mx.array:
    """``values * weights``, where a weight of 0 gives 0 whatever its value: a `(value, count)` metric of a
    batch that counts nothing is 0/0, NaN, and weighs nothing in the mean (NaN x 0 would be NaN). A
    negative weight the step computed (an int is refused before) gives NaN, so the mean says so: left out
    here while the total still counted it, the mean came out finite and wrong."""
    weights_array = mx.array(weights)
    return mx.where(weights_array > 0, values * weights, mx.where(weights_array == 0, 0.0, mx.nan))


def _float32(weight: float | mx.array) -> mx.array:
    return (
        weight.reshape(()).astype(mx.float32)
        if isinstance(weight, mx.array)
        else mx.array(weight, mx.float32)
    )


def _arrays(weights: dict[str, float | mx.array]) -> list[mx.array]:
    return [w for w in weights.values() if isinstance(w, mx.array)]


def local_means(sums: dict[str, mx.array], weight: float | dict[str, float | mx.array]) -> dict[str, float]:
    """Each sum over its weight (one for all, or one per name); NaN where that weight is 0, as
    `collectives.reduce_weighted_means` gives across processes."""
    weights = weight if isinstance(weight, dict) else dict.fromkeys(sums, weight)
    means = {}
    for k, v in sums.items():
        total = weights[k]
        total = float(total.item()) if isinstance(total, mx.array) else float(total)
        means[k] = float(v.item()) / total if total else float("nan")
    return means


class History:
    """One row per epoch (epoch, step, time, learning_rate, train_*, val_* ...), as `export_history` writes.

    An epoch that a stop cut short (max_steps, EarlyStopping inside it) already has a row; resumed and
    completed, its row becomes the whole epoch's.
    """

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def has_epoch(self, epoch: int) -> bool:
        return bool(self.rows) and self.rows[-1]["epoch"] == epoch

    def record(self, row: dict[str, Any]) -> None:
        if self.has_epoch(row["epoch"]):
            self.rows[-1] = row
        else:
            self.rows.append(row)

    def columns(self) -> dict[str, list]:
        """The rows as columns (None where an epoch has no value for a key)."""
        keys: list[str] = []
        for row in self.rows:
            keys.extend(k for k in row if k not in keys)
        return {k: [row.get(k) for row in self.rows] for k in keys}

    def state_dict(self) -> dict[str, Any]:
        return {"rows": list(map(dict, self.rows))}  # (copies: a save's cost per row is kept low)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        _require(state, ["rows"], "History")
        self.rows = [dict(row) for row in state["rows"]]


def seed_validation_generators(training: dict[str, Any], global_step: int) -> None:
    """Seed MLX's, numpy's, Python's (and torch's CPU) generators for a validation inside `fit` from the
    training's state `training` (`RandomState.capture()`) and the optimizer steps taken: its draws differ
    from one validation to the next (the step, where the training draws nothing from MLX) and from the
    training's, and restoring `training` afterwards leaves the training's stream untouched."""
    hi, lo = training["mlx"]
    entropy = [int(hi), int(lo), int(global_step), 0x56414C]
    seed = int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0]) >> 1
    mx.random.seed(seed)
    np.random.seed([seed & 0xFFFFFFFF, seed >> 32])
    random.seed(seed)
    # torch's too where the program uses it: left alone, each validation started from the training's torch
    # state and, where training draws nothing from torch, drew the same numbers every time. Its CPU
    # generator only, the one `RandomState.restore` puts back (torch.manual_seed would reseed CUDA/MPS too).
    if (torch := imported_torch()) is not None:
        torch.random.default_generator.manual_seed(seed)


class RandomState:
    """The random generators a run draws from: MLX's global key, numpy's global generator (datasets and
    augmentations that call `np.random`), Python's `random`, and torch's CPU generator when the program
    has imported torch (a torch `RandomSampler`, `torch.rand` augmentation).

    `capture()` / `restore()` are exact: restoring puts every generator back where it was, so a resumed
    run draws the same numbers an uninterrupted one would have (re-seeding would not). torch's state is
    saved when the program has imported torch, and restored from a state that holds it (a state without
    it leaves torch as the Trainer seeded it).
    """

    @staticmethod
    def capture() -> dict[str, Any]:
        hi, lo = (int(v) for v in mx.random.state[0].tolist())
        kind, keys, pos, has_gauss, cached = np.random.get_state()
        version, internal, gauss_next = random.getstate()
        torch = imported_torch()
        # (torch's state is a byte tensor of about 5 KB: base64 keeps it one short JSON string.)
        torch_state = {"torch": _encode(torch.get_rng_state().tolist())} if torch is not None else {}
        return {
            "mlx": [hi, lo],
            "numpy": {
                "kind": kind,
                "keys": keys.tolist(),
                "pos": int(pos),
                "has_gauss": int(has_gauss),
                "cached_gaussian": float(cached),
            },
            "python": {"version": version, "internal": list(internal), "gauss_next": gauss_next},
            **torch_state,
        }

    @staticmethod
    def restore(state: dict[str, Any]) -> None:
        _require(state, ["mlx", "numpy", "python"], "RandomState")
        hi, lo = state["mlx"]
        mx.random.seed((int(hi) << 32) | int(lo))  # the key cannot be assigned; this seed sets it exactly
        n = state["numpy"]
        np.random.set_state(
            (n["kind"], np.array(n["keys"], np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"])
        )
        p = state["python"]
        random.setstate((p["version"], tuple(p["internal"]), p["gauss_next"]))
        if "torch" in state and (torch := imported_torch() or _import_torch()) is not None:
            try:
                torch.set_rng_state(torch.tensor(list(base64.b64decode(state["torch"])), dtype=torch.uint8))
            except (TypeError, ValueError, RuntimeError) as err:  # (a hand-edited or truncated state)
                raise StateError(f"RandomState: 'torch' is not a state torch can restore ({err})") from None

    def state_dict(self) -> dict[str, Any]:
        return self.capture()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.restore(state)


class TrainableSets:
    """Which parameters the run trains, by dotted name: a freeze / unfreeze schedule is part of the run.

    - `at_start`: what the module trained when the run's first fit began (as it was built);
    - `now`: what the compiled step trains;
    - `optimized`: what the optimizer holds state for. It only grows: a parameter frozen again keeps its
      state, as torch keeps an optimizer's state by parameter, so a later unfreeze or a resume finds it.
    """

    def __init__(self) -> None:
        self.at_start: frozenset[str] = frozenset()
        self.now: frozenset[str] = frozenset()
        self.optimized: frozenset[str] = frozenset()

    def start(self, names: frozenset[str]) -> None:
        """A fit begins: the module's trainable parameters, which the optimizer was initialised for."""
        self.at_start = self.now = self.optimized = frozenset(names)

    def change(self, names: frozenset[str]) -> None:
        """A freeze or unfreeze: the optimizer gained state for any parameter new to it."""
        self.now = frozenset(names)
        self.optimized |= self.now

    def resume(self, saved: TrainableSets) -> frozenset[str]:
        """Go on from `saved` (the module and the optimizer were set up for it; `now` changes with the
        step that is rebuilt for it). Returns the parameters the optimizer holds state for that `saved`
        has none for: they keep their fresh state."""
        fresh = self.optimized - saved.optimized
        self.at_start, self.optimized = saved.at_start, self.optimized | saved.optimized
        return fresh

    def state_dict(self) -> dict[str, list[str]] | None:
        if not self.now:  # no fit has built a step: nothing to restore
            return None
        return {
            "at_start": sorted(self.at_start),
            "now": sorted(self.now),
            "optimizer": sorted(self.optimized),
        }

    @staticmethod
    def from_state_dict(state: dict[str, Any]) -> TrainableSets:
        """The sets `state_dict` saved (the Trainer that resumes them sets its module and optimizer up
        for them, and its own sets with them)."""
        _require(state, ["at_start", "now", "optimizer"], "TrainableSets")
        sets = TrainableSets()
        for name, key in (("at_start", "at_start"), ("now", "now"), ("optimized", "optimizer")):
            if not isinstance(state[key], list) or not all(isinstance(v, str) for v in state[key]):
                raise StateError(
                    f"TrainableSets: {key!r} must be a list of parameter names, got {state[key]!r}"
                )
            setattr(sets, name, frozenset(state[key]))
        sets.optimized |= sets.now
        return sets


__all__ = [
    "History",
    "Progress",
    "RandomState",
    "RunningMeans",
    "StateError",
    "TrainableSets",
    "local_means",
]
