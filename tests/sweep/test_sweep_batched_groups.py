"""How ``sweep --trainer batched`` groups its runs into processes, GPUs and Slurm tasks, and records them."""

from pathlib import Path
from types import SimpleNamespace

import pytest

from s3prl_emo.errors import InvalidInputError
from s3prl_emo.sweep.batched import MAX_RUNS, group_command, groups, least_busy
from s3prl_emo.sweep.slurm import SlurmGroup, slurm_units
from s3prl_emo.sweep.state import TODO, RunState


def _pending(counts: dict[str, int]) -> list[RunState]:
    return [
        RunState(SimpleNamespace(upstream=upstream, upstream_ckpt=None), Path(f"/r/{upstream}/fold{k}"), TODO)
        for upstream, count in counts.items()
        for k in range(count)
    ]


def _sizes(found: list[list[RunState]]) -> list[tuple[str, int]]:
    return [(group[0].spec.upstream, len(group)) for group in found]


def test_one_group_per_upstream_within_the_cap():
    found = groups(_pending({"fbank": 10, "wavlm": 10}))
    assert _sizes(found) == [("fbank", 10), ("wavlm", 10)]
    assert all(len({s.spec.upstream for s in group}) == 1 for group in found)


def test_hundreds_of_runs_are_split_evenly_by_the_cap():
    found = groups(_pending({"fbank": 300, "wavlm": 3}), max_runs=64)
    assert [n for u, n in _sizes(found) if u == "fbank"] == [60] * 5
    assert sum(len(g) for g in found) == 303
    assert max(len(g) for g in groups(_pending({"fbank": 300}))) <= MAX_RUNS


def test_groups_are_split_to_fill_every_gpu():
    assert _sizes(groups(_pending({"fbank": 10}), at_least=2)) == [("fbank", 5), ("fbank", 5)]
    assert sorted(n for _, n in _sizes(groups(_pending({"fbank": 10, "wavlm": 2}), at_least=3))) == [2, 5, 5]
    assert len(groups(_pending({"fbank": 2}), at_least=8)) == 2  # no empty groups


def test_a_cap_below_one_is_refused():
    with pytest.raises(InvalidInputError, match="--batched-max-runs 0"):
        groups(_pending({"fbank": 2}), max_runs=0)


def test_each_group_goes_to_the_least_busy_gpu():
    busy: list[str] = []
    for _ in range(4):
        busy.append(least_busy(["0", "1"], busy))
    assert busy == ["0", "1", "0", "1"]
    busy.remove("0")  # a group on GPU 0 ended: the next one goes there, not round-robin to 1
    assert least_busy(["0", "1"], busy) == "0"


def test_slurm_has_one_task_per_group_with_the_batched_trainer():
    pending = _pending({"fbank": 5, "wavlm": 5})
    assert [len(u) for u in slurm_units(pending)] == [1] * 10
    units = slurm_units(pending, batched=True, max_runs=3)
    assert _sizes(units) == [("fbank", 3), ("fbank", 2), ("wavlm", 3), ("wavlm", 2)]
    task = SlurmGroup([str(s.folder) for s in units[0]])
    assert task.run_dirs == ["/r/fbank/fold0", "/r/fbank/fold1", "/r/fbank/fold2"]
    assert group_command(units[0])[-3:] == task.run_dirs
    assert group_command(units[0])[1:3] == ["-m", "s3prl_emo.sweep.batched"]


def test_local_launcher_pins_each_group_to_a_gpu(tmp_path, monkeypatch):
    """``--gpus 0,1 --jobs 2``: the two groups of one upstream start side by side, one per GPU."""
    import s3prl_emo.sweep.batched as batched
    import s3prl_emo.sweep.state as state

    started = []

    class Finished:
        def __init__(self, command, env, **_):
            started.append((env["CUDA_VISIBLE_DEVICES"], command[3:]))

        def poll(self):
            return 0

    monkeypatch.setattr(batched.subprocess, "Popen", Finished)
    monkeypatch.setattr(batched.time, "sleep", lambda _: None)
    monkeypatch.setattr(state, "run_state", lambda spec, folder, cross=(): RunState(spec, folder, "done"))
    pending = [
        RunState(SimpleNamespace(upstream="fbank", upstream_ckpt=None), tmp_path / f"fold{k}", TODO) for k in range(4)
    ]
    for item in pending:
        item.folder.mkdir()
    assert batched.run_local_batched(pending, jobs=2, gpus=["0", "1"]) == 0
    assert [gpu for gpu, _ in started] == ["0", "1"]
    assert [len(folders) for _, folders in started] == [2, 2]
    assert sorted(f for _, folders in started for f in folders) == sorted(str(p.folder) for p in pending)


def test_scores_from_training_only_for_the_checkpoint_they_were_taken_with(tmp_path):
    """The kept dev-best files replace a stock evaluation only while ``dev-best.ckpt`` is the one
    they were taken with; the metrics then say step 0, as S3PRL's command-line evaluation does."""
    import json

    from s3prl_emo.runtime.atomic import write_text_atomically
    from s3prl_emo.sweep.worker import scores_from_training
    from s3prl_emo.training.batched.files import snapshot_best_scores

    exp = tmp_path / "exp"
    exp.mkdir()
    (exp / "dev-best.ckpt").write_bytes(b"weights of step 20")

    def write_scores(step: int) -> None:  # as the expert writes them: a new file renamed over the old
        for split in ("dev", "test"):
            write_text_atomically(exp / f"{split}_fold3_metrics.json", json.dumps({"macro_f1": 0.5, "step": step}))
            for suffix in ("predict.txt", "truth.txt", "probs.csv"):
                write_text_atomically(exp / f"{split}_fold3_{suffix}", f"{split} {suffix} at step {step}\n")

    write_scores(20)
    snapshot_best_scores(exp, "fold3", ["dev", "test"], 20)
    snapshot_best_scores(exp, "fold3", ["dev", "test"], 20)  # again, of the very same files
    assert sorted(p.name for p in (exp / "dev-best-scores").iterdir() if p.name.startswith(".")) == []
    write_scores(30)  # a later evaluation, not dev-best
    assert (exp / "dev-best-scores" / "test_fold3_predict.txt").read_text() == "test predict.txt at step 20\n"
    (exp / "dev-best.ckpt").write_bytes(b"weights of step 30")  # another checkpoint: not used
    assert not scores_from_training(exp, 3)
    assert (exp / "test_fold3_predict.txt").read_text() == "test predict.txt at step 30\n"
    (exp / "dev-best.ckpt").write_bytes(b"weights of step 20")
    assert scores_from_training(exp, 3)
    assert (exp / "test_fold3_predict.txt").read_text() == "test predict.txt at step 20\n"
    assert json.loads((exp / "dev_fold3_metrics.json").read_text()) == {"macro_f1": 0.5, "step": 0}
    (exp / "dev-best-scores" / "source.json").unlink()  # a kill before the snapshot was complete
    assert not scores_from_training(exp, 3)
