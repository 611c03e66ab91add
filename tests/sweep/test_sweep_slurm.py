"""The Slurm launcher against a real single-node Slurm (Debian's slurm-wlm and munge) that this
module starts in a temporary folder and stops at the end. Skipped, with the reason, where the
daemons are not installed (``make system-deps``) or cannot run."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

DAEMONS = ("munged", "slurmctld", "slurmd", "sbatch", "sinfo")
SMALL = "config.runner.total_steps=2,,config.downstream_expert.datarc.train_batch_size=4"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 * 3 // 4
    return 1024


SLURM_CONF = """\
ClusterName=s3prlemotest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
AuthType=auth/munge
AuthInfo=socket={dir}/munge.socket
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={dir}/state
SlurmdSpoolDir={dir}/spool
SlurmctldPidFile={dir}/slurmctld.pid
SlurmdPidFile={dir}/slurmd.pid
SlurmctldLogFile={dir}/slurmctld.log
SlurmdLogFile={dir}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SchedulerType=sched/builtin
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory} State=UNKNOWN
PartitionName=test Nodes=ALL Default=YES MaxTime=INFINITE State=UP
"""


def _tail(path: Path) -> str:
    return path.read_text()[-500:] if path.is_file() else f"(no {path.name})"


@pytest.fixture(scope="module")
def slurm_env():
    """munged + slurmctld + slurmd for this host, configured in a temporary folder."""
    missing = [name for name in DAEMONS if shutil.which(name) is None]
    if missing:
        pytest.skip(f"Slurm is not installed ({', '.join(missing)} missing): run `make system-deps`")
    if os.geteuid() != 0:
        pytest.skip("a single-node Slurm needs root here (slurmd runs jobs as their user)")
    folder = Path(tempfile.mkdtemp(prefix="slurm-"))  # short: the munge socket path has a length limit
    (folder / "state").mkdir()
    (folder / "spool").mkdir()
    host = socket.gethostname().split(".")[0]
    conf = folder / "slurm.conf"
    conf.write_text(SLURM_CONF.format(host=host, ctld_port=_free_port(), d_port=_free_port(), dir=folder,
                                      cpus=os.cpu_count() or 1, memory=_memory_mb()))  # fmt: skip
    key = folder / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    env = {**os.environ, "SLURM_CONF": str(conf)}
    try:
        subprocess.run(["munged", "--force", f"--key-file={key}", f"--socket={folder}/munge.socket",
                        f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
                        f"--seed-file={folder}/munge.seed"], check=True, capture_output=True, text=True)  # fmt: skip
        subprocess.run(["slurmctld"], env=env, check=True, capture_output=True, text=True)
        subprocess.run(["slurmd"], env=env, check=True, capture_output=True, text=True)
        deadline = time.monotonic() + 60
        while "idle" not in subprocess.run(["sinfo", "-h", "-o", "%T"], env=env, capture_output=True, text=True).stdout:
            if time.monotonic() > deadline:
                raise RuntimeError(f"node never became idle; slurmd.log: {_tail(folder / 'slurmd.log')}")
            time.sleep(1)
    except (subprocess.CalledProcessError, RuntimeError) as err:
        _stop(folder)
        detail = err.stderr if isinstance(err, subprocess.CalledProcessError) else str(err)
        pytest.skip(f"the Slurm daemons cannot run in this sandbox: {detail}; slurmctld.log: "
                    f"{_tail(folder / 'slurmctld.log')}")  # fmt: skip
    yield env
    _stop(folder)


def _stop(folder: Path) -> None:
    for name in ("slurmd", "slurmctld", "munged"):
        pid_file = folder / f"{name}.pid"
        if not pid_file.is_file():
            continue
        pid = int(pid_file.read_text().split()[0])
        try:
            os.kill(pid, signal.SIGTERM)
            for _ in range(50):
                os.kill(pid, 0)
                time.sleep(0.1)
        except ProcessLookupError:
            continue
    shutil.rmtree(folder, ignore_errors=True)


def test_sweep_runs_on_slurm_and_status_reads_it_back(slurm_env, synth_root, tmp_path):
    out = tmp_path / "results"
    sweep = [sys.executable, "-m", "s3prl_emo.cli", "sweep"]
    result = subprocess.run(
        [*sweep, "--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1,2", "--root", str(synth_root),
         "--out", str(out), "-o", SMALL, "--launcher", "slurm", "--jobs", "2", "--cpus-per-run", "1",
         "--mem-gb", "1", "--time-min", "20"],
        env=slurm_env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    for fold in (1, 2):
        saved = json.loads((out / f"fbank/SYNTH/default/fold{fold}/result.json").read_text())
        assert saved["fold"] == fold
        assert 0 <= saved["test"]["macro_f1"] <= 1
        assert saved["host"] == socket.gethostname()
    assert list((out / ".slurm").rglob("*_submission.sh"))  # went through sbatch (submitit's script)
    status = subprocess.run([*sweep, "--status", "--out", str(out)], capture_output=True, text=True)
    assert status.stdout.rstrip().endswith("done 2 / running 0 / failed 0 / to do 0")


def test_batched_sweep_on_slurm_runs_one_task_per_group(slurm_env, synth_root, tmp_path):
    out = tmp_path / "results"
    sweep = [sys.executable, "-m", "s3prl_emo.cli", "sweep"]
    pooled = f"{SMALL},,config.downstream_expert.modelrc.select=UtteranceLevel"
    result = subprocess.run(
        [*sweep, "--upstreams", "fbank", "--conditions", "SYNTH", "--folds", "1,2,3", "--root", str(synth_root),
         "--out", str(out), "-o", pooled, "--launcher", "slurm", "--trainer", "batched", "--batched-max-runs", "2",
         "--jobs", "2", "--cpus-per-run", "1", "--mem-gb", "1", "--time-min", "20"],
        env=slurm_env, capture_output=True, text=True, timeout=1200,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert "submitted 3 run(s) in 2 task(s)" in result.stderr
    runs = [out / f"fbank/SYNTH/default/fold{fold}" for fold in (1, 2, 3)]
    assert {json.loads((run / "result.json").read_text())["trainer"] for run in runs} == {"batched"}
    assert "batched: 2 runs trained together" in (runs[0] / "run.log").read_text()  # folds 1 and 2: one task
    assert "batched: 1 runs trained together" in (runs[2] / "run.log").read_text()
    assert not (runs[1] / "run.log").exists()
