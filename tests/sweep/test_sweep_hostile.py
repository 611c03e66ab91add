"""Hostile or careless input to `s3prl-emo sweep`: names that are code, paths that leave RESULTS,
overrides of what the sweep sets, unknown upstreams, shared folders, broken read-back files.

Each case either treats the value as data or fails before anything is written, with one line
that names the flag, file or value."""

import json
import os
import re
import shutil
import socket
import sys

import pytest

from s3prl_emo.cli import main
from s3prl_emo.errors import InvalidInputError
from s3prl_emo.runtime.paths import resource_dir
from s3prl_emo.sweep import local, plan, worker
from s3prl_emo.sweep.state import RunState
from s3prl_emo.sweep.worker import STATE_FILE

# S3PRL splits -o at ',,' and '=' and evals each value: spliced into -o, this name runs code
# (it creates PWNED in the working folder); as data it is just a folder name.
PAYLOAD = "x,,args.seed=__import__('pathlib').Path('PWNED').touch() or 1,,args.y="


def sweep(*args: str) -> int:
    return main(["sweep", *map(str, args)])


def error(caplog) -> str:
    """The one line the command logged as its error."""
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1, errors
    assert "\n" not in errors[0], errors
    return errors[0]


def listing(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


@pytest.fixture
def no_workers(monkeypatch):
    """Plan through the command, but start no worker: the pending runs are recorded instead."""
    started = []

    def run_local(pending, **kwargs):
        started.extend(pending)
        return 0

    monkeypatch.setattr(local, "run_local", run_local)
    return started


@pytest.fixture
def payload_root(synth_root, tmp_path):
    """A data root whose folder name is the payload (the corpus linked inside)."""
    root = tmp_path / PAYLOAD
    root.mkdir()
    (root / "SYNTH").symlink_to(synth_root / "SYNTH")
    return root


# -- 1. values reach S3PRL as data --------------------------------------------------------------


def test_a_root_and_checkpoint_named_as_code_reach_s3prl_as_data(
    payload_root, tiny_wavlm, tmp_path, monkeypatch, no_workers
):
    from s3prl import run_downstream as s3prl_run_downstream
    from s3prl.utility.helper import override

    monkeypatch.chdir(tmp_path)
    models = tmp_path / "m (it's $HOME; `id`)"  # quotes and shell characters, nothing S3PRL splits
    models.mkdir()
    ckpt = models / "tiny.pt"
    shutil.copy(tiny_wavlm, ckpt)
    out = tmp_path / "results"
    code = sweep("--upstreams", "fbank,wavlm_local", "--upstream-ckpt", f"wavlm_local={ckpt}", "--conditions",
                 "SYNTH", "--folds", "2", "--root", payload_root, "--out", out,
                 "-o", "config.runner.total_steps=2")  # fmt: skip
    assert code == 0
    assert len(no_workers) == 2
    for item in no_workers:
        argv = []
        monkeypatch.setattr(worker, "run_downstream", argv.extend)
        worker._train(item.spec, item.folder, "cpu")
        monkeypatch.setattr(sys, "argv", ["run_downstream.py", *argv])
        args, config, _ = s3prl_run_downstream.get_downstream_args()  # S3PRL's own parsing and eval of -o
        datarc = config["downstream_expert"]["datarc"]
        assert datarc["root"] == f"{payload_root}/"
        assert datarc["test_fold"] == "fold2"
        assert config["runner"]["total_steps"] == 2
        assert args.expdir == str(item.folder / "exp")
        if item.spec.upstream == "wavlm_local":
            assert args.upstream_ckpt == str(ckpt)
    assert not (tmp_path / "PWNED").exists()
    # the same root spliced into -o as text, as S3PRL receives it there, does run the payload
    override(f"config.downstream_expert.datarc.root='{payload_root}/'", args, config)
    assert (tmp_path / "PWNED").exists()


def test_a_checkpoint_path_s3prl_would_split_is_refused_before_anything_is_written(
    synth_root, tmp_path, monkeypatch, caplog
):
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / PAYLOAD
    folder.mkdir()
    (folder / "tiny.pt").write_bytes(b"weights")
    out = tmp_path / "results"
    code = sweep("--upstreams", "wavlm_local", "--upstream-ckpt", f"wavlm_local={folder / 'tiny.pt'}",
                 "--conditions", "SYNTH", "--root", synth_root, "--out", out)  # fmt: skip
    assert code == 2
    assert not out.exists()
    assert not (tmp_path / "PWNED").exists()
    line = error(caplog)
    assert "--upstream-ckpt wavlm_local: the value" in line
    assert "cannot be handed to S3PRL as data" in line


def test_override_values_are_literals_never_run(synth_root, tmp_path, monkeypatch, no_workers):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "results"
    hostile = "args.seed=__import__('pathlib').Path('PWNED').touch() or 1"
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1", "--root", synth_root,
                 "--out", out, "-o", f"config.optimizer.lr=1e-3,,{hostile}") == 0  # fmt: skip
    spec = no_workers[0].spec
    assert plan.parse_overrides(spec.overrides) == {
        "config.optimizer.lr": 0.001,
        "args.seed": "__import__('pathlib').Path('PWNED').touch() or 1",  # text, as S3PRL keeps what it cannot eval
    }
    from s3prl.utility.helper import override

    args, config = type("Args", (), {})(), {}
    override(spec.override_string(), args, config)  # what S3PRL does with the -o the worker passes
    assert config["optimizer"]["lr"] == 0.001
    assert isinstance(args.seed, str)
    assert not (tmp_path / "PWNED").exists()


