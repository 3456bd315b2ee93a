"""Grouped k-fold splitting and the mean ± std table shared by every cross-validation."""

import json

from audiotrain.cross_validation import CVResult, cv_outputs, grouped_folds
from audiotrain.recipes._run import clear_run_outputs

import numpy as np
import pytest


def test_groups_never_cross_folds_and_every_sample_is_held_out_once():
    rng = np.random.default_rng(3)
    groups = [f"clip{g}" for g in rng.integers(0, 23, size=100)]  # 1..9 samples per group
    folds = grouped_folds(groups, 5, seed=1, val_fraction=0.2)
    assert sorted(i for f in folds for i in f.test) == list(range(100))
    held_by = {}
    for f in folds:
        assert sorted(f.train + f.val + f.test) == list(range(100))
        parts = [{groups[i] for i in part} for part in (f.train, f.val, f.test)]
        assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
        assert f.val and f.train
        for g in parts[2]:
            assert held_by.setdefault(g, f.index) == f.index  # a group is held out by one fold only
    sizes = [len(f.test) for f in folds]
    assert max(sizes) - min(sizes) <= max(groups.count(g) for g in set(groups))  # balanced by samples


def test_same_seed_same_folds_and_another_seed_others():
    groups = [i // 3 for i in range(30)]
    assert grouped_folds(groups, 3, seed=7) == grouped_folds(groups, 3, seed=7)
    assert grouped_folds(groups, 3, seed=7) != grouped_folds(groups, 3, seed=8)


def test_equal_groups_are_dealt_in_turn():
    folds = grouped_folds(list(range(10)), 3, seed=0)
    shuffled = [int(g) for g in np.random.default_rng(0).permutation(10)]
    assert [f.test for f in folds] == [shuffled[k::3] for k in range(3)]
    assert all(f.val == [] for f in folds)  # val_fraction 0: no validation part


def test_a_folds_validation_part_never_takes_all_the_groups_it_could_train_on():
    # 3 groups, 3 folds: each fold has 2 groups left; 0.75 of them rounds to both, which would train on none.
    for fold in grouped_folds(["a", "b", "c"], 3, val_fraction=0.75):
        assert len(fold.train) == 1 and len(fold.val) == 1


@pytest.mark.parametrize("val_fraction", [1.0, -0.1, 1.5])
def test_a_val_fraction_outside_0_to_1_is_refused(val_fraction):
    """1.0 would leave a fold no group to train on: refused as the docstring and the README say."""
    with pytest.raises(ValueError, match=r"val_fraction must be in \[0, 1\), got"):
        grouped_folds(list("abcd"), 2, val_fraction=val_fraction)


def test_fewer_groups_than_folds_is_an_error_naming_both():
    with pytest.raises(ValueError, match="my data: 3 clips cannot make 5 folds"):
        grouped_folds(["a", "a", "b", "c"], 5, unit="clips", source="my data")
    with pytest.raises(ValueError, match="needs --folds >= 2, got 1"):
        grouped_folds(["a", "b"], 1, flag="--folds")


def test_cv_result_mean_std_are_numpys_and_the_table_shows_them(tmp_path):
    scores = [{"loss": 0.5, "acc": 0.75}, {"loss": 0.25, "acc": 0.5}, {"loss": 0.4, "acc": 1.0}]
    cv = CVResult(tmp_path, scores, percent=True)
    assert cv.mean["acc"] == pytest.approx(np.mean([0.75, 0.5, 1.0]))
    assert cv.std["loss"] == pytest.approx(np.std([0.5, 0.25, 0.4]))
    row = next(line for line in cv.table().splitlines() if line.startswith("| acc |"))
    assert row == f"| acc | 75.00 | 50.00 | 100.00 | 75.00 | {100 * np.std([0.75, 0.5, 1.0]):.2f} |"
    json_path, md_path = cv.write(clips=12)
    record = json.loads(json_path.read_text())
    assert record["folds"] == scores and record["clips"] == 12 and record["std"] == cv.std
    assert md_path.read_text().endswith("\n\n" + cv.table() + "\n")  # (under the line of its unit and std)


def test_one_group_or_unhashable_groups_are_errors_that_say_what_to_do():
    with pytest.raises(ValueError, match="1 clip cannot make 3 folds.*it needs 2 clips or more"):
        grouped_folds(["a", "a", "a"], 3, unit="clips", source="my data")
    with pytest.raises(ValueError, match="2 clips cannot make 3 folds.*use folds 2 or fewer"):
        grouped_folds(["a", "b", "b"], 3, unit="clips", source="my data")
    with pytest.raises(TypeError, match=r"my data: the group of sample 0 is a list \(\[0\]\); .*a tuple"):
        grouped_folds([[0], [1]], 2, source="my data")


def test_a_fold_without_a_score_is_left_out_of_mean_and_std_shown_as_dash_and_written_as_null(tmp_path):
    """A fold whose held-out songs are all X has no chord score (NaN): it wiped out the mean and std, and
    cv_scores.json got a bare NaN token, which is not JSON (jq and JavaScript refuse it)."""
    scores = [{"root": 0.5, "loss": 1.0}, {"root": float("nan"), "loss": 2.0}, {"root": 0.75, "loss": 3.0}]
    cv = CVResult(tmp_path, scores, percent=True)
    assert cv.mean["root"] == pytest.approx(0.625) and cv.std["root"] == pytest.approx(0.125)
    assert cv.folds_scored == {"root": 2, "loss": 3}
    table = cv.table().splitlines()
    assert "| root | 50.00 | - | 75.00 | 62.50 | 12.50 |" in table
    assert table[-1].endswith("mean and std are over the folds that have one: 2 of 3 folds for root")
    json_path, _ = cv.write()

    def refuse(constant):
        raise ValueError(f"not JSON: {constant}")

    record = json.loads(json_path.read_text(), parse_constant=refuse)
    assert record["folds"][1]["root"] is None and record["folds_scored"]["root"] == 2
    nothing = CVResult(tmp_path, [{"root": float("nan")}, {"root": float("nan")}])
    assert np.isnan(nothing.mean["root"]) and "| root | - | - | - | - |" in nothing.table()
    record = json.loads(nothing.write()[0].read_text(), parse_constant=refuse)
    assert record["mean"]["root"] is None and record["std"]["root"] is None


def test_an_overwrite_removes_the_fold_folders_and_records_and_leaves_the_users_folders(tmp_path):
    """What `clap cv --overwrite` and `train_with_cv(overwrite=True)` remove: `fold<k>/` and the cv's files,
    not a folder of the user's whose name begins with "fold"."""
    out = tmp_path / "cv"
    for name in ("fold0", "fold12", "fold_notes", "folds_old", "fold1b"):
        (out / name).mkdir(parents=True)
        (out / name / "x.txt").write_text("x")
    (out / "folds.json").write_text("{}")
    (out / "notes.md").write_text("mine")
    assert cv_outputs(out) == ["fold0", "fold12", "folds.json"]
    clear_run_outputs(out, cv_outputs(out), log=lambda line: None)
    assert sorted(p.name for p in out.iterdir()) == ["fold1b", "fold_notes", "folds_old", "notes.md"]
    assert (out / "fold_notes" / "x.txt").read_text() == "x"


def test_folds_balance_held_out_samples_giving_the_largest_groups_first():
    """Folds filled by their number of groups, or with the smallest groups first, held out 7 and 3 of these
    10 samples; the largest group first, each to the fold with the fewest samples, holds out 5 and 5."""
    folds = grouped_folds(["big"] * 5 + ["a", "b", "c", "d", "e"], 2, seed=0)
    assert [len(fold.test) for fold in folds] == [5, 5]


def test_a_folds_validation_part_is_val_fraction_of_its_other_groups_rounded():
    # 9 groups, 3 folds: 6 groups left to each fold; 0.3 of them is 1.8, which rounds to 2 (not 1).
    for fold in grouped_folds(list(range(9)), 3, seed=0, val_fraction=0.3):
        assert (len(fold.val), len(fold.train), len(fold.test)) == (2, 4, 3)


def test_a_fold_score_read_back_from_json_as_null_is_no_score(tmp_path):
    """A resumed cross-validation reads its folds' scores from JSON, where a NaN was written as null."""
    cv = CVResult(tmp_path, [{"root": None}, {"root": 0.5}])
    assert cv.mean == {"root": 0.5} and cv.std == {"root": 0.0} and cv.folds_scored == {"root": 1}
    assert "| root | - | 0.5000 | 0.5000 | 0.0000 |" in cv.table().splitlines()


def test_a_metric_that_not_every_fold_has_is_left_out(tmp_path):
    cv = CVResult(tmp_path, [{"acc": 0.5, "loss": 1.0}, {"acc": 0.7}])
    assert cv.metrics == ["acc"] and cv.mean == {"acc": pytest.approx(0.6)}
    assert not any(line.startswith("| loss |") for line in cv.table().splitlines())
    assert json.loads(cv.write()[0].read_text())["mean"] == {"acc": pytest.approx(0.6)}


def test_the_note_under_the_table_lists_the_metrics_by_how_many_folds_score_them(tmp_path):
    nan = float("nan")
    cv = CVResult(tmp_path, [{"b": 0.5, "a": nan}, {"b": nan, "a": nan}, {"b": 0.5, "a": 0.25}])
    assert cv.table().splitlines()[-1].endswith("1 of 3 folds for a; 2 of 3 folds for b")


def test_cv_scores_md_says_its_unit_and_which_std_its_std_column_is(tmp_path):
    """A paper's reader copying cv_scores.md, or re-computing its std with pandas (ddof 1 by default), had no
    way to tell that the table is in % of cv_scores.json's fractions, nor that its std is np.std's (ddof 0):
    pandas gave 4.37 where the file said 3.57, with nothing to say why."""
    scores = [{"majmin": 0.4267}, {"majmin": 0.3408}, {"majmin": 0.3978}]
    CVResult(tmp_path, scores, percent=True).write()
    head = (tmp_path / "cv_scores.md").read_text().splitlines()[0]
    assert "in %" in head and "cv_scores.json" in head and "ddof 0" in head, head
    assert json.loads((tmp_path / "cv_scores.json").read_text())["std_ddof"] == 0
    CVResult(tmp_path, scores).write(stem="other")
    head = (tmp_path / "other.md").read_text().splitlines()[0]
    assert "as other.json holds them" in head and "ddof 0" in head, head


def test_groups_are_folds_holds_out_the_datas_own_fold_k_as_fold_k():
    # ESC-50's fold column (1..5): fold k of the cross-validation holds out the data's fold k + 1, whatever
    # the seed; a seeded order made fold 0 hold out the data's fold 3, so per-fold scores did not line up.
    data_fold = [5, 3, 1, 4, 2, 2, 1, 5, 3, 4, 1, 2]
    for seed in (0, 1, 7):
        parts = grouped_folds(data_fold, folds=5, seed=seed, val_fraction=0.25, groups_are_folds=True)
        for fold in parts:
            assert {data_fold[i] for i in fold.test} == {fold.index + 1}
            assert not {data_fold[i] for i in fold.val} & {fold.index + 1} and fold.val
    with pytest.raises(ValueError, match="groups_are_folds makes one fold of each group, and there are 5"):
        grouped_folds(data_fold, folds=6, groups_are_folds=True)


def test_groups_are_folds_counts_named_folds_as_a_person_does():
    # "fold10" sorted as text came before "fold2": fold 1 held out the data's fold 10.
    names = [f"fold{k}" for k in range(1, 11)]
    data_fold = [name for name in names for _ in range(2)]
    parts = grouped_folds(data_fold, folds=10, groups_are_folds=True)
    assert [sorted({data_fold[i] for i in fold.test}) for fold in parts] == [[name] for name in names]


def test_groups_are_folds_takes_fold_names_with_superscript_digits():
    # "²" is a digit to str.isdigit but not a number int() reads: groups_are_folds raised
    # "ValueError: invalid literal for int() with base 10: '²'" while ordering the folds.
    data_fold = ["take1²", "take1²", "take1³", "take1³"]
    parts = grouped_folds(data_fold, folds=2, groups_are_folds=True)
    assert [sorted({data_fold[i] for i in fold.test}) for fold in parts] == [["take1²"], ["take1³"]]
