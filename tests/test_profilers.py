"""`Trainer(profiler=...)`: Lightning's SimpleProfiler and AdvancedProfiler, timing the loop's actions and
reporting them at the end of each stage (train/profilers.py)."""

import re
import time
import warnings
from pathlib import Path

import audiotrain  # noqa: F401  (before mlx)
from audiotrain import Trainer
from audiotrain.train import AdvancedProfiler, PassThroughProfiler, Profiler, SimpleProfiler

import mlx.core as mx
import numpy as np
import pytest
from tasks import TinyClassifier, make_batches, make_data, quiet_trainer, weights


def report_rows(text: str) -> dict[str, tuple[float, int, float]]:
    """A SimpleProfiler report's rows: action -> (mean, calls, total)."""
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] not in ("Action", "Total"):
            rows[cells[0]] = (float(cells[1]), int(cells[2]), float(cells[3]))
    return rows


def profiled_trainer(tmp_path, **flags):
    flags.setdefault("enable_model_summary", False)
    return quiet_trainer(tmp_path, **flags)


def test_simple_profiler_reports_the_loop_actions_on_stderr(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=2, profiler="simple")
    trainer.fit(TinyClassifier(), make_batches(64, 16), make_batches(32, 16, seed=1))
    err = capsys.readouterr().err
    assert err.count("FIT Profiler Report") == 1
    rows = report_rows(err)
    assert rows["run_training_epoch"][1] == 2
    assert rows["run_training_batch"][1] == 8  # 2 epochs x 4 batches
    assert rows["[_TrainingEpochLoop].train_dataloader_next"][1] == 8
    assert rows["[Trainer].training_step"][1] == 8
    assert rows["run_validation"][1] == 2
    assert rows["[Trainer].validation_step"][1] == 4  # 2 validations x 2 batches
    assert rows["[_EvaluationLoop].val_next"][1] == 4  # (Lightning's name of the validation loader's row)
    assert rows["[LightningModule]TinyClassifier.on_train_epoch_end"][1] == 2
    # the epoch holds its batches: nested actions count in both rows
    assert rows["run_training_epoch"][2] >= rows["run_training_batch"][2]
    mean, calls, total = rows["run_training_batch"]
    assert mean == pytest.approx(total / calls, rel=1e-3)
    totals = [row[2] for row in rows.values()]
    assert totals == sorted(totals, reverse=True)  # the longest first, as Lightning's report


class Unsized:
    """A loader without len(): its end is known only from the StopIteration of one more next()."""

    def __init__(self, batches):
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)


def test_the_end_of_a_loader_without_a_length_is_no_batch_fetched(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=2, profiler="simple")
    module = TinyClassifier()
    trainer.fit(module, Unsized(make_batches(48, 16)))
    trainer.predict(module, Unsized(make_batches(32, 16)))
    fit, predict = capsys.readouterr().err.split("PREDICT Profiler Report")
    assert report_rows(fit)["[_TrainingEpochLoop].train_dataloader_next"][1] == 6  # 2 epochs x 3 batches
    assert report_rows(predict)["[_PredictionLoop].predict_next"][1] == 2


def test_each_stage_reports_its_own_actions(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler="simple")
    module = TinyClassifier()
    trainer.fit(module, make_batches(32, 16))
    trainer.validate(module, make_batches(32, 16, seed=1))
    trainer.predict(module, make_batches(32, 16, seed=2))
    err = capsys.readouterr().err
    fit, rest = err.split("VALIDATE Profiler Report")
    validate, predict = rest.split("PREDICT Profiler Report")
    assert "run_training_batch" in fit
    assert "run_training_batch" not in validate and "run_validation" in validate
    assert report_rows(predict)["[Trainer].predict_step"][1] == 2
    assert "run_validation" not in predict
    assert report_rows(validate)["[_EvaluationLoop].val_next"][1] == 2
    trainer.test(module, make_batches(48, 16, seed=3))
    tested = report_rows(capsys.readouterr().err.split("TEST Profiler Report")[1])
    assert tested["[_EvaluationLoop].test_next"][1] == 3 and "[_EvaluationLoop].val_next" not in tested


