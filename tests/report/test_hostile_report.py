"""Hostile or careless input to `s3prl-emo report`, `trust` and `trust-compare`, through the commands.

Each case: no input removed, nothing written outside OUT, nothing unchecked becomes a figure,
and a bad file is named (a one-line error before any output, or a warning and a skip).
"""

import json

import numpy as np
import pandas as pd
import pytest

from s3prl_emo.cli import main
from s3prl_emo.runtime.atomic import write_json_atomically
from s3prl_emo.runtime.guards import OUTPUT_MARKER
from s3prl_emo.sweep.plan import PLAN_FILE, RESULT_FILE, RunSpec, write_plan
from s3prl_emo.trust.profile import profile

CLASSES = ["angry", "sad", "neutral", "happy"]
POISON = 0.987  # a test score only broken or outside files hold: it must never reach the report


def _spec(upstream="fbank", condition="IEMOCAP", fold=1, grid=None) -> RunSpec:
    return RunSpec(upstream, None, condition, f"{condition}.yaml", fold, grid or {}, "/data")


def _result(spec: RunSpec, dev=0.5, test=0.4) -> dict:
    return {
        **spec.to_json(),
        "classes": CLASSES,
        "dev": {"macro_f1": dev, "loss": 1.0},
        "test": {"macro_f1": test, **{f"f1/{c}": test for c in CLASSES}, "loss": 1.1},
        "layer_weights": None,
        "cooccurrence": np.eye(len(CLASSES), dtype=int).tolist(),
    }


def _sweep(folder, specs, results) -> None:
    write_plan(folder, specs)
    for spec, result in zip(specs, results, strict=True):
        if result is not None:
            write_json_atomically(folder / spec.key / RESULT_FILE, result)


