"""Pooled utterances, intervals, paired tests and ties in the report, on hand-made RESULTS folders
(per-utterance files written as the expert writes them; nothing is trained)."""

import hashlib
import math
import xml.etree.ElementTree as ET
import zlib

import numpy as np
import pandas as pd
import pytest

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.metrics import binarize, multilabel_macro_f1
from s3prl_emo.report.results import RunPredictions, load_sweep, pool
from s3prl_emo.report.significance import analyse, condition_seed
from s3prl_emo.report.tables import SIGNIFICANCE_COLUMNS, leaderboard
from s3prl_emo.runtime.atomic import write_json_atomically
from s3prl_emo.runtime.paths import resource_dir
from s3prl_emo.stats import bootstrap_ci, bootstrap_scores, holm, paired_test, percentile_interval
from s3prl_emo.sweep import plan
from s3prl_emo.sweep.plan import RESULT_FILE, RunSpec, write_plan

CLASSES = ["angry", "sad", "neutral", "happy"]
CONDITIONS = ("IEMOCAP", "CREMA-D")
FOLDS, PER_FOLD = (1, 2, 3, 4, 5), 40
SEEDS = (1, 2)
UPSTREAMS = ("good", "twin", "bad")  # twin: good's predictions on the same side of 1/C everywhere


def _spec(upstream, condition, fold, seed=None) -> RunSpec:
    return RunSpec(upstream, None, condition, f"{condition}.yaml", fold, {}, "/data", seed=seed)


def _truth(condition: str) -> dict[int, tuple[list[str], np.ndarray]]:
    """Per fold: its test utterances and their soft labels (one draw per condition)."""
    rng = np.random.default_rng(zlib.crc32(condition.encode()))
    return {
        fold: ([f"{condition}_f{fold}_u{i:02d}.wav" for i in range(PER_FOLD)], rng.dirichlet(np.ones(4), size=PER_FOLD))
        for fold in FOLDS
    }


def _probs(spec: RunSpec, soft: np.ndarray) -> np.ndarray:
    """A run's predictions: good and twin share their noise (same condition, fold and seed)."""
    upstream = spec.upstream
    key = [zlib.crc32(spec.condition.encode()), spec.fold, spec.seed or 0, upstream == "bad"]
    noise = np.random.default_rng(key).dirichlet(np.ones(4), size=len(soft))
    if upstream == "bad":
        return noise
    good = 0.85 * soft + 0.15 * noise
    if upstream == "twin":  # moved towards 1/C by 1%: never across it
        good = 0.99 * good + 0.01 / len(CLASSES)
    return good


def _write_run(results, spec, names, soft, probs, *, digest=True, test_f1=None) -> None:
    """result.json plus exp/test_fold<k>_{probs.csv,truth.txt} in the expert's formats."""
    folder = results / spec.key
    exp = folder / "exp"
    exp.mkdir(parents=True, exist_ok=True)
    table = pd.DataFrame(probs, columns=CLASSES)
    table.insert(0, "FileName", names)
    (exp / f"test_fold{spec.fold}_probs.csv").write_text(table.to_csv(index=False, float_format="%.6f"))
    on = binarize(soft)
    lines = "".join(
        f"{n} {';'.join(c for c, f in zip(CLASSES, row, strict=True) if f)}\n" for n, row in zip(names, on, strict=True)
    )
    (exp / f"test_fold{spec.fold}_truth.txt").write_text(lines)
    written = pd.read_csv(exp / f"test_fold{spec.fold}_probs.csv")[CLASSES].to_numpy()
    f1 = multilabel_macro_f1(written, soft) if test_f1 is None else test_f1
    result = {
        **spec.to_json(),
        "classes": CLASSES,
        "dev": {"macro_f1": 0.5},
        "test": {"macro_f1": f1, **{f"f1/{c}": f1 for c in CLASSES}},
        "layer_weights": None,
        "cooccurrence": np.eye(len(CLASSES), dtype=int).tolist(),
    }
    if digest:
        files = {"probs": f"exp/test_fold{spec.fold}_probs.csv", "truth": f"exp/test_fold{spec.fold}_truth.txt"}
        sha = {f"{k}_sha256": hashlib.sha256((folder / v).read_bytes()).hexdigest() for k, v in files.items()}
        result["test_predictions"] = {**files, **sha}
    write_json_atomically(folder / RESULT_FILE, result)


