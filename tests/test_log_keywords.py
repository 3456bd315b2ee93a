"""Lightning's `self.log` keywords from the user's side: those that change nothing here are accepted
(ported code runs as it is), the others are refused naming the metric and the keyword, never with a raw
"unexpected keyword argument"."""

import audiotrain  # noqa: F401  (before mlx)

import mlx.core as mx
import pytest
from tasks import TinyClassifier, make_batches, quiet_trainer


class LogsWithLightningKeywords(TinyClassifier):
    def validation_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log(
            "val_loss",
            loss,
            logger=None,  # Lightning's default: logged
            enable_graph=False,
            add_dataloader_idx=False,
            sync_dist_group=None,
            metric_attribute=None,
            rank_zero_only=False,
            batch_size=len(batch[1]),
            reduce_fx=mx.mean,  # (torch.mean's counterpart: the mean)
        )


def test_keywords_that_change_nothing_are_accepted(tmp_path):
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(LogsWithLightningKeywords(), make_batches(32), make_batches(16, seed=1))
    assert "val_loss" in t.logged_metrics


@pytest.mark.parametrize(
    "keywords, refusal",
    [
        (
            {"sync_dist_grup": None},
            r"self.log\('x', ..., sync_dist_grup=...\): no such keyword; did you mean ",
        ),
        (
            {"sync_dist_group": "group"},
            r"sync_dist_group='group'\): audiotrain reduces .* over all processes",
        ),
        ({"metric_attribute": "acc"}, r"metric_attribute='acc'\): it names a torchmetrics object"),
        (
            {"reduce_fx": "max"},
            r"reduce_fx='max'\): only 'mean' .*for the max over an epoch, keep it yourself",
        ),
        ({"reduce_fx": "sum"}, r"reduce_fx='sum'\): only 'mean' .*log a sum as a mean times a count"),
        ({"batch_size": True}, r"batch_size=True\): expected a non-negative int"),
        ({"batch_size": -1}, r"batch_size=-1\): expected a non-negative int"),
        ({"batch_size": 2.5}, r"batch_size=2.5\): expected a non-negative int"),
    ],
)
def test_keywords_that_cannot_be_honoured_are_refused_by_name(keywords, refusal):
    with pytest.raises((TypeError, ValueError), match=refusal):
        TinyClassifier().log("x", 1.0, **keywords)


@pytest.mark.parametrize("kind", ["max", "min"])
def test_the_advice_for_a_max_names_the_reduction_over_processes(kind):
    # The advice alone (log it from the epoch-end hook) gave the mean of the ranks' maxima under data
    # parallel (5.5 for a max of 6 over samples 0..6 on 2 ranks): a value logged in a hook is averaged.
    with pytest.raises(ValueError, match=rf"under data parallel .*{kind}\(all_gather_object\(value\)\)"):
        TinyClassifier().log("x", 1.0, reduce_fx=kind)


@pytest.mark.parametrize("name", ["", 3])
def test_a_metric_without_a_name_is_refused(name):
    with pytest.raises(ValueError, match=r"log\(\) needs a non-empty metric name"):
        TinyClassifier().log(name, 1.0)


class LogsAsOneLoadersValue(TinyClassifier):
    def __init__(self, add_dataloader_idx):
        super().__init__()
        self.add_dataloader_idx = add_dataloader_idx

    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        self.log("m/dataloader_idx_0", 1.0, add_dataloader_idx=self.add_dataloader_idx)
        return loss


def test_a_name_holding_a_dataloader_idx_is_refused_as_in_lightning(tmp_path):
    """It was logged without a word. Lightning 2.6.6 raises "You called `self.log` with the key
    `m/dataloader_idx_0` but it should not contain information about `dataloader_idx` when
    `add_dataloader_idx=True`"; with add_dataloader_idx=False it logs the name as it is (both here)."""
    with pytest.raises(ValueError, match=r"self.log\('m/dataloader_idx_0', ...\): the name should not hold"):
        quiet_trainer(tmp_path, max_epochs=1).fit(LogsAsOneLoadersValue(True), make_batches(32))
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(LogsAsOneLoadersValue(False), make_batches(32))
    assert t.callback_metrics["m/dataloader_idx_0"] == 1.0


class LogsWithReduction(TinyClassifier):
    def __init__(self, reduce_fx):
        super().__init__()
        self.reduce_fx = reduce_fx

    def validation_step(self, batch, batch_idx):
        self.log("val_two", 2.0 * len(batch[1]) / 16, reduce_fx=self.reduce_fx)


@pytest.mark.parametrize("reduce_fx", ["avg", "AVG", "Mean"])
def test_lightnings_other_names_of_the_mean_are_the_mean(tmp_path, reduce_fx):
    """They were refused as "not a mean". Lightning 2.6.6 lowers a reduce_fx name and reads "avg" as "mean"
    (measured: "avg", "AVG" and "Mean" give the weighted mean, 1.6667 here, as "mean" does)."""
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(LogsWithReduction(reduce_fx), make_batches(32), make_batches(24, seed=1))
    assert t.callback_metrics["val_two"] == pytest.approx((2.0 * 16 + 1.0 * 8) / 24)


def test_a_reduction_named_in_capitals_gets_that_reductions_advice():
    with pytest.raises(
        ValueError, match=r"reduce_fx='SUM'\): only 'mean' .*log a sum as a mean times a count"
    ):
        TinyClassifier().log("x", 1.0, reduce_fx="SUM")


class LogsPositionally(TinyClassifier):
    def training_step(self, batch, batch_idx):
        loss, _ = self.compute_loss(batch)
        # Lightning's order: prog_bar, logger, on_step, on_epoch, reduce_fx, enable_graph, sync_dist,
        # sync_dist_group, add_dataloader_idx (False: the name is kept as it is).
        self.log("m/dataloader_idx_0", 1.0, False, None, None, True, "mean", False, False, None, False)
        self.log_dict(dictionary={"shown": 2.0}, prog_bar=True)
        self.log_dict({"shown_too": 3.0}, True)
        return loss


def test_log_and_log_dict_take_lightnings_arguments_in_its_order(tmp_path):
    """`self.log` took Lightning's arguments in another order after reduce_fx (the 11th was enable_graph,
    not add_dataloader_idx), and `log_dict` neither `dictionary=` (Lightning 2.6.6's name) nor a positional
    prog_bar: a TypeError each."""
    t = quiet_trainer(tmp_path, max_epochs=1)
    t.fit(LogsPositionally(), make_batches(32))
    assert t.callback_metrics["m/dataloader_idx_0"] == 1.0
    assert {"shown", "shown_too"} <= set(t.progress_bar_metrics)


@pytest.mark.parametrize("given", [[("a", 1.0)], 1.0])
def test_log_dict_given_no_dict_says_what_it_takes(given):
    """It failed with a raw AttributeError ("'list' object has no attribute 'items'"), as Lightning's."""
    with pytest.raises(TypeError, match=r"log_dict\(...\): expected a dict of metric name → value, got"):
        TinyClassifier().log_dict(given)
