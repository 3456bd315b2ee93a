"""The CLAP recipe's `run` from Python: its result is a dict whose keys and value types a checker knows.
"before", "after", "export", "weights" and "eval_set" are there only when the run got to its evaluation
(a stop after training, or another rank of a data-parallel job, has the rest), so they are read after a
check, or with `get`; pyright says so of an unchecked ``result["after"]``, mypy does not."""

from pathlib import Path

from audiotrain.recipes.clap import ClapRecipeConfig, ClapRunResult, run
from audiotrain.recipes.clap.task import CLAPTrainModule

from typing_extensions import assert_type


def report(cfg: ClapRecipeConfig) -> None:
    result = run(cfg)
    assert_type(result, ClapRunResult)
    assert_type(result["run_dir"], Path)
    assert_type(result["interrupted"], bool)
    assert_type(result["history"], dict[str, list])
    assert_type(result["task"], CLAPTrainModule)
    if "before" in result and "after" in result:
        assert_type(result["after"], dict[str, float])
        print(result["after"]["text_to_audio_R@1"] - result["before"]["text_to_audio_R@1"])
    assert_type(result.get("export"), Path | None)
    assert_type(result.get("weights"), str | None)
    result["run_dr"]  # type: ignore[typeddict-item]
