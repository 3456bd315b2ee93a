"""The keywords of Lightning's `self.log` that audiotrain has no use for: which are harmless, and what to
say for the others (a raw "unexpected keyword argument" names neither the metric nor what to do)."""

from __future__ import annotations

import difflib
from typing import Any

#: Every keyword `TrainModule.log` takes after the value (for "did you mean").
LOG_KEYWORDS = (
    "prog_bar",
    "logger",
    "on_step",
    "on_epoch",
    "reduce_fx",
    "enable_graph",
    "sync_dist",
    "sync_dist_group",
    "add_dataloader_idx",
    "batch_size",
    "metric_attribute",
    "rank_zero_only",
)


def refuse_log_keywords(
    name: str, unknown: dict[str, Any], sync_dist_group: Any, metric_attribute: Any
) -> None:
    """Refuse, naming the metric and the keyword, what `self.log(name, ...)` cannot honour."""
    for keyword in unknown:
        close = difflib.get_close_matches(keyword, LOG_KEYWORDS, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"it takes {', '.join(LOG_KEYWORDS)}"
        raise TypeError(f"self.log({name!r}, ..., {keyword}=...): no such keyword; {hint}")
    if sync_dist_group is not None:
        raise ValueError(
            f"self.log({name!r}, ..., sync_dist_group={sync_dist_group!r}): audiotrain reduces a logged "
            "value over all processes of the job, not a group; leave sync_dist_group out"
        )
    if metric_attribute is not None:
        raise ValueError(
            f"self.log({name!r}, ..., metric_attribute={metric_attribute!r}): it names a torchmetrics "
            "object, which audiotrain does not log; log the value it computes (a number or a scalar mx.array)"
        )


def instead_of_reduction(reduce_fx: Any) -> str:
    """What to do instead of `reduce_fx`, which is not a mean."""
    kind = getattr(reduce_fx, "__name__", reduce_fx)
    if kind in ("max", "min", "amax", "amin"):
        return (
            f"for the {kind} over an epoch, keep it yourself in a batch-end hook and self.log it from the "
            "epoch-end hook (under data parallel a value logged there is averaged over the processes: log "
            f"{kind.removeprefix('a')}(all_gather_object(value)), from audiotrain.distributed)"
        )
    if kind == "sum":
        return "log a sum as a mean times a count, or return it as a metric"
    return "compute the reduction yourself in a hook and log its result"