def _build(results, *, seeds=SEEDS, upstreams=UPSTREAMS, digest=True) -> dict:
    """Every run of upstreams x CONDITIONS x FOLDS x seeds; returns spec.key -> (names, soft, probs)."""
    specs = [_spec(u, c, k, s) for u in upstreams for c in CONDITIONS for k in FOLDS for s in seeds]
    write_plan(results, specs)
    truths = {c: _truth(c) for c in CONDITIONS}
    written = {}
    for spec in specs:
        names, soft = truths[spec.condition][spec.fold]
        probs = _probs(spec, soft)
        _write_run(results, spec, names, soft, probs, digest=digest)
        written[spec.key] = (names, soft, probs)
    return written


def _pooled_by_hand(results, upstream, condition, seeds=SEEDS):
    """Read back every fold's files with pandas and average the seeds: the reference pooling."""
    names, truth, probs = [], [], []
    for fold in FOLDS:
        tables = [
            pd.read_csv(results / _spec(upstream, condition, fold, s).key / "exp" / f"test_fold{fold}_probs.csv")
            for s in seeds
        ]
        names += tables[0]["FileName"].tolist()
        probs.append(np.mean([t[CLASSES].to_numpy() for t in tables], axis=0))
        _, soft = _truth(condition)[fold]
        truth.append(binarize(soft).astype(float))
    order = np.argsort(names)
    return np.array(names)[order], np.concatenate(truth)[order], np.concatenate(probs)[order]


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    _build(folder)
    return folder


def test_cells_pool_folds_and_average_seeds_in_probability_space(results):
    sweep = load_sweep(results)
    assert not sweep.problems
    cell = sweep.cells[("good", "IEMOCAP")]
    assert (cell.runs, cell.folds, cell.seeds, cell.complete) == (10, 5, 2, True)
    names, truth, probs = _pooled_by_hand(results, "good", "IEMOCAP")
    assert (cell.pooled.folds, cell.pooled.seeds) == (5, 2)
    assert cell.pooled.names.tolist() == names.tolist()
    assert len(names) == len(FOLDS) * PER_FOLD
    np.testing.assert_array_equal(cell.pooled.truth, truth.astype(bool))
    np.testing.assert_allclose(cell.pooled.probs, probs, atol=1e-12)
    # mean over seeds and folds, fold-to-fold and seed-to-seed standard deviations
    scores = {(r["seed"], r["fold"]): r["test"]["macro_f1"] for r in cell.results}
    assert cell.mean == pytest.approx(np.mean(list(scores.values())))
    per_seed = [np.mean([scores[(s, k)] for k in FOLDS]) for s in SEEDS]
    per_fold = [np.mean([scores[(s, k)] for s in SEEDS]) for k in FOLDS]
    assert cell.seed_std == pytest.approx(np.std(per_seed, ddof=1))
    assert cell.std == pytest.approx(np.std(per_fold, ddof=1))


def test_intervals_tests_and_ties_follow_the_stated_procedure(results):
    sweep = load_sweep(results)
    analysis = analyse(sweep, n_resamples=400)
    averaged = {u: [] for u in UPSTREAMS}
    for condition in CONDITIONS:
        seed = condition_seed(condition)
        pooled = {u: _pooled_by_hand(results, u, condition) for u in UPSTREAMS}
        truth = pooled["good"][1]
        for upstream, (_, _, probs) in pooled.items():
            interval = analysis.intervals[(upstream, condition)]
            assert interval.value == pytest.approx(multilabel_macro_f1(probs, truth))
            low, high = bootstrap_ci(truth, probs, n_resamples=400, seed=seed)
            assert (interval.low, interval.high) == pytest.approx((low, high))
            assert interval.low <= interval.value <= interval.high
            averaged[upstream].append(bootstrap_scores(truth, probs, n_resamples=400, seed=seed))
        assert analysis.best[condition] == "good"  # twin scores the same; the first listed wins
        rows = {c.upstream: c for c in analysis.comparisons if c.condition == condition}
        assert set(rows) == {"twin", "bad"}
        p = {u: paired_test(truth, pooled[u][2], pooled["good"][2], n_resamples=400, seed=seed) for u in rows}
        adjusted = dict(zip(p, holm(list(p.values())), strict=True))
        for upstream, row in rows.items():
            assert (row.p_value, row.p_holm) == pytest.approx((p[upstream], adjusted[upstream]))
        assert rows["twin"].p_value == 1.0
        assert rows["twin"].tied_with_best
        assert rows["bad"].p_holm < 0.05
        assert not rows["bad"].tied_with_best
        assert analysis.tied[("good", condition)]
        assert analysis.tied[("twin", condition)]
        assert not analysis.tied[("bad", condition)]
    for upstream in UPSTREAMS:  # resample each condition, then average the conditions resample by resample
        low, high = percentile_interval(np.mean(averaged[upstream], axis=0))
        average = analysis.averages[upstream]
        assert (average.low, average.high) == pytest.approx((low, high))
        assert average.value == pytest.approx(np.mean([analysis.intervals[(upstream, c)].value for c in CONDITIONS]))