# -- 2. names map to folders inside RESULTS -----------------------------------------------------


@pytest.mark.parametrize(
    ("upstreams", "message"),
    [
        ("..", r"--upstreams '\.\.' maps to the folder name '\.\.'"),
        ("fbank,.hidden", r"--upstreams '\.hidden' maps to the folder name"),
        ("fbank,fbank", "--upstreams: fbank is given twice"),
        ("fbank/../..", "S3PRL's hub has no upstream 'fbank/../..'"),
    ],
)
def test_upstream_names_that_are_no_folder_of_their_own_are_refused(synth_root, tmp_path, caplog, upstreams, message):
    out = tmp_path / "results"
    assert sweep("--upstreams", upstreams, "--conditions", "SYNTH", "--root", synth_root, "--out", out) == 2
    assert not out.exists()
    assert listing(tmp_path) == []
    assert re.search(message, error(caplog))


def test_condition_files_that_share_or_leave_a_folder_are_refused(synth_root, tmp_path, caplog):
    config = resource_dir("downstream_configs") / "SYNTH.yaml"
    for name in ("a/SYNTH.yaml", "b/SYNTH.yaml", "c/...yaml"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        shutil.copy(config, tmp_path / name)
    out = tmp_path / "results"
    both = f"{tmp_path / 'a/SYNTH.yaml'},{tmp_path / 'b/SYNTH.yaml'}"
    assert sweep("--upstreams", "fbank", "--conditions", both, "--root", synth_root, "--out", out) == 2
    line = error(caplog)
    assert "a/SYNTH.yaml and " in line
    assert "b/SYNTH.yaml both map to the folder 'SYNTH'" in line
    caplog.clear()
    dots = str(tmp_path / "c/...yaml")
    assert sweep("--upstreams", "fbank", "--conditions", dots, "--root", synth_root, "--out", out) == 2
    assert "maps to the folder name '..'" in error(caplog)
    assert not out.exists()


def test_grid_points_that_share_a_folder_are_refused(synth_root, tmp_path, caplog):
    out = tmp_path / "results"
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", synth_root, "--out", out,
                 "--grid", "optimizer.name=a b,a_b") == 2  # fmt: skip
    assert "both map to the folder 'optimizer.name=a_b'" in error(caplog)
    assert not out.exists()


# -- 3. what the sweep sets itself --------------------------------------------------------------


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("-o", "args.expdir=/tmp/elsewhere", "args.expdir is set by this command"),
        ("-o", "config.runner.total_steps=2,, args.expdir =/tmp/elsewhere", "args.expdir is set by this command"),
        ("-o", "config.downstream_expert.datarc.root='/other'", "datarc.root is set by this command"),
        ("-o", "config.downstream_expert.datarc.test_fold='fold2'", "datarc.test_fold is set by this command"),
        ("-o", "config.downstream_expert={'datarc': {}}", "config.downstream_expert is set by this command"),
        ("-o", "args.upstream=wavlm_large", "args.upstream is set by this command"),
        ("-o", "args.past_exp=/tmp/x.ckpt", "args.past_exp is set by this command"),
        ("-o", "config.optimizer.lr=1e-3,,config.optimizer.lr=1e-4", "config.optimizer.lr is given twice"),
        ("-o", "config.optimizer.name=a=b", "is not KEY=VALUE"),
        ("-o", "args.a.b=1", "'args.a.b' is not an S3PRL override key"),
        ("--grid", "downstream_expert.datarc.test_fold=fold1,fold2", "datarc.test_fold is set by the sweep itself"),
        ("--grid", "downstream_expert.datarc=1,2", "config.downstream_expert.datarc is set by the sweep itself"),
    ],
)
def test_overrides_of_what_the_sweep_sets_are_refused(synth_root, tmp_path, caplog, flag, value, message):
    out = tmp_path / "results"
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", synth_root, "--out", out, flag, value) == 2
    assert message in error(caplog)
    assert not out.exists()
    assert not (tmp_path.parent / "elsewhere").exists()


