"""Lightning's loop progress counters, which callbacks written for Lightning read
(`trainer.fit_loop.epoch_progress`, `.epoch_loop.batch_progress`, `.batch_idx`, `.total_batch_idx`,
`.automatic_optimization.optim_progress.optimizer_steps`): the values in each hook are Lightning 2.6.6's,
measured on a fit of 2 epochs x 3 batches with a validation at each epoch's end.

Deliberate difference: an epoch that max_steps ends in its middle stays open here (a resumed fit finishes
it), where Lightning counts it completed; the counters up to the stop are Lightning's."""

from audiotrain import Trainer
from audiotrain.train.callbacks import Callback, ModelCheckpoint

import pytest
from tasks import TinyClassifier, make_batches

HOOKS = (
    "on_train_epoch_start",
    "on_train_batch_start",
    "on_train_batch_end",
    "on_validation_start",
    "on_train_epoch_end",
    "on_train_end",
)


def _counts(c):
    return (c.ready, c.started, c.processed, c.completed)


class Counters(Callback):
    """(hook, epoch_progress.current, batch_progress.current, batch_progress.total, optimizer_steps)."""

    def __init__(self):
        self.seen = []
        for hook in HOOKS:
            setattr(self, hook, self._recorder(hook))

    def _recorder(self, hook):
        def record(trainer, module, *args):
            loop = trainer.fit_loop
            batches = loop.epoch_loop.batch_progress
            epochs = loop.epoch_progress
            assert _counts(epochs.total) == _counts(epochs.current)
            steps = loop.epoch_loop.automatic_optimization.optim_progress.optimizer_steps
            self.seen.append(
                (hook, _counts(epochs.current), _counts(batches.current), _counts(batches.total), steps)
            )
            # (Lightning's own definitions)
            assert loop.epoch_loop.batch_idx == batches.current.ready - 1
            assert loop.epoch_loop.total_batch_idx == batches.total.ready - 1

        return record


# Lightning 2.6.6 (ready, started, processed, completed) at each hook; the last number is optimizer_steps.
LIGHTNING = [
    ("on_train_epoch_start", (1, 0, 0, 0), (0, 0, 0, 0), (0, 0, 0, 0), 0),
    ("on_train_batch_start", (1, 1, 0, 0), (1, 0, 0, 0), (1, 0, 0, 0), 0),
    ("on_train_batch_end", (1, 1, 0, 0), (1, 1, 1, 0), (1, 1, 1, 0), 1),
    ("on_train_batch_start", (1, 1, 0, 0), (2, 1, 1, 1), (2, 1, 1, 1), 1),
    ("on_train_batch_end", (1, 1, 0, 0), (2, 2, 2, 1), (2, 2, 2, 1), 2),
    ("on_train_batch_start", (1, 1, 0, 0), (3, 2, 2, 2), (3, 2, 2, 2), 2),
    ("on_train_batch_end", (1, 1, 0, 0), (3, 3, 3, 2), (3, 3, 3, 2), 3),
    ("on_validation_start", (1, 1, 0, 0), (3, 3, 3, 3), (3, 3, 3, 3), 3),
    ("on_train_epoch_end", (1, 1, 1, 0), (3, 3, 3, 3), (3, 3, 3, 3), 3),
    ("on_train_epoch_start", (2, 1, 1, 1), (3, 3, 3, 3), (3, 3, 3, 3), 3),
    ("on_train_batch_start", (2, 2, 1, 1), (1, 0, 0, 0), (4, 3, 3, 3), 3),
    ("on_train_batch_end", (2, 2, 1, 1), (1, 1, 1, 0), (4, 4, 4, 3), 4),
    ("on_train_batch_start", (2, 2, 1, 1), (2, 1, 1, 1), (5, 4, 4, 4), 4),
    ("on_train_batch_end", (2, 2, 1, 1), (2, 2, 2, 1), (5, 5, 5, 4), 5),
    ("on_train_batch_start", (2, 2, 1, 1), (3, 2, 2, 2), (6, 5, 5, 5), 5),
    ("on_train_batch_end", (2, 2, 1, 1), (3, 3, 3, 2), (6, 6, 6, 5), 6),
    ("on_validation_start", (2, 2, 1, 1), (3, 3, 3, 3), (6, 6, 6, 6), 6),
    ("on_train_epoch_end", (2, 2, 2, 1), (3, 3, 3, 3), (6, 6, 6, 6), 6),
    ("on_train_end", (2, 2, 2, 2), (3, 3, 3, 3), (6, 6, 6, 6), 6),
]
# With accumulate_grad_batches=2 the same but for optimizer_steps (an epoch's last batch steps alone).
LIGHTNING_ACCUMULATING = [
    (*row[:4], steps)
    for row, steps in zip(LIGHTNING, [0, 0, 0, 0, 1, 1, 2, 2, 2] + [2, 2, 2, 2, 3, 3, 4, 4, 4, 4])
]