def test_a_report_file_is_appended_in_the_log_dir(tmp_path, capsys):
    profiler = SimpleProfiler(filename="perf")
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=profiler)
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    report = tmp_path / "fit-perf.txt"  # (trainer.log_dir: default_root_dir without a logger)
    first = report.read_text()
    assert "FIT Profiler Report" in first and "run_training_batch" in first
    assert "Profiler Report" not in capsys.readouterr().err  # (to the file instead)
    trainer2 = profiled_trainer(tmp_path, max_epochs=1, profiler=profiler)
    trainer2.fit(TinyClassifier(), make_batches(32, 16))
    text = report.read_text()
    assert text.startswith(first) and text.count("FIT Profiler Report") == 2  # the first report is kept
    # each report says when it was written, so the runs in the file can be told apart
    dated = re.findall(
        r"^Written (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4})\nFIT Profiler Report$", text, re.M
    )
    assert len(dated) == 2 and dated == sorted(dated)


def test_dirpath_is_the_log_dir_where_none_was_given(tmp_path, capsys):
    """Lightning's `profiler.dirpath` after `fit` is `trainer.log_dir` where none was given (its
    test_simple_profiler_dirpath; measured, Lightning 2.6.6): a user finds the report there. It stayed None."""
    profiler = SimpleProfiler(filename="perf")
    trainer = profiled_trainer(tmp_path / "a", max_epochs=1, profiler=profiler, logger=False)
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    assert profiler.dirpath == trainer.log_dir == str(tmp_path / "a")
    assert (Path(profiler.dirpath) / "fit-perf.txt").is_file()
    again = profiled_trainer(tmp_path / "b", max_epochs=1, profiler=profiler, logger=False)
    again.fit(TinyClassifier(), make_batches(32, 16))  # (used again: the new Trainer's log_dir)
    assert profiler.dirpath == str(tmp_path / "b") and (tmp_path / "b" / "fit-perf.txt").is_file()
    given = SimpleProfiler(dirpath=tmp_path / "mine", filename="perf")
    profiled_trainer(tmp_path / "c", max_epochs=1, profiler=given).fit(TinyClassifier(), make_batches(32, 16))
    assert given.dirpath == tmp_path / "mine" and (tmp_path / "mine" / "fit-perf.txt").is_file()


def test_a_dirpath_starting_with_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    # As default_root_dir's and ModelCheckpoint's dirpath: "~/profiles" was a folder named "~" in the
    # working directory.
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    profiler = SimpleProfiler(dirpath="~/profiles", filename="perf")
    profiled_trainer(tmp_path / "run", max_epochs=1, profiler=profiler).fit(
        TinyClassifier(), make_batches(32, 16)
    )
    assert "FIT Profiler Report" in (tmp_path / "home" / "profiles" / "fit-perf.txt").read_text()
    assert not (tmp_path / "~").exists()


def test_report_path_names_stage_filename_and_rank(tmp_path):
    profiler = SimpleProfiler(dirpath=tmp_path / "prof", filename="run")
    profiler.setup("fit", local_rank=1)
    assert profiler.report_path() == tmp_path / "prof" / "fit-run-1.txt"
    profiler.setup("fit", local_rank=0)  # (rank 0 of a data-parallel job names its rank too, as Lightning)
    assert profiler.report_path() == tmp_path / "prof" / "fit-run-0.txt"
    profiler.setup("test")
    assert profiler.report_path() == tmp_path / "prof" / "test-run.txt"
    assert SimpleProfiler().report_path() is None  # (printed)


def test_user_actions_and_custom_profilers(tmp_path, capsys):
    class Timed(TinyClassifier):
        def on_train_epoch_start(self):
            with self.trainer.profiler.profile("load_stems"):
                sum(range(1000))

    class Counting(Profiler):
        def __init__(self):
            super().__init__()
            self.started, self.stopped = [], []

        def start(self, action_name):
            self.started.append(action_name)

        def stop(self, action_name):
            self.stopped.append(action_name)

    trainer = profiled_trainer(tmp_path, max_epochs=3, profiler="simple")
    trainer.fit(Timed(), make_batches(32, 16))
    assert report_rows(capsys.readouterr().err)["load_stems"][1] == 3
    counting = Counting()
    profiled_trainer(tmp_path / "b", max_epochs=1, profiler=counting).fit(Timed(), make_batches(32, 16))
    assert sorted(counting.started) == sorted(counting.stopped)
    assert counting.started.count("load_stems") == 1 and "run_training_epoch" in counting.started