def test_an_override_of_a_grid_axis_is_refused(synth_root, tmp_path, caplog):
    out = tmp_path / "results"
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", synth_root, "--out", out,
                 "--grid", "optimizer.lr=1e-3,1e-4", "-o", "config.optimizer={'lr': 1}") == 2  # fmt: skip
    assert "config.optimizer would overwrite the --grid axis optimizer.lr" in error(caplog)


# -- 4. upstreams are checked against S3PRL's hub before anything is written ---------------------


@pytest.mark.parametrize(
    ("upstreams", "ckpt", "message"),
    [
        ("wavlm_lrage", None, "S3PRL's hub has no upstream 'wavlm_lrage'; did you mean wavlm_large"),
        ("fbank,mockingjay", None, "--upstreams mockingjay: upstream 'mockingjay' is not one this package loads"),
        ("wavlm_local", None, "--upstreams wavlm_local: reads a local weights file; name it with --upstream-ckpt"),
        ("fbank", "fbank", "upstream fbank reads no local weights file"),
    ],
)
def test_upstreams_the_runs_cannot_use_are_refused(synth_root, tiny_wavlm, tmp_path, caplog, upstreams, ckpt, message):
    out = tmp_path / "results"
    extra = ["--upstream-ckpt", f"{ckpt}={tiny_wavlm}"] if ckpt else []
    assert sweep("--upstreams", upstreams, *extra, "--conditions", "SYNTH", "--root", synth_root, "--out", out) == 2
    assert message in error(caplog)
    assert not out.exists()


# -- 6./7. RESULTS read back: plan entries, folders behind links, malformed state ----------------


@pytest.fixture
def results(synth_root, tmp_path):
    """RESULTS of fbank x SYNTH x folds 1, 2 (planned, nothing run)."""
    out = tmp_path / "results"
    plan.write_plan(out, plan.build_plan(["fbank"], ["SYNTH"], synth_root, folds=[1, 2]))
    return out


def _same_sweep(out, root) -> list[str]:
    return ["--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1,2", "--root", str(root), "--out", str(out)]


@pytest.mark.parametrize(
    ("entry", "problem"),
    [
        ({"fold": "1/../../../../escaped"}, "fold '1/../../../../escaped' is not of the expected type"),
        ({"upstream": ".."}, "upstream '..' maps to the folder name '..'"),
        ({"fold": 0}, "fold 0 is not a fold number"),
        ({"grid": {"a": 1}}, "grid {'a': 1} is not a mapping of names to values"),
        ({"extra": 1}, "unknown fields ['extra']"),
    ],
)
def test_a_bad_plan_entry_is_named_never_followed(results, synth_root, capsys, caplog, no_workers, entry, problem):
    path = results / plan.PLAN_FILE
    data = json.loads(path.read_text())
    data["runs"].append({**data["runs"][0], **entry})
    path.write_text(json.dumps(data))
    before = listing(results.parent)
    assert sweep("--status", "--out", results) == 0
    printed = capsys.readouterr().out
    assert f"runs[2]: {problem}" in printed
    assert printed.rstrip().endswith("/ unreadable 1")
    assert sweep(*_same_sweep(results, synth_root)) == 2
    assert f"runs[2]: {problem}" in error(caplog)
    assert "repair or remove this entry" in error(caplog)
    assert listing(results.parent) == before
    assert no_workers == []