def _snapshot(folder) -> dict:
    """Every file under ``folder`` (links not followed) with its content."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink() else None
        for p in sorted(folder.rglob("*"))
    }


def _report_text(out) -> str:
    return "".join((out / name).read_text() for name in ("leaderboard.md", "leaderboard.csv", "leaderboard.html"))


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    specs = [_spec(fold=k) for k in (1, 2)]
    _sweep(folder, specs, [_result(s) for s in specs])
    return folder


# -- 1. the output folder ----------------------------------------------------------------------


@pytest.mark.parametrize("where", ["results", "parent", "docs", "file"])
def test_report_out_never_replaces_an_input_or_foreign_folder(results, tmp_path, caplog, where):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "notes.md").write_text("keep me")
    (tmp_path / "a-file").write_text("keep me too")
    out = {"results": results, "parent": tmp_path, "docs": docs, "file": tmp_path / "a-file"}[where]
    before = _snapshot(tmp_path)
    assert main(["report", str(results), "--out", str(out)]) == 2
    assert _snapshot(tmp_path) == before  # nothing removed, nothing written
    message = {"results": "would replace the input", "parent": "would replace the input", "docs": "not an earlier"}
    assert f"--out {out}" in caplog.text
    assert message.get(where, "is a file") in caplog.text
    assert len([r for r in caplog.records if r.levelname == "ERROR"]) == 1


def test_a_report_written_before_markers_existed_is_replaced_but_a_look_alike_is_not(results, tmp_path):
    old = results / "report"  # the default --out of earlier versions: no marker
    old.mkdir()
    (old / "leaderboard.csv").write_text("upstream\n")
    (old / "index.html").write_text("<html></html>")
    assert main(["report", str(results)]) == 0
    assert (old / OUTPUT_MARKER).is_file()
    assert "IEMOCAP" in (old / "leaderboard.md").read_text()
    site = tmp_path / "site"  # a folder of someone's pages: no leaderboard.csv
    site.mkdir()
    (site / "index.html").write_text("mine")
    assert main(["report", str(results), "--out", str(site)]) == 2
    assert (site / "index.html").read_text() == "mine"


def test_out_is_checked_before_the_results_are_read(tmp_path, caplog):
    (tmp_path / "a-file").write_text("x")
    assert main(["report", str(tmp_path / "no-results"), "--out", str(tmp_path / "a-file")]) == 2
    assert "is a file" in caplog.text
    assert "sweep.json" not in caplog.text


def test_an_earlier_report_is_replaced_and_the_default_folder_works(results, tmp_path):
    assert main(["report", str(results)]) == 0  # RESULTS/report
    assert main(["report", str(results)]) == 0  # its own earlier output: replaced
    report = results / "report"
    assert json.loads((report / OUTPUT_MARKER).read_text()) == {"command": "report"}
    assert (report / "index.html").is_file()
    other = tmp_path / "elsewhere"
    assert main(["report", str(results), "--out", str(other)]) == 0
    assert main(["report", str(results), "--out", str(other)]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "results"]  # no staging left behind


# -- 2. paths read from RESULTS stay inside it ---------------------------------------------------


def test_results_reached_through_links_or_dotdot_are_named_and_skipped(results, tmp_path, caplog):
    outside = tmp_path / "outside"
    outside.mkdir()
    # a result.json that is a symbolic link to a file outside RESULTS
    linked = _spec(fold=3)
    write_json_atomically(outside / "result.json", _result(linked, dev=0.9, test=POISON))
    # a run folder that is a symbolic link to a folder outside RESULTS
    folder_link = _spec(fold=4)
    write_json_atomically(outside / "fold4" / RESULT_FILE, _result(folder_link, dev=0.9, test=POISON))
    # a plan entry whose upstream name leads up and out of RESULTS
    dotdot = _spec(upstream="..", condition="outside", fold=1)
    write_json_atomically(
        tmp_path / "outside" / "default" / "fold1" / RESULT_FILE, _result(dotdot, dev=0.9, test=POISON)
    )
    plan = json.loads((results / PLAN_FILE).read_text())
    plan["runs"] += [linked.to_json(), folder_link.to_json(), dotdot.to_json()]
    (results / PLAN_FILE).write_text(json.dumps(plan))
    (results / linked.key).mkdir(parents=True)
    (results / linked.key / RESULT_FILE).symlink_to(outside / "result.json")
    (results / folder_link.key).symlink_to(outside / "fold4")
    assert (results / ".." / "outside" / "default" / "fold1" / RESULT_FILE).is_file()  # reachable without the check

    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert str(POISON) not in _report_text(out)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 3
    assert all("skipped" in w for w in warnings)
    for spec in (linked, folder_link):
        assert any(spec.key in w and "leads outside" in w for w in warnings)
    assert any("upstream '..'" in w and "not a run folder inside RESULTS" in w for w in warnings)
    index = (out / "index.html").read_text()
    assert "Skipped inputs (3)" in index
    assert "Incomplete sweep: 2 of 4 planned runs finished" in index


def test_a_plan_that_is_a_link_outside_results_is_refused(tmp_path, caplog):
    results, elsewhere = tmp_path / "results", tmp_path / "elsewhere"
    _sweep(elsewhere, [_spec()], [_result(_spec())])
    results.mkdir()
    (results / PLAN_FILE).symlink_to(elsewhere / PLAN_FILE)
    assert main(["report", str(results), "--out", str(tmp_path / "report")]) == 2
    assert "leads outside" in caplog.text
    assert not (tmp_path / "report").exists()


# -- 3. what a result.json holds is checked --------------------------------------------------------

NAN = float("nan")
BROKEN = {  # fold -> (what the file holds, text the warning must contain)
    3: (b"", "not valid JSON"),
    4: (b"this is not json", "not valid JSON"),
    5: (b"\xff\xfe\x00garbage", "not UTF-8"),
    6: (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    7: ([], "not a result object"),
    8: ({"upstream": None}, "upstream is None"),
    9: ({"test": {"macro_f1": "0.9"}}, "test.macro_f1: '0.9' is not a number"),
    10: ({"test": {"macro_f1": NAN}}, "test.macro_f1: nan is not a finite number"),
    11: ({"test": {"macro_f1": 1e300}}, "test.macro_f1: 1e+300 is not a finite number in [0, 1]"),
    12: ({"test": {"f1/sad": -0.1}}, "test.f1/sad: -0.1"),
    13: ({"test": {"macro_f1": POISON, "f1/angry": POISON}, "classes": "angry"}, "classes 'angry' is not a list"),
    14: ({"classes": ["angry", "angry", "sad", "happy"]}, "is not a list of distinct class names"),
    15: ({"dev": {"macro_f1": 0.9, "loss": float("inf")}}, "dev.loss: inf is not a finite number"),
    16: ({"cooccurrence": [[1, 2], [3, 4]]}, "cooccurrence is not a 4 x 4 matrix"),
    17: ({"cooccurrence": [[-1, 0, 0, 0]] * 4}, "cooccurrence[0][0]: -1 is not a count"),
    18: ({"cooccurrence": [[10**400, 0, 0, 0]] * 4}, "is not a count"),
    19: ({"layer_weights": [0.1, NAN]}, "layer_weights[1]: nan"),
    20: ({"test": {"macro_f1": POISON}, "missing_f1": "neutral"}, "test: no f1/neutral"),
    21: ({"fold": 1}, "fold is 1 but the plan puts run fbank/IEMOCAP/default/fold21 here"),
    22: ({"classes": ["angry", "sad", "neutral", "fear"], "test_per_class": True}, "differ from the ['angry'"),
}


def _broken_content(spec: RunSpec, change) -> bytes:
    if isinstance(change, bytes):
        return change
    if not isinstance(change, dict):
        return json.dumps(change).encode()
    result = _result(spec, dev=0.9, test=POISON)
    missing = change.pop("missing_f1", None)
    per_class = change.pop("test_per_class", False)
    for key, value in change.items():
        result[key] = {**result[key], **value} if isinstance(value, dict) and key in ("dev", "test") else value
    if missing:
        del result["test"][f"f1/{missing}"]
    if per_class:
        result["test"].update({f"f1/{c}": POISON for c in result["classes"]})
        result["cooccurrence"] = np.eye(len(result["classes"]), dtype=int).tolist()
    return json.dumps(result).encode()  # NaN and inf written as JSON's NaN / Infinity, as json.dumps does


def _copy(change):
    return dict(change) if isinstance(change, dict) else change


def test_broken_result_files_are_named_skipped_and_never_figures(tmp_path, caplog):
    results = tmp_path / "results"
    specs = [_spec(fold=k) for k in (1, 2, *BROKEN, 99)]
    _sweep(results, specs, [_result(specs[0]), _result(specs[1]), *([None] * (len(BROKEN) + 1))])
    for spec in specs[2:-1]:
        (results / spec.key / RESULT_FILE).write_bytes(_broken_content(spec, _copy(BROKEN[spec.fold][0])))
    (results / specs[-1].key / RESULT_FILE).mkdir()  # named like a result, not a regular file
    before = _snapshot(results)

    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    assert _snapshot(results) == before
    text = _report_text(out) + (out / "index.html").read_text()
    assert str(POISON) not in text
    assert "nan" not in (out / "leaderboard.md").read_text().lower()
    warnings = {r.getMessage() for r in caplog.records if r.levelname == "WARNING"}
    for spec in specs[2:-1]:
        expected = BROKEN[spec.fold][1]
        named = [w for w in warnings if f"/fold{spec.fold}/{RESULT_FILE}" in w]
        assert len(named) == 1, (spec.fold, named)
        assert expected in named[0], (spec.fold, named)
    assert any(f"fold99/{RESULT_FILE}: not a regular file" in w for w in warnings)
    assert len(warnings) == len(BROKEN) + 1
    board = pd.read_csv(out / "leaderboard.csv")
    assert board.loc[0, "IEMOCAP folds"] == 2
    assert board.loc[0, "IEMOCAP mean"] == pytest.approx(0.4)
    index = (out / "index.html").read_text()
    assert f"Skipped inputs ({len(BROKEN) + 1})" in index
    assert "1e+300 is not a finite number" in index
    assert f"2 of {len(specs)} planned runs finished" in index
    assert f"{len(BROKEN) + 1} input(s) skipped" in (out / "leaderboard.md").read_text()


def test_bad_plan_entries_are_named_and_skipped(results, tmp_path, caplog):
    plan = json.loads((results / PLAN_FILE).read_text())
    good = plan["runs"][0]
    plan["runs"] += [
        "not an entry",
        {**good, "fold": "1/../../../../etc"},
        {**good, "upstream": 7},
        {**good, "grid": ["lr"]},
        {**good, "surprise": 1},
        good,  # the same run twice
        {**good, "upstream": "u" * 100_000},
    ]
    (results / PLAN_FILE).write_text(json.dumps(plan))
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [w.split(": ", 2)[1] for w in warnings] == [f"run {k}" for k in range(3, 10)]
    assert "fold" in warnings[1]
    assert "counted once" in warnings[5]
    assert len(warnings[6]) < 600
    assert warnings[6].endswith("characters; skipped")
    assert pd.read_csv(out / "leaderboard.csv").loc[0, "IEMOCAP expected"] == 2


def test_a_plan_without_a_usable_entry_is_one_error(tmp_path, caplog):
    results = tmp_path / "results"
    results.mkdir()
    (results / PLAN_FILE).write_text(json.dumps({"runs": [{"upstream": 1}]}))
    assert main(["report", str(results), "--out", str(tmp_path / "report")]) == 2
    assert "no usable run" in caplog.text
    assert not (tmp_path / "report").exists()


# -- 4. grid points are chosen by finite dev scores only -------------------------------------------


@pytest.mark.parametrize("dev", [NAN, None, "0.99", 5.0])
def test_a_broken_dev_score_never_selects_a_grid_point(tmp_path, caplog, dev):
    results = tmp_path / "results"
    broken = [_spec(fold=k, grid={"optimizer.lr": "1e-3"}) for k in (1, 2)]
    sound = [_spec(fold=k, grid={"optimizer.lr": "1e-4"}) for k in (1, 2)]
    _sweep(results, broken + sound, [*(_result(s, dev=0.9, test=POISON) for s in broken), *map(_result, sound)])
    for spec in broken:  # listed first in the plan: a NaN would win max() there
        result = json.loads((results / spec.key / RESULT_FILE).read_text())
        if dev is None:
            del result["dev"]["macro_f1"]
        else:
            result["dev"]["macro_f1"] = dev
        (results / spec.key / RESULT_FILE).write_text(json.dumps(result))
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    board = pd.read_csv(out / "leaderboard.csv")
    assert board.loc[0, "IEMOCAP grid"] == "optimizer.lr=1e-4"
    assert board.loc[0, "IEMOCAP mean"] == pytest.approx(0.4)
    assert str(POISON) not in _report_text(out)
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 2
    assert all("dev" in w and "macro_f1" in w and "skipped" in w for w in warnings)


# -- 6. names are text wherever they are written -------------------------------------------------

SCRIPT = "<script>alert(1)</script>"
HOSTILE_UPSTREAM = f"={SCRIPT}$\\undefinedcommand$"
HOSTILE_CONDITION = "a|b [x](javascript:alert(1)) <img src=x onerror=alert(1)>"


def test_names_are_escaped_in_html_markdown_csv_and_charts(tmp_path):
    results = tmp_path / "results"
    specs = [_spec(upstream=u, condition=c) for u in (HOSTILE_UPSTREAM, "a=b", "a+b") for c in (HOSTILE_CONDITION, "X")]
    _sweep(results, specs, [_result(s) for s in specs])
    for spec in specs[:2]:  # class names with mathtext and markup, too
        result = json.loads((results / spec.key / RESULT_FILE).read_text())
        result["classes"] = ["$\\frac$", "<b>", "ok", "=1+1"]
        result["test"] = {"macro_f1": 0.4, **{f"f1/{c}": 0.4 for c in result["classes"]}}
        (results / spec.key / RESULT_FILE).write_text(json.dumps(result))
    out = tmp_path / "report"
    assert main(["report", str(results), "--out", str(out)]) == 0
    for name in ("index.html", "leaderboard.html"):
        page = (out / name).read_text()
        assert "<script" not in page
        assert "<img src=x" not in page
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
        assert "&lt;img src=x onerror=alert(1)&gt;" in page
    markdown = (out / "leaderboard.md").read_text()
    assert "<script" not in markdown
    assert "&lt;script&gt;" in markdown
    assert "a\\|b \\[x\\](javascript:alert(1))" in markdown
    board = pd.read_csv(out / "leaderboard.csv")
    assert board.loc[0, "upstream"] == f"'{HOSTILE_UPSTREAM}"
    charts = sorted(p.name for p in (out / "charts").iterdir())
    assert len([c for c in charts if c.startswith("f1_")]) == len(specs)  # "a=b" and "a+b" keep their own
    assert all(f'src="charts/{c}"' in (out / "index.html").read_text() for c in charts)


# -- 1, 5, 6 for trust-compare, 1 and 7 for trust --------------------------------------------------


def _trust_json(folder, **changes) -> None:
    report = {
        "skipped": {},
        "failed": {},
        "performance": {"macro_f1": 0.6},
        "calibration": {"ece_macro": 0.05, "macro_f1": 0.6},
        "fairness": {"macro": {"equalized_odds_difference": 0.2}},
        "privacy": {"uar": 0.9},
        "safety": {"fgsm": {"45": {"success_rate": 0.3}, "25": {"success_rate": 0.8}}},
        "sustainability": {"macs_6s": 1e9},
    }
    for key, value in changes.items():
        report[key] = value
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "trust.json").write_text(json.dumps(report))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"privacy": {"uar": "0.9"}}, "privacy.uar: '0.9' is not a number"),
        ({"privacy": {"uar": NAN}}, "privacy.uar: nan is not a finite number"),
        ({"calibration": {"ece_macro": 7.0}}, "calibration.ece_macro: 7.0 is not a finite number in [0.0, 1.0]"),
        ({"performance": {"macro_f1": True}}, "performance.macro_f1: True is not a number"),
        ({"sustainability": {"macs_6s": -1}}, "sustainability.macs_6s: -1"),
        ({"safety": {"fgsm": {"loud": {"success_rate": 0.1}}}}, "safety.fgsm key 'loud' is not an SNR"),
        ({"safety": {"fgsm": {"NaN": {"success_rate": 0.1}}}}, "safety.fgsm key 'NaN' is not an SNR"),
        ({"fairness": ["macro"]}, "fairness is list, not an object"),
        ({"skipped": "none"}, "not a trust report"),
    ],
)
def test_trust_compare_refuses_a_bad_figure_naming_file_and_key(tmp_path, caplog, changes, message):
    _trust_json(tmp_path / "good")
    _trust_json(tmp_path / "bad", **changes)
    out = tmp_path / "compare"
    assert main(["trust-compare", str(tmp_path / "good"), str(tmp_path / "bad"), "--out", str(out)]) == 2
    assert not out.exists()
    assert f"{tmp_path / 'bad' / 'trust.json'}: " in caplog.text
    assert message in caplog.text


def test_trust_compare_output_folder_inputs_links_and_names(tmp_path, caplog):
    first, second = tmp_path / HOSTILE_UPSTREAM.replace("/", "_"), tmp_path / "second"
    _trust_json(first)
    _trust_json(second, privacy=None)  # null: n/a, not an error
    before = _snapshot(tmp_path)
    for out in (first, tmp_path, tmp_path / "second" / "trust.json"):
        assert main(["trust-compare", str(first), str(second), "--out", str(out)]) == 2
    assert main(["trust-compare", str(first), str(first), "--out", str(tmp_path / "c")]) == 2
    assert _snapshot(tmp_path) == before
    assert "would replace the input" in caplog.text
    assert "is a file" in caplog.text
    assert "given twice" in caplog.text

    out = tmp_path / "compare"
    assert main(["trust-compare", str(first), str(second), "--out", str(out)]) == 0
    assert main(["trust-compare", str(first), str(second), "--out", str(out)]) == 0  # its own earlier output
    markdown = (out / "compare.md").read_text()
    assert "<script" not in markdown
    assert "&lt;script&gt;" in markdown
    table = pd.read_csv(out / "compare.csv", keep_default_na=False)
    assert table.loc[0, "model"].startswith("'=")
    assert table.loc[1, "privacy scaled"] == "n/a"
    assert (out / "compare.png").read_bytes()[:4] == b"\x89PNG"

    outside = tmp_path / "outside"
    _trust_json(outside)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "trust.json").symlink_to(outside / "trust.json")
    assert main(["trust-compare", str(first), str(linked), "--out", str(tmp_path / "c2")]) == 2
    assert "leads outside" in caplog.text
    assert not (tmp_path / "c2").exists()


def test_a_non_finite_figure_is_not_scored():
    assert profile({"privacy": {"uar": NAN}})["privacy"]["scaled"] is None  # clipping would have said 0
    assert profile({"privacy": {"uar": "0.1"}})["privacy"]["scaled"] is None


@pytest.mark.parametrize("where", ["exp", "parent", "file", "foreign"])
def test_trust_out_never_replaces_the_checkpoint_folder(tmp_path, caplog, where):
    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "dev-best.ckpt").write_bytes(b"not read: --out is checked first")
    (tmp_path / "a-file").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.md").write_text("keep")
    out = {"exp": exp, "parent": tmp_path, "file": tmp_path / "a-file", "foreign": tmp_path / "foreign"}[where]
    before = _snapshot(tmp_path)
    assert main(["trust", "-e", str(exp / "dev-best.ckpt"), "--out", str(out)]) == 2
    assert _snapshot(tmp_path) == before
    assert f"--out {out}" in caplog.text
    assert "not a checkpoint" not in caplog.text.lower()