def fit(tmp_path, ckpt_path=None, ckpt_dir=None, **kw):
    counters = Counters()
    kw.setdefault("max_epochs", 2)
    t = Trainer(
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
        callbacks=[
            counters,
            ModelCheckpoint(dirpath=ckpt_dir or tmp_path / "ckpt", save_last=True),
            *kw.pop("callbacks", []),
        ],
        **kw,
    )
    t.fit(TinyClassifier(), make_batches(48), make_batches(32, seed=1), ckpt_path=ckpt_path)
    return t, counters.seen


@pytest.mark.parametrize("accumulate", [1, 2])
def test_the_loop_counters_read_in_each_hook_are_lightnings(tmp_path, accumulate):
    t, seen = fit(tmp_path, accumulate_grad_batches=accumulate)
    assert seen == (LIGHTNING if accumulate == 1 else LIGHTNING_ACCUMULATING)
    # After the fit: the last hook's values.
    assert _counts(t.fit_loop.epoch_loop.batch_progress.total) == (6, 6, 6, 6)
    assert t.fit_loop.epoch_loop.batch_idx == 2 and t.fit_loop.epoch_loop.total_batch_idx == 5


@pytest.mark.parametrize("accumulate", [1, 2])
def test_batches_that_stepped_counts_a_batch_after_its_validation_as_lightnings(tmp_path, accumulate):
    """`fit_loop.epoch_loop._batches_that_stepped` (the x axis of Lightning's loggers): it counts a batch that
    stepped only after its on_train_batch_end and the validation after it (Lightning 2.6.6, measured)."""
    seen = []

    class Reads(Callback):
        pass

    for hook in HOOKS:
        setattr(Reads, hook, lambda self, t, *a: seen.append(t.fit_loop.epoch_loop._batches_that_stepped))
    fit(tmp_path, accumulate_grad_batches=accumulate, callbacks=[Reads()])
    lightning = {
        1: [0, 0, 0, 1, 1, 2, 2, 2, 3, 3, 3, 3, 4, 4, 5, 5, 5, 6, 6],
        2: [0, 0, 0, 0, 0, 1, 1, 1, 2, 2, 2, 2, 2, 2, 3, 3, 3, 4, 4],
    }
    assert seen == lightning[accumulate]


@pytest.mark.parametrize("accumulate", [1, 2])
def test_optimizer_step_progress_counts_the_epochs_steps_and_the_fits_as_lightnings(tmp_path, accumulate):
    """`automatic_optimization.optim_progress.optimizer.step`: `current` the epoch's optimizer steps (the last
    epoch's until the next one's first batch), `total` the fit's (Lightning 2.6.6, measured)."""
    seen = []

    class Reads(Callback):
        pass

    def read(self, t, *args):
        step = t.fit_loop.epoch_loop.automatic_optimization.optim_progress.optimizer.step
        seen.append((step.current.completed, step.total.completed))
        assert (step.current.ready, step.total.ready) == seen[-1]

    for hook in HOOKS:
        setattr(Reads, hook, read)
    fit(tmp_path, accumulate_grad_batches=accumulate, callbacks=[Reads()])
    lightning = {
        1: [0, 0, 1, 1, 2, 2, 3, 3, 3, 3, 0, 1, 1, 2, 2, 3, 3, 3, 3],
        2: [0, 0, 0, 0, 1, 1, 2, 2, 2, 2, 0, 0, 0, 1, 1, 2, 2, 2, 2],
    }
    assert [current for current, _ in seen] == lightning[accumulate]
    expected = LIGHTNING if accumulate == 1 else LIGHTNING_ACCUMULATING
    assert [total for _, total in seen] == [row[4] for row in expected]