def test_profiling_does_not_change_training(tmp_path):
    runs = []
    for profiler in (None, "simple", "advanced"):
        mx.random.seed(0)  # (the same initial weights)
        module = TinyClassifier()
        trainer = profiled_trainer(tmp_path / str(profiler), max_epochs=2, profiler=profiler, seed=3)
        trainer.fit(module, make_batches(64, 16), make_batches(32, 16, seed=1))
        runs.append(weights(module))
    for other in runs[1:]:
        for name, value in runs[0].items():
            np.testing.assert_array_equal(value, other[name])


def test_no_profiler_records_nothing(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=1)
    assert isinstance(trainer.profiler, PassThroughProfiler)
    with trainer.profiler.profile("anything") as action:
        assert action is None  # (a shared no-op context)
    assert trainer.profiler.summary() == ""
    trainer.profiler.describe()
    assert capsys.readouterr().err == ""  # (an empty report prints nothing, not even a blank line)


@pytest.mark.parametrize(
    "name, kind", [("simple", SimpleProfiler), ("Simple", SimpleProfiler), ("advanced", AdvancedProfiler)]
)
def test_profiler_names_choose_lightnings_profilers_whatever_their_case(name, kind):
    assert type(Trainer(max_epochs=1, profiler=name).profiler) is kind


def some_helper_of_the_hook():
    return sum(i * i for i in range(2000))


def test_advanced_profiler_keeps_a_nested_action_out_of_the_enclosing_one(tmp_path, capsys):
    class Hooked(TinyClassifier):
        def on_train_epoch_end(self):
            some_helper_of_the_hook()

    profiler = AdvancedProfiler(line_count_restriction=40)
    profiled_trainer(tmp_path, max_epochs=1, profiler=profiler).fit(Hooked(), make_batches(32, 16))
    err = capsys.readouterr().err
    sections = dict(
        part.split("\n", 1) for part in err.split("Profile stats for: ")[1:]
    )  # action -> its pstats text
    assert "some_helper_of_the_hook" in sections["[LightningModule]Hooked.on_train_epoch_end"]
    assert "some_helper_of_the_hook" not in sections["run_training_epoch"]
    assert "cumulative" in sections["run_training_batch"]


def work_after_the_nested_action():
    return sum(i * i for i in range(2000))


def test_advanced_profiler_records_the_enclosing_action_again_once_a_nested_one_ends():
    profiler = AdvancedProfiler(line_count_restriction=40)
    profiler.setup("fit")
    with profiler.profile("outer"):
        with profiler.profile("inner"):
            some_helper_of_the_hook()
        work_after_the_nested_action()
    sections = dict(part.split("\n", 1) for part in profiler.summary().split("Profile stats for: ")[1:])
    assert "work_after_the_nested_action" in sections["outer"]
    assert (
        "some_helper_of_the_hook" in sections["inner"] and "some_helper_of_the_hook" not in sections["outer"]
    )


def test_simple_profiler_percentages_are_shares_of_the_total_row():
    profiler = SimpleProfiler()
    profiler.setup("fit")
    for name, n in (("long", 200_000), ("short", 20_000)):
        with profiler.profile(name):
            sum(i * i for i in range(n))
    table = {}
    for line in profiler.summary().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0] != "Action":
            table[cells[0]] = (float(cells[3]), cells[4])
    total, share = table.pop("Total")
    assert share == "100 %" and set(table) == {"long", "short"}
    for name, (seconds, share) in table.items():
        assert seconds <= total
        assert float(share) == pytest.approx(100 * seconds / total, rel=2e-3, abs=0.006), name


def test_simple_profiler_total_row_counts_every_call_of_its_stage_alone():
    profiler = SimpleProfiler()
    time.sleep(0.2)  # (before the stage: not part of its total)
    stage_started = time.perf_counter()
    profiler.setup("fit")
    for name, calls in (("a", 3), ("b", 2)):
        for _ in range(calls):
            with profiler.profile(name):
                pass
    summary = profiler.summary()
    stage_seconds = time.perf_counter() - stage_started  # (a bound, not a timing: the sleep lies before it)
    total_row = next(line for line in summary.splitlines() if line.startswith("|  Total"))
    _, mean, calls, seconds, share = [c.strip() for c in total_row.strip().strip("|").split("|")]
    assert (mean, calls, share) == ("-", "5", "100 %")  # the calls of every action
    assert float(seconds) <= stage_seconds * (1 + 1e-4)  # (the table rounds to 5 digits)