def test_a_run_folder_behind_a_symbolic_link_is_never_followed(
    results, synth_root, tmp_path, capsys, caplog, no_workers
):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / STATE_FILE).write_text(json.dumps({"state": "failed", "error": "planted"}))
    fold2 = results / "fbank/SYNTH/default/fold2"
    shutil.rmtree(fold2)
    fold2.symlink_to(elsewhere, target_is_directory=True)
    assert sweep("--status", "--out", results) == 0
    printed = capsys.readouterr().out
    assert "fbank/SYNTH/default/fold2  unreadable" in printed
    assert "symbolic link" in printed
    assert "planted" not in printed
    assert sweep(*_same_sweep(results, synth_root)) == 2
    assert "run folder fbank/SYNTH/default/fold2 is reached through a symbolic link" in error(caplog)
    assert listing(elsewhere) == [STATE_FILE]
    assert no_workers == []


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "not valid JSON"),
        ("[]", "expected a JSON object, not list"),
        ('"running"', "expected a JSON object, not str"),
        ('{"state": "running", "pid": "12", "host": "h"}', "pid '12' is not a process id"),
        ('{"state": "running", "pid": 1e300, "host": "h"}', "is not a process id"),
        ('{"state": "running", "pid": 99999999999999, "host": "h"}', "is not a process id"),
        ('{"state": "running", "pid": 5, "host": 7}', "host 7 is not a host name"),
        ('{"state": "running", "pid": 5, "host": "h", "started": NaN}', "non-finite number NaN"),
        ('{"state": "failed", "error": ["x"]}', "is not a message"),
        ('{"state": "done"}', "state 'done' is neither 'running' nor 'failed'"),
    ],
)
def test_status_names_a_malformed_state_file(results, capsys, text, problem):
    state = results / "fbank/SYNTH/default/fold1" / STATE_FILE
    state.write_text(text)
    assert sweep("--status", "--out", results) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.startswith("fbank/SYNTH/default/fold1  unreadable")
    assert f"{state}: " in line
    assert problem in line


def test_status_does_not_wait_on_a_pipe_planted_as_a_state_file(results, capsys):
    os.mkfifo(results / "fbank/SYNTH/default/fold1" / STATE_FILE)
    assert sweep("--status", "--out", results) == 0
    assert "fold1  unreadable" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "problem"),
    [("", "not valid JSON"), ("[1]", "not list"), ('{"test": {"macro_f1": Infinity}}', "non-finite number Infinity")],
)
def test_status_names_a_malformed_result_file(results, capsys, text, problem):
    (results / "fbank/SYNTH/default/fold2" / plan.RESULT_FILE).write_text(text)
    assert sweep("--status", "--out", results) == 0
    printed = capsys.readouterr().out
    assert "fold2  unreadable" in printed
    assert problem in printed
    assert "evaluates it again" in printed
    assert printed.rstrip().endswith("done 0 / running 0 / failed 0 / to do 1 / unreadable 1")


def test_a_result_file_linked_out_of_its_folder_is_not_read(results, tmp_path, capsys):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    (results / "fbank/SYNTH/default/fold1" / plan.RESULT_FILE).symlink_to(outside)
    assert sweep("--status", "--out", results) == 0
    assert "fold1  unreadable" in capsys.readouterr().out


@pytest.mark.parametrize("text", ["", "[]", '{"runs": 3}', '{"runs": [], "x": NaN}'])
def test_an_unreadable_plan_is_named(results, caplog, text):
    (results / plan.PLAN_FILE).write_text(text)
    assert sweep("--status", "--out", results) == 2
    assert str(results / plan.PLAN_FILE) in error(caplog)


def test_an_unreadable_run_file_is_named_before_anything_is_written(results, synth_root, caplog, no_workers):
    run_file = results / "fbank/SYNTH/default/fold2" / plan.RUN_FILE
    run_file.write_text('{"upstream": "fbank"')
    before = listing(results)
    assert sweep(*_same_sweep(results, synth_root)) == 2
    assert f"{run_file}: not valid JSON" in error(caplog)
    assert "remove this run folder" in error(caplog)
    assert listing(results) == before
    assert no_workers == []


# -- 8. RESULTS: new, empty or an earlier sweep's; never the data -------------------------------