def test_report_files_carry_intervals_seeds_ties_and_p_values(results, tmp_path):
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "300"]) == 0
    board = pd.read_csv(out / "leaderboard.csv", dtype=str, keep_default_na=False).set_index("upstream")
    for condition in CONDITIONS:
        for column in ("ci_low", "ci_high", "seeds", "tied_with_best", "seed_std", "pooled"):
            assert f"{condition} {column}" in board.columns
        assert (board[f"{condition} seeds"] == "2").all()
        assert board[f"{condition} tied_with_best"].to_dict() == {"good": "true", "twin": "true", "bad": "false"}
        low, high = board[f"{condition} ci_low"].astype(float), board[f"{condition} ci_high"].astype(float)
        assert (low <= board[f"{condition} pooled"].astype(float)).all()
        assert (low < high).all()
    assert {"Average ci_low", "Average ci_high"} <= set(board.columns)
    assert float(board.loc["good", "Average ci_low"]) > float(board.loc["bad", "Average ci_high"])

    significance = pd.read_csv(out / "significance.csv")
    assert (out / "significance.csv").read_text().splitlines()[0] == ",".join(SIGNIFICANCE_COLUMNS)
    assert len(significance) == len(CONDITIONS) * 2
    assert set(significance["best"]) == {"good"}
    assert significance["p_value"].between(0, 1).all()
    assert (significance["p_holm"] >= significance["p_value"]).all()
    assert significance.set_index(["condition", "upstream"])["tied_with_best"].to_dict() == {
        (c, u): u == "twin" for c in CONDITIONS for u in ("twin", "bad")
    }

    markdown = (out / "leaderboard.md").read_text()
    rows = {line.split(" | ")[0].strip("| "): line for line in markdown.splitlines() if line.startswith("| ")}
    assert rows["good"].count("**") == 2 * len(CONDITIONS)
    assert rows["twin"].count("**") == 2 * len(CONDITIONS)
    assert "**" not in rows["bad"]
    assert "(5 × 2 seeds, seed sd" in rows["bad"]
    assert "pooled" in rows["bad"]
    index = (out / "index.html").read_text()
    assert index.count('<td class="tied"><strong>') == 2 * len(CONDITIONS)
    svg = index[index.index("<svg") : index.index("</svg>") + 6]
    root = ET.fromstring(svg)  # well-formed
    lines = [e for e in root.iter("line") if e.get("class") == "ci"]
    assert len(lines) == len(UPSTREAMS) * (len(CONDITIONS) + 1)  # every condition, then the average
    for line in lines:
        x1, x2 = float(line.get("x1")), float(line.get("x2"))
        assert 0 <= x1 < x2 <= float(root.get("width"))
    assert "http" not in index  # nothing to fetch at view time


def test_a_sweep_without_seeds_and_without_digests_still_gets_intervals(tmp_path):
    results = tmp_path / "results"
    _build(results, seeds=(None,), upstreams=("good", "bad"), digest=False)  # as a sweep before the seed axis
    assert (results / "good" / "IEMOCAP" / "default" / "fold1" / RESULT_FILE).is_file()
    sweep = load_sweep(results)
    cell = sweep.cells[("good", "IEMOCAP")]
    assert cell.seeds == 1
    assert math.isnan(cell.seed_std)
    assert cell.pooled is not None
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "200"]) == 0
    board = pd.read_csv(out / "leaderboard.csv").set_index("upstream")
    assert board.loc["good", "IEMOCAP seeds"] == 1
    assert board.loc["good", "IEMOCAP ci_low"] > 0
    assert "(5); pooled" in (out / "leaderboard.md").read_text()