def test_a_fit_resumed_in_the_middle_of_an_epoch_reads_the_uninterrupted_ones_counters(tmp_path):
    _, seen = fit(tmp_path / "a", ckpt_dir=tmp_path / "ckpt", max_steps=4)
    assert seen[:12] == LIGHTNING[:12]  # (up to the stop: then the epoch stays open, the docstring says)
    starts = []

    class ReadsAtTrainStart(Callback):
        def on_train_start(self, trainer, module):
            starts.append(_counts(trainer.fit_loop.epoch_progress.current))

    _, resumed = fit(
        tmp_path / "b",
        ckpt_path=str(tmp_path / "ckpt" / "last"),
        ckpt_dir=tmp_path / "ckpt",
        callbacks=[ReadsAtTrainStart()],
    )
    assert starts == [(2, 2, 1, 1)]  # (Lightning's, resumed in the middle of its second epoch)
    assert resumed[0][0] == "on_train_epoch_start"  # (Lightning's resume calls it not: left, in the report)
    assert resumed[1:] == LIGHTNING[12:]


def test_the_counters_are_read_only_and_others_say_what_to_read(tmp_path):
    t, _ = fit(tmp_path, max_epochs=1)
    with pytest.raises(AttributeError, match="read-only"):
        t.fit_loop.epoch_loop.batch_idx = 0
    with pytest.raises(AttributeError, match="trainer.batch_in_epoch"):
        t.fit_loop.epoch_loop.optim_progress  # noqa: B018
    with pytest.raises(AttributeError, match="function of its step"):
        t.fit_loop.epoch_loop.scheduler_progress  # noqa: B018


class ValidationCounters(Callback):
    """(hook, sanity checking, val loop's batch_progress current, total) in the validation and epoch hooks."""

    def __init__(self, loop):
        self.loop, self.seen = loop, []
        hooks = ["on_validation_start", "on_validation_batch_start", "on_validation_batch_end"]
        for hook in [*hooks, "on_validation_end", "on_train_epoch_start", "on_train_epoch_end"]:
            setattr(self, hook, self._recorder(hook))

    def _recorder(self, hook):
        def record(trainer, *args):
            progress = self.loop(trainer).batch_progress
            self.seen.append((hook, _counts(progress.current), _counts(progress.total)))

        return record


def _validation(counts, start=(0, 0, 0, 0)):
    """Lightning 2.6.6's validation-loop counts over `counts` batches: (hook, current) pairs."""
    rows = [("on_validation_start", start)]
    for i in range(counts):
        rows += [
            ("on_validation_batch_start", (i + 1, i, i, i)),
            ("on_validation_batch_end", (i + 1,) * 3 + (i,)),
        ]
    return [*rows, ("on_validation_end", (counts,) * 4)]