def test_advanced_profiler_lists_the_longest_action_first_restricted_to_line_count_restriction():
    profiler = AdvancedProfiler(line_count_restriction=1)
    profiler.setup("fit", local_rank=0)
    with profiler.profile("quick"):
        some_helper_of_the_hook()
    with profiler.profile("slow"):
        time.sleep(0.05)  # (a builtin: its time is the action's own time)
    report = profiler.summary()
    assert report.index("Profile stats for: slow rank: 0") < report.index("Profile stats for: quick rank: 0")
    assert report.count("due to restriction <1>") == 2  # (pstats' note: one function per action)


def test_a_custom_profiler_is_torn_down_after_each_stage_report(tmp_path, capsys):
    class TornDown(SimpleProfiler):
        def __init__(self):
            super().__init__()
            self.torn_down = []

        def teardown(self, stage):
            self.torn_down.append((stage, "Profiler Report" in capsys.readouterr().err))

    profiler = TornDown()
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=profiler)
    module = TinyClassifier()
    trainer.fit(module, make_batches(32, 16))
    trainer.validate(module, make_batches(32, 16, seed=1))
    assert profiler.torn_down == [("fit", True), ("validate", True)]  # (after its report)


@pytest.mark.parametrize("rank", [0, 1])
def test_a_report_on_stderr_is_printed_by_rank_0_alone(rank, capsys):
    """Under data parallel every rank profiles; a report without a file would be printed once per rank."""
    profiler = SimpleProfiler()
    profiler.setup("fit", local_rank=rank)
    with profiler.profile("an_action"):
        pass
    profiler.describe()
    err = capsys.readouterr().err
    assert ("FIT Profiler Report" in err and "an_action" in err) if rank == 0 else err == ""


def test_a_report_that_fails_to_write_is_printed_by_every_rank(tmp_path, capsys, monkeypatch):
    """A report file of rank 1 that cannot be written is printed instead, as the warning says: the
    report of rank 1 is in no other place."""
    profiler = SimpleProfiler(tmp_path / "reports", "perf")
    profiler.setup("fit", local_rank=1)
    with profiler.profile("an_action"):
        pass
    monkeypatch.setattr(profiler, "_check_report_path", lambda: None)
    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.warns(UserWarning, match="printed on stderr instead"):
        profiler.describe()
    monkeypatch.undo()
    assert "an_action" in capsys.readouterr().err


def test_advanced_profiler_dumps_pstats_files(tmp_path, capsys):
    import pstats

    profiler = AdvancedProfiler(dirpath=tmp_path / "prof", filename="adv", dump_stats=True)
    profiled_trainer(tmp_path, max_epochs=1, profiler=profiler).fit(TinyClassifier(), make_batches(32, 16))
    assert (tmp_path / "prof" / "fit-adv.txt").is_file()
    dumped = sorted(p.name for p in (tmp_path / "prof").glob("fit-adv-*.prof"))
    assert "fit-adv-run_training_batch.prof" in dumped
    pstats.Stats(str(tmp_path / "prof" / "fit-adv-run_training_batch.prof"))  # (a readable pstats file)


def test_advanced_profiler_dumps_pstats_files_without_a_filename(tmp_path, capsys):
    """Lightning's `AdvancedProfiler(dirpath=..., dump_stats=True)` (its docs: dump_stats needs dirpath) prints
    the report and writes `<dirpath>/fit-<action>.prof` (measured, Lightning 2.6.6); and with neither, the
    files go to the log_dir. Here it was refused ("give a filename")."""
    import pstats

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (no "writes nothing there": the .prof files go there)
        profiler = AdvancedProfiler(dirpath=tmp_path / "prof", dump_stats=True)
    profiled_trainer(tmp_path, max_epochs=1, profiler=profiler).fit(TinyClassifier(), make_batches(32, 16))
    assert "FIT Profiler Report" in capsys.readouterr().err
    pstats.Stats(str(tmp_path / "prof" / "fit-run_training_batch.prof"))
    assert not list((tmp_path / "prof").glob("*.txt"))

    logs = tmp_path / "logs"
    trainer = profiled_trainer(logs, max_epochs=1, profiler=AdvancedProfiler(dump_stats=True), logger=False)
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    assert (logs / "fit-run_training_batch.prof").is_file()

    alone = AdvancedProfiler(dirpath=tmp_path / "alone", dump_stats=True)
    with alone.profile("load/decode"):  # (outside a Trainer: no stage, and the name made file-safe)
        sum(range(10))
    alone.describe()
    assert [p.name for p in (tmp_path / "alone").iterdir()] == ["load_decode.prof"]