def test_missing_per_utterance_files_leave_the_interval_empty_and_say_why(tmp_path):
    results = tmp_path / "results"
    _build(results, seeds=(None,), upstreams=("good", "bad"), digest=False)
    gone = results / _spec("bad", "CREMA-D", 3).key / "exp"
    for path in gone.iterdir():
        path.unlink()
    gone.rmdir()
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "200"]) == 0
    board = pd.read_csv(out / "leaderboard.csv", dtype=str, keep_default_na=False).set_index("upstream")
    assert board.loc["bad", "CREMA-D ci_low"] == ""
    assert board.loc["bad", "CREMA-D tied_with_best"] == ""
    assert board.loc["bad", "Average ci_low"] == ""  # not every condition has an interval
    assert board.loc["bad", "IEMOCAP ci_low"] != ""
    assert board.loc["bad", "IEMOCAP tied_with_best"] == "false"
    assert board.loc["bad", "CREMA-D mean"] != ""  # the figures of result.json are still reported
    significance = pd.read_csv(out / "significance.csv")
    assert list(significance["condition"]) == ["IEMOCAP"]
    index = (out / "index.html").read_text()
    assert "bad / CREMA-D: no interval: no per-utterance test predictions in run bad/CREMA-D/default/fold3" in index
    assert "Skipped inputs" not in index  # missing is not broken


def test_an_incomplete_cell_has_no_interval(tmp_path):
    results = tmp_path / "results"
    _build(results, upstreams=("good", "bad"))
    (results / _spec("good", "IEMOCAP", 2, 2).key / RESULT_FILE).unlink()
    sweep = load_sweep(results)
    cell = sweep.cells[("good", "IEMOCAP")]
    assert not cell.complete
    assert cell.pooled is None
    assert cell.pooled_note == "9 of 10 planned runs finished"
    analysis = analyse(sweep, n_resamples=100)
    assert analysis.best["IEMOCAP"] == "bad"
    assert [c.condition for c in analysis.comparisons] == ["CREMA-D"]
    board = leaderboard(sweep, analysis=analysis).set_index("upstream")
    assert math.isnan(board.loc["good", "IEMOCAP ci_low"])
    assert math.isnan(board.loc["good", "Average"])


def _corrupt_value(folder, fold):
    path = folder / "exp" / f"test_fold{fold}_probs.csv"
    text = path.read_text().splitlines()
    text[3] = text[3].rsplit(",", 1)[0] + ",1.5"
    path.write_text("\n".join(text) + "\n")


def _unknown_class(folder, fold):
    path = folder / "exp" / f"test_fold{fold}_truth.txt"
    lines = path.read_text().splitlines()
    lines[0] = lines[0].split(" ")[0] + " contempt"
    path.write_text("\n".join(lines) + "\n")


def _outside_link(folder, fold):
    path = folder / "exp" / f"test_fold{fold}_probs.csv"
    outside = folder.parents[4] / f"outside_{fold}.csv"
    outside.write_text(path.read_text())
    path.unlink()
    path.symlink_to(outside)


def _another_folds_files(folder, fold):
    """The probabilities of another run, swapped in: names differ from the truth file's."""
    other = folder.parent.parent / "default" / f"fold{fold % 5 + 1}" / "exp" / f"test_fold{fold % 5 + 1}_probs.csv"
    (folder / "exp" / f"test_fold{fold}_probs.csv").write_text(other.read_text())


def _shuffled_predictions(folder, fold):
    """Same names, other predictions: only the result's macro-F1 can tell (no digest)."""
    path = folder / "exp" / f"test_fold{fold}_probs.csv"
    table = pd.read_csv(path)
    table[CLASSES] = np.roll(table[CLASSES].to_numpy(), 1, axis=1)
    path.write_text(table.to_csv(index=False, float_format="%.6f"))