def test_fits_validation_loop_counts_each_validations_batches_as_lightnings(tmp_path):
    """`trainer.fit_loop.epoch_loop.val_loop.batch_progress`: the sanity check's batch, then each validation's
    two, its `total` starting over with each validation (Lightning's, measured)."""
    counters = ValidationCounters(lambda t: t.fit_loop.epoch_loop.val_loop)
    t = Trainer(
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        max_epochs=2,
        num_sanity_val_steps=1,
        callbacks=[counters],
    )
    t.fit(TinyClassifier(), make_batches(48), make_batches(32, seed=1))
    two = (2, 2, 2, 2)
    expected = [
        *_validation(1),
        ("on_train_epoch_start", (0, 0, 0, 0)),
        *_validation(2),
        ("on_train_epoch_end", two),
        ("on_train_epoch_start", two),
        *_validation(2),
        ("on_train_epoch_end", two),
    ]
    assert [(hook, current) for hook, current, _ in counters.seen] == expected
    assert all(current == total for _, current, total in counters.seen)
    assert _counts(t.validate_loop.batch_progress.total) == (
        0,
        0,
        0,
        0,
    )  # (trainer.validate's, as Lightning's)


def test_validate_loop_counts_a_calls_batches_and_every_calls_as_lightnings(tmp_path):
    counters = ValidationCounters(lambda t: t.validate_loop)
    t = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, callbacks=[counters])
    module = TinyClassifier()
    t.validate(module, make_batches(48, seed=1))
    t.validate(module, make_batches(48, seed=1))
    first, second = counters.seen[:8], counters.seen[8:]
    assert [(hook, current) for hook, current, _ in first] == _validation(3)
    assert all(current == total for _, current, total in first)
    assert [(hook, current) for hook, current, _ in second] == _validation(3)
    # `total` goes on from the first call's 3 (Lightning: 3333, 4333, 4443, 5444, ... 6666).
    assert [total for _, _, total in second] == [
        (3, 3, 3, 3),
        (4, 3, 3, 3),
        (4, 4, 4, 3),
        (5, 4, 4, 4),
        (5, 5, 5, 4),
        (6, 5, 5, 5),
        (6, 6, 6, 5),
        (6, 6, 6, 6),
    ]
    assert _counts(t.test_loop.batch_progress.total) == (0, 0, 0, 0)


def test_a_manual_fits_step_counters_are_lightnings(tmp_path):
    """Manual optimization: `manual_optimization.optim_step_progress` counts the opt.step() calls (its
    `current` is never reset, as Lightning's), the automatic `optimizer_steps` stays 0, and
    `_batches_that_stepped` counts every batch once its end hooks ran (Lightning 2.6.6, measured:
    (hook, optim_step_progress.current.completed, .total.completed, optimizer_steps, _batches_that_stepped)."""
    from audiotrain import TrainModule

    import mlx.core as mx
    import mlx.nn as nn
    import mlx.optimizers as optim

    class Manual(TrainModule):
        def __init__(self):
            super().__init__()
            self.automatic_optimization = False
            self.layer = nn.Linear(8, 1)

        def configure_optimizers(self):
            return optim.SGD(learning_rate=0.1)

        def training_step(self, batch, batch_idx):
            opt = self.optimizers()
            self.manual_backward(lambda: mx.mean(self.layer(batch[0]) ** 2))
            opt.step()
            opt.zero_grad()

    seen = []

    class Reads(Callback):
        pass

    def read(self, t, *args):
        loop = t.fit_loop.epoch_loop
        steps = loop.manual_optimization.optim_step_progress
        automatic = loop.automatic_optimization.optim_progress.optimizer_steps
        seen.append((steps.current.completed, steps.total.completed, automatic, loop._batches_that_stepped))

    for hook in HOOKS:
        if hook != "on_validation_start":
            setattr(Reads, hook, read)
    t = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, max_epochs=2, callbacks=[Reads()])
    t.fit(Manual(), make_batches(48), None)
    lightning = [
        (0, 0, 0, 0),  # on_train_epoch_start
        (0, 0, 0, 0),
        (1, 1, 0, 0),
        (1, 1, 0, 1),
        (2, 2, 0, 1),
        (2, 2, 0, 2),
        (3, 3, 0, 2),
        (3, 3, 0, 3),  # on_train_epoch_end
        (3, 3, 0, 3),  # on_train_epoch_start
        (3, 3, 0, 3),
        (4, 4, 0, 3),
        (4, 4, 0, 4),
        (5, 5, 0, 4),
        (5, 5, 0, 5),
        (6, 6, 0, 5),
        (6, 6, 0, 6),  # on_train_epoch_end
        (6, 6, 0, 6),  # on_train_end
    ]
    assert seen == lightning