def test_a_second_runs_pstats_files_keep_the_first_ones(tmp_path, capsys):
    import pstats

    batches = make_batches(32, 16)
    for epochs in (1, 2):  # two runs into the same report: the second appends to it
        profiler = AdvancedProfiler(dirpath=tmp_path / "prof", filename="adv", dump_stats=True)
        profiled_trainer(tmp_path, max_epochs=epochs, profiler=profiler).fit(TinyClassifier(), batches)
    first, second = (tmp_path / "prof" / f"fit-adv-run_training_epoch{n}.prof" for n in ("", ".2"))
    assert pstats.Stats(str(first)).total_calls > 0  # (was replaced by the second run's)
    assert pstats.Stats(str(second)).total_calls > pstats.Stats(str(first)).total_calls  # (2 epochs)
    report = (tmp_path / "prof" / "fit-adv.txt").read_text()
    assert f"each action's pstats file: {tmp_path / 'prof' / 'fit-adv-<action>.2.prof'}" in report


def test_a_failed_fit_still_reports_and_raises_its_own_error(tmp_path, capsys):
    class Failing(TinyClassifier):
        def on_train_epoch_end(self):
            raise RuntimeError("the user's hook failed")

    trainer = profiled_trainer(tmp_path, max_epochs=2, profiler="simple")
    with pytest.raises(RuntimeError, match="the user's hook failed"):
        trainer.fit(Failing(), make_batches(32, 16))
    rows = report_rows(capsys.readouterr().err)
    assert rows["run_training_batch"][1] == 2 and rows["run_training_epoch"][1] == 1


def test_a_loader_that_fails_counts_its_failed_fetch(tmp_path, capsys):
    def failing_on_the_third():
        yield from make_batches(32, 16)
        raise RuntimeError("the loader failed")

    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler="simple")
    with pytest.raises(RuntimeError, match="the loader failed"):
        trainer.fit(TinyClassifier(), failing_on_the_third())
    assert report_rows(capsys.readouterr().err)["[_TrainingEpochLoop].train_dataloader_next"][1] == 3


@pytest.mark.parametrize(
    "value, error, match",
    [
        ("pytorch", ValueError, "MLX does not run"),
        ("xla", ValueError, "MLX does not run"),
        ("fancy", ValueError, "expected None, 'simple', 'advanced' or a Profiler"),
        (3, TypeError, "got int"),
    ],
)
def test_profiler_values_refused(value, error, match):
    with pytest.raises(error, match=match):
        Trainer(max_epochs=1, profiler=value)


@pytest.mark.parametrize("kind", [SimpleProfiler, AdvancedProfiler])
def test_a_dirpath_without_a_filename_warns_that_nothing_goes_there(tmp_path, capsys, kind):
    with pytest.warns(UserWarning, match="without a filename writes nothing there.*filename='perf'") as seen:
        profiler = kind(dirpath=tmp_path / "profiles")
    assert seen[0].filename == __file__  # (the user's line)
    profiled_trainer(tmp_path, max_epochs=1, profiler=profiler).fit(TinyClassifier(), make_batches(32, 16))
    assert "FIT Profiler Report" in capsys.readouterr().err and not (tmp_path / "profiles").exists()

    class OwnFiles(Profiler):  # a custom profiler's dirpath is its own: no warning
        def start(self, action_name):
            pass

        def stop(self, action_name):
            pass

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        OwnFiles(dirpath=tmp_path / "traces")
        kind(dirpath=tmp_path / "profiles", filename="perf")


