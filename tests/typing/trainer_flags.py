"""Trainer flags as a user passes them: Lightning's flags without a counterpart are known names, so a
misspelt flag is an error before the code runs (at run time the Trainer refuses it too, naming the flag
meant)."""

from audiotrain import Trainer

Trainer(max_epochs=3, enable_model_summary=False, num_nodes=1, benchmark=None, profiler=None)
Trainer(overfit_batches=0.0, inference_mode=True, reload_dataloaders_every_n_epochs=0)

Trainer(max_epoch=3)  # type: ignore[call-arg]
Trainer(enable_model_sumary=False)  # type: ignore[call-arg]
Trainer(num_nodes="1")  # type: ignore[arg-type]