class SeveralLoadersCounters(Callback):
    """(hook, batch_idx, dataloader_idx, batch_progress current, total) of the running stage's loop."""

    def __init__(self):
        self.seen = []

    def _loop(self, trainer):
        if trainer.testing:
            return trainer.test_loop
        return trainer.fit_loop.epoch_loop.val_loop if trainer.fitting else trainer.validate_loop

    def _record(self, trainer, hook, *where):
        progress = self._loop(trainer).batch_progress
        self.seen.append((hook, *where, _counts(progress.current), _counts(progress.total)))

    def on_validation_batch_start(self, trainer, module, batch, batch_idx, dataloader_idx=0):
        self._record(trainer, "batch_start", batch_idx, dataloader_idx)

    def on_validation_batch_end(self, trainer, module, outputs, batch, batch_idx, dataloader_idx=0):
        self._record(trainer, "batch_end", batch_idx, dataloader_idx)

    def on_validation_end(self, trainer, module):
        self._record(trainer, "end")

    on_test_batch_start, on_test_batch_end, on_test_end = (
        on_validation_batch_start,
        on_validation_batch_end,
        on_validation_end,
    )


def _several(batches, total_before=0):
    """Lightning 2.6.6's counts over loaders of `batches` batches each (measured): one count over all of
    them, on from loader to loader, as (hook, batch_idx, dataloader_idx, current, total)."""
    rows, k = [], 0
    for index, n in enumerate(batches):
        for i in range(n):
            t = total_before + k
            rows += [
                ("batch_start", i, index, (k + 1, k, k, k), (t + 1, t, t, t)),
                ("batch_end", i, index, (k + 1, k + 1, k + 1, k), (t + 1, t + 1, t + 1, t)),
            ]
            k += 1
    return [*rows, ("end", (k,) * 4, (total_before + k,) * 4)]


def _loader(batches, seed):
    from audiotrain import DataLoader

    from tasks import make_data

    return DataLoader(list(zip(*make_data(batches * 4, seed=seed), strict=True)), batch_size=4)


def test_the_evaluation_counters_over_several_loaders_are_lightnings(tmp_path):
    """Validation loaders of 3, 2 and 4 batches with limit_val_batches=3 and a sanity check of 2: each
    validation counts its loaders' batches on from one loader to the next (8, the sanity check's 6), and
    fit's loop starts over at each; validate() and test() over [3, 2] twice: 5 each, `total` 10
    (Lightning 2.6.6, measured the same way)."""
    counters = SeveralLoadersCounters()
    t = Trainer(
        default_root_dir=tmp_path,
        enable_progress_bar=False,
        enable_checkpointing=False,
        logger=False,
        max_epochs=2,
        num_sanity_val_steps=2,
        limit_val_batches=3,
        callbacks=[counters],
    )
    loaders = [_loader(3, 1), _loader(2, 2), _loader(4, 3)]
    t.fit(TinyClassifier(), make_batches(48), loaders)
    assert counters.seen == _several([2, 2, 2]) + _several([3, 2, 3]) * 2
    progress = t.fit_loop.epoch_loop.val_loop.batch_progress
    assert (_counts(progress.current), _counts(progress.total)) == ((8,) * 4, (8,) * 4)
    assert _counts(t.validate_loop.batch_progress.total) == (0, 0, 0, 0)

    for stage in ("validate", "test"):
        counters.seen.clear()
        t = Trainer(default_root_dir=tmp_path, enable_progress_bar=False, logger=False, callbacks=[counters])
        module = TinyClassifier()
        for _ in range(2):
            getattr(t, stage)(module, [_loader(3, 1), _loader(2, 2)], verbose=False)
        assert counters.seen == _several([3, 2]) + _several([3, 2], total_before=5)