def test_profiler_arguments_refused(tmp_path):
    with pytest.raises(TypeError, match="dirpath=3.*expected a folder path"):
        SimpleProfiler(dirpath=3)
    with pytest.raises(ValueError, match="without a folder"):
        SimpleProfiler(filename="logs/perf")
    with pytest.raises(ValueError, match="line_count_restriction"):
        AdvancedProfiler(line_count_restriction=0)
    with pytest.raises(ValueError, match="line_count_restriction"):
        AdvancedProfiler(line_count_restriction=1.5)
    (tmp_path / "afile").write_text("x")
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=SimpleProfiler(tmp_path / "afile", "perf"))
    with pytest.raises(NotADirectoryError, match="afile is a file"):
        trainer.fit(TinyClassifier(), make_batches(32, 16))
    assert trainer.global_step == 0  # refused before training
    inside = profiled_trainer(
        tmp_path, max_epochs=1, profiler=SimpleProfiler(tmp_path / "afile" / "sub", "perf")
    )
    with pytest.raises(NotADirectoryError, match="afile is a file, where the report's folder"):
        inside.fit(TinyClassifier(), make_batches(32, 16))
    assert inside.global_step == 0
    (tmp_path / "reports" / "fit-perf.txt").mkdir(parents=True)
    taken = profiled_trainer(tmp_path, max_epochs=1, profiler=SimpleProfiler(tmp_path / "reports", "perf"))
    with pytest.raises(IsADirectoryError, match="fit-perf.txt is a folder"):
        taken.fit(TinyClassifier(), make_batches(32, 16))
    assert taken.global_step == 0


def full_disk(*args, **kwargs):
    """`open` on a full disk."""
    raise OSError(28, "No space left on device")


def test_a_report_that_fails_to_write_after_the_stage_is_printed_with_a_warning(
    tmp_path, capsys, monkeypatch
):
    profiler = SimpleProfiler(tmp_path / "reports", "perf")
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=profiler)
    monkeypatch.setattr(profiler, "_check_report_path", lambda: None)
    monkeypatch.setattr("builtins.open", full_disk)
    with pytest.warns(UserWarning, match="could not be written.*No space left"):
        trainer.fit(TinyClassifier(), make_batches(32, 16))
    monkeypatch.undo()
    assert trainer.state.status == "finished" and "FIT Profiler Report" in capsys.readouterr().err


def test_setting_the_profiler_between_stages_times_the_callbacks_too(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=1, enable_checkpointing=True)
    trainer.profiler = "simple"
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    rows = report_rows(capsys.readouterr().err)
    checkpoint_rows = [
        k for k in rows if k.startswith("[Callback]ModelCheckpoint{") and k.endswith(".on_train_epoch_end")
    ]
    assert len(checkpoint_rows) == 1 and rows[checkpoint_rows[0]][1] == 1
    with pytest.raises(ValueError, match="expected None, 'simple'"):
        trainer.profiler = "fast"


def test_training_and_validation_steps_have_rows_of_their_own(tmp_path, capsys):
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler="simple")
    trainer.fit(TinyClassifier(), make_batches(64, 16), make_batches(48, 16, seed=1))
    rows = report_rows(capsys.readouterr().err)
    assert rows["[Trainer].training_dispatch"][1] == 4 and rows["[Trainer].validation_dispatch"][1] == 3
    assert rows["[Trainer].training_wait"][1] == 4  # (the first step at once, each later one by the next)
    assert rows["[Trainer].validation_wait"][1] >= 3


def test_simple_profiler_start_stop_misuse():
    profiler = SimpleProfiler()
    profiler.start("a")
    with pytest.raises(ValueError, match="started already"):
        profiler.start("a")
    with pytest.raises(ValueError, match="never started"):
        profiler.stop("b")


def test_a_custom_profiler_gets_the_log_dir_in_setup_as_lightnings_does(tmp_path):
    class Opening(SimpleProfiler):
        def setup(self, stage, local_rank=None, log_dir=None):
            super().setup(stage, local_rank, log_dir)
            self.seen = (stage, local_rank, log_dir)

    profiler = Opening()
    profiled_trainer(tmp_path, max_epochs=1, profiler=profiler).fit(TinyClassifier(), make_batches(32, 16))
    assert profiler.seen == ("fit", None, str(tmp_path))


class DecodingClips:
    """A Dataset that times its own decoding, as a user finding a slow loader would."""

    def __init__(self, trainer_of):
        self.trainer_of = trainer_of
        self.x, self.y = make_data(64)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        with self.trainer_of().profiler.profile("decode"):
            time.sleep(0.001)  # (two worker threads are inside "decode" at once)
        return self.x[i], self.y[i]


