"""Write the learning rates PyTorch's schedulers give, so the schedule tests need no torch.

    pip install -e ".[parity]" && python scripts/make_scheduler_fixture.py

writes tests/fixtures/schedulers/torch_lrs.json: for each case, the learning rate PyTorch uses at each of the
first optimizer steps. tests/test_schedulers.py compares audiotrain's schedules with those numbers, and its
parity test (run with the parity extra) recomputes them here, so a PyTorch that changed would show.
"""

from __future__ import annotations

import json
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "schedulers" / "torch_lrs.json"


def _cases():
    """name -> (the learning rate, the number of steps, a function that builds the scheduler)."""
    from torch.optim import lr_scheduler as T

    def warmup_then(decay, warmup):
        return lambda o: T.SequentialLR(
            o, [T.LinearLR(o, 1 / warmup, 1.0, total_iters=warmup - 1), decay(o)], milestones=[warmup]
        )

    def one_cycle(strategy):
        return lambda o: T.OneCycleLR(
            o,
            max_lr=0.1,
            total_steps=100,
            pct_start=0.25,
            div_factor=10.0,
            final_div_factor=100.0,
            anneal_strategy=strategy,
            cycle_momentum=False,
        )

    return {
        # peak 1e-3, warmup 10, total 50, min 1e-5
        "warmup_cosine": (1e-3, 51, warmup_then(lambda o: T.CosineAnnealingLR(o, 40, 1e-5), 10)),
        # peak 5e-5, warmup 6, total 40, min 1e-6
        "warmup_linear": (5e-5, 45, warmup_then(lambda o: T.LinearLR(o, 1.0, 1e-6 / 5e-5, 34), 6)),
        "step": (0.1, 40, lambda o: T.StepLR(o, 7, 0.5)),
        "exponential": (0.1, 60, lambda o: T.ExponentialLR(o, 0.97)),
        "one_cycle_cos": (0.1, 100, one_cycle("cos")),
        "one_cycle_linear": (0.1, 100, one_cycle("linear")),
    }


def torch_learning_rates() -> dict[str, list[float]]:
    """The learning rate PyTorch's SGD uses at each step, per case (the rate before `scheduler.step()`)."""
    import torch

    out = {}
    for name, (lr, steps, make_scheduler) in _cases().items():
        p = torch.nn.Parameter(torch.zeros(1))
        opt = torch.optim.SGD([p], lr=lr)
        scheduler = make_scheduler(opt)
        rates = []
        for _ in range(steps):
            rates.append(opt.param_groups[0]["lr"])
            opt.step()
            scheduler.step()
        out[name] = rates
    return out


def main() -> None:
    import torch

    FIXTURE.parent.mkdir(parents=True, exist_ok=True)
    record = {"torch_version": torch.__version__, "learning_rates": torch_learning_rates()}
    FIXTURE.write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {FIXTURE} (torch {torch.__version__})")


if __name__ == "__main__":
    main()
