"""`ignoring_warnings`, the filters a recipe's run adds around its fit, from the side of the process's own."""

import warnings

from audiotrain._warning_filters import ignoring_warnings
from audiotrain.train.trainer import SHORT_EPOCH_WARNING


def _short_epoch_warning_is_shown() -> bool:
    with warnings.catch_warnings(record=True) as caught:
        warnings.warn(
            "Trainer.fit: an epoch has 3 training batches, fewer than the logging interval (50)", stacklevel=2
        )
    return bool(caught)


def test_a_filter_of_the_users_own_equal_to_a_runs_is_kept_after_the_run():
    """A user who hid the Trainer's short-epoch warning themselves (with the pattern the recipes use) had it
    back after their first chord or CLAP run: warnings.filterwarnings moves an equal filter to the front
    instead of adding a second, and the run then took out the user's own."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=SHORT_EPOCH_WARNING)
        with ignoring_warnings(SHORT_EPOCH_WARNING):
            assert not _short_epoch_warning_is_shown()
        assert not _short_epoch_warning_is_shown()


def test_the_filters_are_taken_out_once_the_last_run_needing_them_ends_though_one_raised():
    with warnings.catch_warnings():
        warnings.simplefilter("default")
        try:
            with ignoring_warnings(SHORT_EPOCH_WARNING):
                with ignoring_warnings(SHORT_EPOCH_WARNING):
                    raise RuntimeError("the fit failed")
        except RuntimeError:
            pass
        assert _short_epoch_warning_is_shown()


def test_a_run_does_not_show_the_processs_earlier_once_per_place_warnings_again():
    """A warning shown once per place (Python's default) came again after each recipe run or create_trainer
    of a sweep: adding and taking out the run's filters through the warnings module started every module's
    registry of warnings shown afresh."""
    registry: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for _ in range(3):  # (three trials of a sweep)
            warnings.warn_explicit(
                "a warning of the user's data", UserWarning, "prepare.py", 7, registry=registry
            )
            with ignoring_warnings(SHORT_EPOCH_WARNING):  # (a run that hides the short-epoch warning)
                warnings.warn(
                    "Trainer.fit: an epoch has 3 training batches, fewer than the logging interval",
                    stacklevel=1,
                )
    assert [str(w.message) for w in caught] == ["a warning of the user's data"]


def test_building_a_chord_config_scoring_and_writing_a_lab_do_not_show_earlier_warnings_again(tmp_path):
    """A sweep of the chord recipe from Python showed the process's once-per-place warnings again in each
    trial: `TrainingConfig` of mel features (its check), `score_songs` and `write_lab` hid a warning of
    their own in a warnings.catch_warnings block, which resets every module's registry of warnings shown."""
    from audiotrain.chords.lab import ChordSegment, write_lab
    from audiotrain.metrics.chord_scores import score_songs
    from audiotrain.recipes.chords.config import TrainingConfig

    song = [ChordSegment(0.0, 1.0, "C:maj"), ChordSegment(1.0, 2.0, "G:maj")]

    def trial(number: int) -> None:
        TrainingConfig(features={"kind": "mel"})  # (mel features: their check hides a warning)
        score_songs({"song": (song, song)})
        write_lab(tmp_path / f"{number}.lab", song)

    trial(0)  # (the first trial imports scipy, whose own filters reset the registries once)
    registry: dict = {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        for number in (1, 2):
            warnings.warn_explicit(
                "a warning of the user's data", UserWarning, "prepare.py", 7, registry=registry
            )
            trial(number)
    assert [str(w.message) for w in caught] == ["a warning of the user's data"]