@pytest.mark.parametrize("name", ["simple", "advanced"])
def test_an_action_timed_in_the_dataloaders_worker_threads(tmp_path, capsys, name):
    from audiotrain import DataLoader

    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=name)
    loader = DataLoader(DecodingClips(lambda: trainer), batch_size=16, num_workers=2)
    trainer.fit(TinyClassifier(), loader)  # (raised "the action 'decode' was started already")
    err = capsys.readouterr().err
    if name == "simple":  # every sample's decoding, from both threads
        assert report_rows(err)["decode"][1] == 64
    else:  # cProfile records the loop's thread alone (Python runs one at a time)
        assert "Profile stats for: run_training_batch" in err and "decode" not in err


class RecordsStarts(Profiler):
    """A Profiler of one's own, as Lightning's docs write one: the names `start` gets, in order."""

    def __init__(self):
        super().__init__()
        self.started = []

    def start(self, action_name):
        self.started.append(action_name)

    def stop(self, action_name):
        pass


def test_a_profiler_of_ones_own_times_the_checkpoint_hooks_as_lightnings(tmp_path):
    # Lightning 2.6.6, a Profiler subclass over one epoch with its default ModelCheckpoint: start() gets
    # "[Callback]ModelCheckpoint{...}.on_save_checkpoint" and "[LightningModule]Lit.on_save_checkpoint" once
    # for the epoch's save, as every other hook. Here neither was timed.
    counting = RecordsStarts()
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=counting, enable_checkpointing=True)
    trainer.fit(TinyClassifier(), make_batches(32, 16))
    key = trainer.checkpoint_callback.state_key
    assert counting.started.count(f"[Callback]{key}.on_save_checkpoint") == 1
    assert counting.started.count("[LightningModule]TinyClassifier.on_save_checkpoint") == 1


def test_a_profiler_of_ones_own_times_configure_optimizers_and_the_batch_hooks_as_lightnings(tmp_path):
    # Lightning 2.6.6, a Profiler subclass over one epoch: start() gets
    # "[LightningModule]Lit.configure_optimizers" once and "[LightningModule]Lit.on_before_batch_transfer",
    # "...transfer_batch_to_device" and "...on_after_batch_transfer" once per batch (4 training batches and 2
    # validation ones there: 6). Here none of them was timed.
    counting = RecordsStarts()
    trainer = profiled_trainer(tmp_path, max_epochs=1, profiler=counting)
    trainer.fit(TinyClassifier(), make_batches(64, 16), make_batches(32, 16, seed=1))
    assert counting.started.count("[LightningModule]TinyClassifier.configure_optimizers") == 1
    for hook in ("on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer"):
        assert counting.started.count(f"[LightningModule]TinyClassifier.{hook}") == 6


def test_the_datamodules_hooks_are_timed_as_lightnings_are(tmp_path):
    """Lightning 2.6.6's SimpleProfiler records `[LightningDataModule]<class>.setup`, `.state_dict` and
    `.teardown` in a fit, and `.load_state_dict` in a resumed one (its test_datamodule_hooks_are_profiled);
    audiotrain timed none of the datamodule's hooks. (prepare_data runs before the profiler's setup, which
    starts each stage's record afresh, so it is not in the report.)"""
    from audiotrain import DataModule

    class Counting(DataModule):
        def train_dataloader(self):
            return make_batches(32)

        def state_dict(self):
            return {"seen": 1}

        def load_state_dict(self, state):
            self.loaded = state

    def datamodule_rows(trainer):
        return sorted(k for k in trainer.profiler.recorded_durations if k.startswith("[LightningDataModule]"))

    first = quiet_trainer(tmp_path, max_steps=1, profiler="simple", enable_checkpointing=True)
    first.fit(TinyClassifier(), datamodule=Counting())
    assert datamodule_rows(first) == [
        f"[LightningDataModule]Counting.{h}" for h in ("setup", "state_dict", "teardown")
    ]
    resumed = quiet_trainer(tmp_path, max_steps=2, profiler="simple")
    data = Counting()
    resumed.fit(TinyClassifier(), datamodule=data, ckpt_path=first.checkpoint_callback.last_model_path)
    assert data.loaded == {"seen": 1}
    rows = datamodule_rows(resumed)
    assert rows == [f"[LightningDataModule]Counting.{h}" for h in ("load_state_dict", "setup", "teardown")]
    assert all(len(resumed.profiler.recorded_durations[k]) == 1 for k in rows)