BROKEN = {
    "value": (_corrupt_value, "line 4, column happy: '1.5' is not a probability in [0, 1]"),
    "class": (_unknown_class, "line 1: 'contempt' is not one of the classes"),
    "link": (_outside_link, "leads outside"),
    "names": (_another_folds_files, "line 1 is not about"),
    "shuffled": (_shuffled_predictions, "not the predictions this result was computed from"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_bad_prediction_files_are_named_skipped_and_never_pooled(tmp_path, caplog, case):
    results = tmp_path / "results"
    _build(results, seeds=(None,), upstreams=("good", "bad"), digest=False)
    change, message = BROKEN[case]
    change(results / _spec("good", "IEMOCAP", 2).key, 2)
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "100"]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert message in warnings[0], warnings
    assert "good/IEMOCAP/default/fold2" in warnings[0], warnings
    board = pd.read_csv(out / "leaderboard.csv", dtype=str, keep_default_na=False).set_index("upstream")
    assert board.loc["good", "IEMOCAP ci_low"] == ""
    assert board.loc["good", "CREMA-D ci_low"] != ""
    assert board.loc["good", "IEMOCAP mean"] != ""  # result.json itself is sound
    index = (out / "index.html").read_text()
    assert "Skipped inputs (1)" in index
    assert "good / IEMOCAP: no interval: the predictions of run" in index


def test_a_digest_that_no_longer_matches_is_named(tmp_path, caplog):
    results = tmp_path / "results"
    _build(results, seeds=(1,), upstreams=("good", "bad"))
    path = results / _spec("bad", "CREMA-D", 4, 1).key / "exp" / "test_fold4_truth.txt"
    path.write_text(path.read_text().replace("\n", " \n", 1))
    sweep = load_sweep(results)
    assert len(sweep.problems) == 1
    assert "SHA-256 differs" in sweep.problems[0]
    assert sweep.cells[("bad", "CREMA-D")].pooled is None
    assert sweep.cells[("good", "CREMA-D")].pooled is not None


def test_pooling_refuses_an_utterance_in_two_folds_and_seeds_that_saw_other_utterances():
    truth = np.array([[True, False]])
    a = RunPredictions(1, None, np.array(["x"]), truth, np.array([[0.9, 0.1]]))
    b = RunPredictions(2, None, np.array(["x"]), truth, np.array([[0.9, 0.1]]))
    with pytest.raises(InvalidInputError, match=r"'x' is in the test split of folds \[1, 2\]"):
        pool([a, b])
    c = RunPredictions(1, 2, np.array(["y"]), truth, np.array([[0.9, 0.1]]))
    with pytest.raises(InvalidInputError, match="fold 1: seeds None and 2 were tested on other utterances"):
        pool([a, c])


def test_seed_axis_in_the_plan_keeps_old_folders_and_old_run_files(synth_root, tmp_path, caplog):
    old = plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1, 2])
    assert [r.key for r in old] == ["fbank/SYNTH/default/fold1", "fbank/SYNTH/default/fold2"]
    seeded = plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1], seeds=plan.parse_seeds("2,1"))
    assert [(r.key, r.seed) for r in seeded] == [
        ("fbank/SYNTH/default+seed=1/fold1", 1),
        ("fbank/SYNTH/default+seed=2/fold1", 2),
    ]
    before = {k: v for k, v in old[0].to_json().items() if k != "seed"}  # a run.json written before the seed axis
    assert RunSpec.from_json(before) == old[0]
    assert old[0].seed is None
    with pytest.raises(InvalidInputError, match="--seeds"):
        plan.parse_seeds("1,x")
    command = ["sweep", "--upstreams", "fbank", "--conditions", "SYNTH", "--root", str(synth_root),
               "--out", str(tmp_path / "r"), "--seeds", "1,2", "-o", "args.seed=3", "--dry-run"]  # fmt: skip
    assert main(command) == 2
    assert "args.seed is set by this command" in caplog.text


def test_worker_passes_the_seed_to_the_trainer(monkeypatch, tmp_path):
    from s3prl_emo.sweep import worker

    calls = []
    monkeypatch.setattr(worker, "run_downstream", calls.append)
    config = str(resource_dir("downstream_configs") / "SYNTH.yaml")
    spec = RunSpec("fbank", None, "SYNTH", config, 1, {}, "/data", seed=7)
    worker._train(spec, tmp_path, "cpu")
    worker._train(RunSpec("fbank", None, "SYNTH", config, 1, {}, "/data"), tmp_path, "cpu")
    assert calls[0][calls[0].index("--seed") + 1] == "7"
    assert "--seed" not in calls[1]


def test_names_in_the_forest_plot_are_text(tmp_path):
    hostile = "<img src=x onerror=alert(1)>&"
    results = tmp_path / "results"
    _build(results, seeds=(None,), upstreams=("good", hostile))
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out), "--resamples", "100"]) == 0
    index = (out / "index.html").read_text()
    assert "<img src=x" not in index
    assert "&lt;img src=x onerror=alert(1)&gt;&amp;" in index
    svg = ET.fromstring(index[index.index("<svg") : index.index("</svg>") + 6])
    assert hostile in [t.text for t in svg.iter("text")]
