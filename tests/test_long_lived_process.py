"""The Trainer in one long-lived process (a notebook, a REPL, a sweep driver): what one cell leaves behind
for the next, from the user's side."""

import signal

import mlx.core as mx
import numpy as np
import pytest
from mlx.utils import tree_flatten
from tasks import TinyClassifier, make_batches, quiet_trainer, weights


class InterruptedWhileTracing(TinyClassifier):
    """Ctrl-C (a notebook's "interrupt kernel") lands while the compiled step is being traced: `signals`
    SIGINTs are raised from inside the traced code of `stage`, once."""

    def __init__(self, stage: str, signals: int):
        super().__init__()
        self.stage, self.signals = stage, signals

    def _interrupt(self, stage: str) -> None:
        if self.stage == stage and self.signals:
            for _ in range(self.signals):
                self.signals -= 1
                signal.raise_signal(signal.SIGINT)

    def compute_loss(self, batch):
        self._interrupt("fit" if self.training else "validate")
        return super().compute_loss(batch)

    def predict_step(self, batch, batch_idx=0):
        self._interrupt("predict")
        return self(batch[0])


@pytest.mark.parametrize("stage", ["fit", "validate", "predict"])
def test_ctrl_c_while_a_step_is_traced_leaves_the_model_and_mx_random_usable(tmp_path, stage):
    """A KeyboardInterrupt while MLX traced a step used to leave tracer placeholders in the model, the
    optimizer and `mx.random.state`: the trained weights could no longer be read or saved, and every later
    random draw in the process failed ("Attempting to eval an array without a primitive")."""
    # fit defers the first Ctrl-C to the end of the step: the second (the impatient one) interrupts.
    model = InterruptedWhileTracing(stage, signals=2 if stage == "fit" else 1)
    mx.eval(model.parameters())
    before = weights(model)
    trainer = quiet_trainer(tmp_path, max_epochs=1, compile=True)
    run = {
        "fit": lambda: trainer.fit(model, make_batches()),
        "validate": lambda: trainer.validate(model, make_batches(32)),
        "predict": lambda: trainer.predict(model, make_batches(32)),
    }[stage]
    with pytest.raises(KeyboardInterrupt):
        run()
    assert model.signals == 0  # (the interrupt came from inside the trace)

    after = weights(model)  # readable, and as they were
    assert all(np.array_equal(after[k], before[k]) for k in before)
    model.save_weights(str(tmp_path / "model.safetensors"))
    mx.eval(mx.random.normal((2,)))
    if stage == "fit":
        mx.eval([v for _, v in tree_flatten(trainer.optimizer.state)])
    quiet_trainer(tmp_path, max_epochs=1, compile=True).fit(model, make_batches())  # the next cell trains
    assert not np.array_equal(weights(model)["fc1.weight"], before["fc1.weight"])