def test_results_must_be_a_new_empty_or_earlier_sweep_folder(synth_root, tmp_path, caplog, no_workers):
    def refused(out, message):
        caplog.clear()
        before = listing(tmp_path)
        assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", root, "--out", out, "--dry-run") == 2
        assert message in error(caplog)
        assert listing(tmp_path) == before

    root = tmp_path / "data"
    shutil.copytree(synth_root / "SYNTH" / "Primary", root / "SYNTH" / "Primary")
    (tmp_path / "notes.txt").write_text("mine")
    refused(tmp_path / "notes.txt", "is a file, not a folder")
    refused(tmp_path, "would replace the input")  # holds the data root
    refused(root, "would replace the input")
    other = tmp_path / "other"
    other.mkdir()
    (other / "keep.txt").write_text("mine")
    refused(other, "holds files that are not an earlier output of `s3prl-emo sweep`")
    assert (tmp_path / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", root, "--out", tmp_path / "empty") == 0


def test_results_written_before_these_checks_resume(synth_root, tmp_path, no_workers):
    """A RESULTS of an earlier version (no output marker, run.json of the same fields) is resumed."""
    out = tmp_path / "results"
    config = str((resource_dir("downstream_configs") / "SYNTH.yaml").resolve())
    old = {"upstream": "fbank", "upstream_ckpt": None, "condition": "SYNTH", "config": config, "fold": 1,
           "grid": {}, "root": str(synth_root.resolve()), "overrides": "config.runner.total_steps=2",
           "trainer": "runner"}  # fmt: skip
    (out / "fbank/SYNTH/default/fold1").mkdir(parents=True)
    (out / "fbank/SYNTH/default/fold1/run.json").write_text(json.dumps(old))
    (out / "fbank/SYNTH/default/fold1/exp").mkdir()
    (out / "fbank/SYNTH/default/fold1/exp/states-2.ckpt").write_bytes(b"")
    (out / plan.PLAN_FILE).write_text(json.dumps({"runs": [old]}))
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1", "--root", synth_root, "--out", out,
                 "-o", "config.runner.total_steps=2") == 0  # fmt: skip
    assert [s.spec.key for s in no_workers] == ["fbank/SYNTH/default/fold1"]
    assert no_workers[0].detail == "interrupted: resumes from its newest checkpoint"


# -- 9. the worker, the launchers and the Slurm settings ----------------------------------------


def test_the_worker_writes_nothing_in_a_folder_its_run_file_does_not_describe(results, capsys):
    fold1, fold2 = (results / f"fbank/SYNTH/default/fold{k}" for k in (1, 2))
    shutil.copy(fold1 / plan.RUN_FILE, fold2 / plan.RUN_FILE)
    assert worker.main([str(fold2)]) == 2
    assert "describes the run fbank/SYNTH/default/fold1, not the one of its folder" in capsys.readouterr().err
    assert sorted(p.name for p in fold2.iterdir()) == [plan.RUN_FILE]
    (fold2 / plan.RUN_FILE).write_text(json.dumps({**json.loads((fold1 / plan.RUN_FILE).read_text()), "fold": True}))
    assert worker.main([str(fold2)]) == 2
    assert sorted(p.name for p in fold2.iterdir()) == [plan.RUN_FILE]


def test_the_worker_replaces_a_linked_state_file_without_following_it(results, tmp_path):
    folder = results / "fbank/SYNTH/default/fold1"
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (folder / STATE_FILE).symlink_to(target)
    worker._claim(folder)
    assert target.read_text() == "precious"
    assert not (folder / STATE_FILE).is_symlink()
    assert worker.read_state(folder / STATE_FILE)["pid"] == os.getpid()
    live = {"state": "running", "pid": os.getppid(), "host": socket.gethostname()}
    (folder / STATE_FILE).write_text(json.dumps(live))
    with pytest.raises(InvalidInputError, match="already running"):
        worker._claim(folder)


@pytest.mark.parametrize("text", ["nan", "inf", "-3", "soon"])
def test_a_bad_training_time_fails_the_run_naming_the_file(results, text):
    folder = results / "fbank/SYNTH/default/fold1"
    (folder / worker.TRAIN_DONE).write_text(text)
    with pytest.raises(InvalidInputError, match=r"train\.done"):
        worker.run_one(folder)


def test_a_linked_run_log_is_never_appended_to(results, tmp_path):
    folder = results / "fbank/SYNTH/default/fold1"
    target = tmp_path / "precious.txt"
    target.write_text("precious")
    (folder / local.LOG_FILE).symlink_to(target)
    spec = plan.read_run(folder)
    assert local.run_local([RunState(spec, folder, "to do")]) == 1
    assert target.read_text() == "precious"


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        ('partition: "gpu\\n#SBATCH --wrap=id"', "partition 'gpu\\n#SBATCH --wrap=id' is not a Slurm partition name"),
        ('additional: {comment: "a\\nrm -rf ~"}', "is not an sbatch option and one-line value"),
        ("mem_gb: .nan", "mem_gb: nan is not a finite number"),
        ("time_min: soon", "time_min 'soon' is not a whole number >= 1"),
        ("additional: [1]", "additional must be a mapping"),
    ],
)
def test_slurm_settings_are_checked_before_submitting(synth_root, tmp_path, caplog, yaml_text, message):
    config = tmp_path / "slurm.yaml"
    config.write_text(yaml_text + "\n")
    out = tmp_path / "results"
    assert sweep("--upstreams", "fbank", "--conditions", "SYNTH", "--root", synth_root, "--out", out,
                 "--launcher", "slurm", "--slurm-config", config, "--dry-run") == 2  # fmt: skip
    assert message in error(caplog)
    assert not out.exists()
