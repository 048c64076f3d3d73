"""``convas train`` on a cluster: the cluster's description (TF_CONFIG, Slurm, --workers) checked
before training, the JSON progress stream, the ``--local-workers`` supervisor, and real
two-worker runs on loopback: identical weights, a log and model like a single worker's, a lost
worker reported within a minute and a rerun that resumes."""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
from test_cli_train import read_log, run

from engine.distribute import (
    Cluster,
    ClusterError,
    ClusterSource,
    check_own_port,
    cluster_from_flags,
    cluster_from_slurm,
    cluster_from_tf_config,
    free_ports,
    parse_address,
    rendezvous,
)
from engine.local_workers import EXIT_WORKER_LOST, LAUNCHER_ENV, describe_status, worker_argv
from engine.progress import JsonLinesReporter, json_safe
from engine.training import MessageKind

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "resources" / "examples" / "seed_cnn.convas"


def events(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# ---------------------------------------------------------------- the cluster's description

def tf_config(workers, index=0, kind="worker", chief=None) -> str:
    cluster = {"worker": workers} if chief is None else {"chief": chief, "worker": workers}
    return json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}})


def test_tf_config_in_keras_convention():
    cluster = cluster_from_tf_config(tf_config(["a:2222", "b:2222"], 1))
    assert cluster == Cluster(("a:2222", "b:2222"), 1, ClusterSource.TF_CONFIG)
    assert not cluster.is_chief and cluster.name(0) == "worker 0 (a:2222)"
    chief_first = cluster_from_tf_config(tf_config(["b:1", "c:1"], 0, "chief", chief=["a:1"]))
    assert chief_first.workers == ("a:1", "b:1", "c:1") and chief_first.is_chief
    assert cluster_from_tf_config(tf_config(["b:1", "c:1"], 1, chief=["a:1"])).index == 2


@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must be a JSON object"),
    (json.dumps({"task": {"type": "worker", "index": 0}}), 'no "cluster"'),
    (json.dumps({"cluster": {"worker": ["a:1"]}}), 'no "task"'),
    (tf_config(["a:1", "b:1"], 2), "task.index 2 is out of range"),
    (tf_config(["a:1"], 0, "ps"), "parameter servers and evaluators are not supported"),
    (json.dumps({"cluster": {"worker": ["a:1"], "ps": ["p:1"]}, "task": {"type": "worker", "index": 0}}),
     "'ps' jobs"),
    (tf_config(["a:1", "a:1"]), "are both a:1"),
    (tf_config(["a:99999"]), "outside 1-65535"),
    (tf_config(["a"]), "is not host:port"),
    (tf_config("a:1"), "must be a list"),
])
def test_malformed_tf_config_says_what_and_shows_an_example(text, needle):
    with pytest.raises(ClusterError) as caught:
        cluster_from_tf_config(text)
    assert needle in str(caught.value)
    if "index" not in needle and "both" not in needle and "65535" not in needle and "host:port" not in needle:
        assert '"cluster": {"worker"' in str(caught.value)  # a valid example to copy


def test_workers_flag_and_addresses():
    assert cluster_from_flags("localhost:1, 10.0.0.2:2", 1).workers == ("localhost:1", "10.0.0.2:2")
    assert parse_address("[::1]:80") == ("[::1]", 80)
    for bad, needle in [("h:0", "outside"), (":80", "not host:port"), ("h:x", "not a number"),
                        ("bad host:1", "malformed host")]:
        with pytest.raises(ClusterError, match=needle):
            parse_address(bad)
    with pytest.raises(ClusterError, match="are both"):
        cluster_from_flags("localhost:5,127.0.0.1:5", 0)  # the same machine, spelled twice
    with pytest.raises(ClusterError, match="--worker-index 2 is out of range"):
        cluster_from_flags("a:1,b:1", 2)


@pytest.mark.slow  # imports TensorFlow (SlurmClusterResolver)
def test_slurm_cluster_from_the_job_step():
    env = {"SLURM_PROCID": "1", "SLURM_STEP_NUM_TASKS": "2", "SLURM_STEP_NODELIST": "node[01-02]",
           "SLURM_STEP_TASKS_PER_NODE": "1(x2)"}
    cluster = cluster_from_slurm(9000, env)
    assert cluster.workers == ("node01:9000", "node02:9000") and cluster.index == 1
    assert "SLURM_PROCID" not in os.environ  # the test's variables did not leak
    with pytest.raises(ClusterError, match="srun"):
        cluster_from_slurm(environ={})


def test_own_port_in_use_is_named():
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ClusterError, match=f"worker 1 \\(127.0.0.1:{port}\\) cannot listen on port {port}"):
            check_own_port(Cluster(("127.0.0.1:1", f"127.0.0.1:{port}"), 1))
    check_own_port(Cluster((f"127.0.0.1:{port}",), 0))  # free again


def test_rendezvous_names_the_worker_that_never_came():
    own, other, absent = free_ports(3)
    workers = tuple(f"127.0.0.1:{p}" for p in (own, other, absent))
    import threading

    errors: list[Exception] = []

    def peer() -> None:
        try:
            rendezvous(Cluster(workers, 1), 3.0)
        except ClusterError as exc:
            errors.append(exc)

    thread = threading.Thread(target=peer)
    thread.start()
    with pytest.raises(ClusterError) as caught:
        rendezvous(Cluster(workers, 0), 3.0)
    thread.join()
    assert str(caught.value).startswith(f"worker 2 (127.0.0.1:{absent}) did not join within 3 s")
    assert "--worker-index 2" in str(caught.value) and "--connect-timeout" in str(caught.value)
    assert errors and "worker 2" in str(errors[0])  # the peer that came heard from worker 0


def test_rendezvous_of_workers_that_all_came_and_of_mismatched_lists():
    import threading

    workers = tuple(f"127.0.0.1:{p}" for p in free_ports(3))
    threads = [threading.Thread(target=rendezvous, args=(Cluster(workers, i), 20.0)) for i in (1, 2)]
    for thread in threads:
        thread.start()
    rendezvous(Cluster(workers, 0), 20.0)  # returns once everyone is there
    for thread in threads:
        thread.join()
    other = (workers[0], workers[1], "127.0.0.1:1")
    errors: list[Exception] = []

    def peer() -> None:
        try:
            rendezvous(Cluster(other, 1), 10.0)
        except ClusterError as exc:
            errors.append(exc)

    thread = threading.Thread(target=peer)
    thread.start()
    with pytest.raises(ClusterError, match="another list of workers"):
        rendezvous(Cluster(workers[:2], 0), 10.0)
    thread.join()
    assert errors and "another list of workers" in str(errors[0])  # both learn why


# ---------------------------------------------------------------- flags checked before training

@pytest.mark.parametrize("extra, needle", [
    (["--workers", "a:1,b:1"], "--workers needs --worker-index"),
    (["--worker-index", "1"], "give --workers"),
    (["--local-workers", "2", "--workers", "a:1"], "--local-workers starts its own workers"),
    (["--devices", "CPU:0"], "add --distribute mirrored"),
    (["--distribute", "mirrored", "--devices", "TPU:0"], "is not a device"),
    (["--scale-lr"], "for mirrored or multiworker"),
    (["--distribute", "none", "--workers", "a:1", "--worker-index", "0"], "give --distribute multiworker"),
    (["--workers", "a:1,a:1", "--worker-index", "0"], "are both a:1"),
    (["--workers", "a:70000", "--worker-index", "0"], "outside 1-65535"),
])
def test_bad_cluster_flags_exit_2_before_training(tmp_path, capsys, monkeypatch, extra, needle):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    code, _, err = run(capsys, "train", SEED, "--out", tmp_path / "m.keras", *extra)
    assert code == 2 and needle in err and "Traceback" not in err, err
    assert "loading TensorFlow" not in err and not (tmp_path / "m.keras").exists()


def test_malformed_tf_config_exits_2_with_a_json_error(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", '{"cluster": {"worker": ["a:1"]}, "task": {"type": "evaluator"}}')
    code, out, err = run(capsys, "train", SEED, "--out", tmp_path / "m.keras", "--distribute", "multiworker",
                         "--progress", "json")
    assert code == 2 and "evaluators are not supported" in err
    (line,) = events(out)
    assert line["event"] == "error" and line["status"] == 2 and "evaluators" in line["text"]
    monkeypatch.delenv("TF_CONFIG")
    code, out, err = run(capsys, "train", SEED, "--out", tmp_path / "m.keras", "--distribute", "multiworker")
    assert code == 2 and "set TF_CONFIG" in err and "--local-workers 2" in err


def test_port_in_use_exits_2_before_training(tmp_path, capsys):
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = run(capsys, "train", SEED, "--out", tmp_path / "m.keras",
                           "--workers", f"127.0.0.1:{port},127.0.0.1:1", "--worker-index", "0")
    assert code == 2 and f"cannot listen on port {port}" in err and "Traceback" not in err


def test_cache_folder_is_passed_to_every_split(tmp_path):
    import numpy as np

    from engine.cli import _with_cache
    from engine.datasets import Dataset, Split

    split = Split(np.zeros((2, 4, 4, 1), np.float32), np.zeros(2, np.int64))
    dataset = _with_cache(Dataset("d", ["a"], split, validation=split), str(tmp_path / "cache"))
    assert dataset.train.cache == dataset.validation.cache == str(tmp_path / "cache")
    assert dataset.test is None and split.cache is None and (tmp_path / "cache").is_dir()


# ---------------------------------------------------------------- the JSON progress stream

def test_json_lines_reporter_stream():
    from engine.distribute import Placement, Strategy

    stream, now = io.StringIO(), [0.0]
    reporter = JsonLinesReporter(2, 100, 32, stream=stream, clock=lambda: now[0])
    reporter.start(Placement(Strategy.MULTIWORKER, 2, 2, 32))
    for batch in range(4):  # within 50 ms: only the first and the last batch are sent
        reporter.on_batch(0, batch, 4, {"loss": 1.0})
    now[0] = 2.5
    reporter.on_epoch(0, {"loss": float("nan"), "accuracy": 0.5})
    reporter.on_message(MessageKind.WARNING, "careful")
    reporter.event("done", status=0, history={"loss": [float("inf")]})
    lines = events(stream.getvalue())
    assert [e["event"] for e in lines] == ["start", "batch", "batch", "epoch", "message", "done"]
    assert lines[0] == {"event": "start", "epochs": 2, "batches": 4, "samples": 100, "batch_size": 32,
                        "task": None, "placement": {"strategy": "multiworker", "workers": 2, "replicas": 2,
                                                    "global_batch": 32, "per_replica_batch": 16,
                                                    "text": "multiworker over 2 replicas (2 workers), "
                                                            "batch 32 = 16 per replica"}}
    assert [e["batch"] for e in lines[1:3]] == [0, 3]
    assert lines[3] == {"event": "epoch", "epoch": 0, "logs": {"loss": None, "accuracy": 0.5}, "seconds": 2.5}
    assert lines[4] == {"event": "message", "kind": "warning", "text": "careful"}
    assert lines[5]["history"] == {"loss": [None]}
    assert json_safe({"a": (1, 2.0)}) == {"a": [1, 2.0]}


@pytest.mark.slow
def test_train_progress_json_on_one_device(tmp_path, capsys):
    """Every line on stdout is a JSON event, in the documented order; the human text is on stderr."""
    import numpy as np

    data = tmp_path / "tiny.npz"
    rng = np.random.default_rng(0)
    np.savez(data, x=rng.random((64, 28, 28, 1), dtype=np.float32), y=rng.integers(0, 10, 64))
    out = tmp_path / "m.keras"
    code, stdout, stderr = run(capsys, "train", SEED, "--data", data, "--epochs", "2", "--batch-size", "16",
                               "--out", out, "--progress", "json")
    assert code == 0, stderr
    stream = events(stdout)  # raises if any line is not JSON
    kinds = [e["event"] for e in stream]
    assert kinds[0] == "start" and kinds[-1] == "done" and kinds.count("epoch") == 2 and "batch" in kinds
    start, done = stream[0], stream[-1]
    assert (start["epochs"], start["samples"], start["batch_size"]) == (2, len_train(stderr), 16)
    assert start["placement"]["strategy"] == "none" and start["task"] == "classification"
    assert done["status"] == 0 and Path(done["out"]) == out.resolve() and out.is_file()
    assert set(done["history"]) == set(stream[kinds.index("epoch")]["logs"])
    assert "saved" in stderr and "epoch 1/2" not in stderr  # the closing lines moved to stderr


def len_train(stderr: str) -> int:
    """The training samples the start line names (``… on tiny.npz: 52 training and …``)."""
    import re

    return int(re.search(r": (\d+) training and", stderr).group(1))


# ---------------------------------------------------------------- the --local-workers supervisor

def test_worker_arguments_replace_the_cluster_flags():
    cluster = Cluster(("127.0.0.1:5", "127.0.0.1:6"), 1, ClusterSource.LOCAL)
    argv = ["--debug", "train", "d.convas", "--local-workers", "2", "--out", "m.keras", "--local-workers=2"]
    assert worker_argv(argv, cluster) == ["--debug", "train", "d.convas", "--out", "m.keras",
                                          "--distribute", "multiworker", "--workers",
                                          "127.0.0.1:5,127.0.0.1:6", "--worker-index", "1"]
    assert describe_status(-9) == "was killed by SIGKILL" and describe_status(2) == "exited with status 2"


def test_workers_that_all_refuse_the_input_say_it_once(tmp_path):
    """Every worker fails the same way (a file that is no design): one message, the chief's, exit 2."""
    proc = subprocess.run([sys.executable, "-m", "engine.cli", "train", str(ROOT / "README.md"), "--out",
                           str(tmp_path / "m.keras"), "--local-workers", "2"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("unknown file type") == 1 and "worker 1" not in proc.stderr, proc.stderr
    assert proc.stdout == "" and "Traceback" not in proc.stderr


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").glob("*/children"):
        found.update(int(p) for p in task.read_text().split())
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_no_worker_outlives_a_killed_launcher(tmp_path):
    """SIGKILL gives the supervisor no chance to clean up: its workers still end at once."""
    launcher = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", str(SEED), "--out",
                                 str(tmp_path / "m.keras"), "--local-workers", "2"], cwd=ROOT,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(children := _children(launcher.pid)) < 2:
            assert time.monotonic() < deadline and launcher.poll() is None
            time.sleep(0.05)
        launcher.kill()
        launcher.wait(10)
        deadline = time.monotonic() + 10
        while any(_alive(p) for p in children) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(_alive(p) for p in children)
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)


@pytest.mark.skipif(os.name != "posix", reason="POSIX only")
def test_a_killed_launchers_folder_is_removed_by_the_next(tmp_path):
    from engine.local_workers import remove_stale_folders

    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    stale, alive = tmp_path / f"convas-workers-{gone}-abc", tmp_path / f"convas-workers-{os.getpid()}-def"
    for folder in (stale, alive):
        folder.mkdir()
        (folder / "worker-1.txt").write_text("x")
    assert remove_stale_folders(str(tmp_path)) == [stale]
    assert not stale.exists() and alive.exists()


def test_a_worker_ends_when_its_launcher_is_gone():
    """The polling watch (what non-Linux systems rely on) ends a worker whose launcher is gone."""
    code = ("import time; from engine.local_workers import watch_launcher; watch_launcher(7, 0.05); "
            "time.sleep(30)")
    env = {**os.environ, LAUNCHER_ENV: "1"}  # not our parent: as if the launcher had died
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, timeout=20)
    assert proc.returncode == 7


# ---------------------------------------------------------------- real runs on loopback

def _worker(args: list[str], index: int, workers: str, out_file: Path, err_file: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "engine.cli", "train", *args, "--workers", workers,
                             "--worker-index", str(index)], cwd=ROOT, stdout=out_file.open("w"),
                            stderr=err_file.open("w"), stdin=subprocess.DEVNULL, start_new_session=True)


def _wait_for(condition, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_joining_a_cluster_whose_peer_never_starts_fails_with_its_name(tmp_path, capsys):
    """TensorFlow waits for a missing worker forever (measured: still waiting after 3 min, deaf
    to SIGTERM); convas's own rendezvous ends the wait naming it, exit 2, before TensorFlow."""
    port, absent = free_ports(2)
    code, out, err = run(capsys, "train", SEED, "--out", tmp_path / "m.keras", "--connect-timeout", "1",
                         "--progress", "json", "--workers", f"127.0.0.1:{port},127.0.0.1:{absent}",
                         "--worker-index", "0")
    assert code == 2 and f"worker 1 (127.0.0.1:{absent}) did not join within 1 s" in err, err
    assert "Traceback" not in err and "loading TensorFlow" not in err and not (tmp_path / "m.keras").exists()
    assert events(out)[-1]["event"] == "error"


@pytest.mark.slow
def test_two_loopback_workers_fault_resume_and_match_one_worker(tmp_path, capfd):
    """The issue's "done when": a worker killed mid-epoch makes the chief exit non-zero naming it
    within 60 s; the rerun resumes from the last completed epoch, both workers end with identical
    weights, and the chief's model and log are those of a single-worker run in form, with a
    validation accuracy within 2 points of it."""
    out, log, digest = tmp_path / "m.keras", tmp_path / "log.csv", tmp_path / "digest"
    args = [str(SEED), "--epochs", "3", "--seed", "3", "--out", str(out), "--log", str(log),
            "--weights-digest", str(digest), "--worker-timeout", "20"]
    workers = ",".join(f"127.0.0.1:{p}" for p in free_ports(2))
    outs = [tmp_path / f"out{i}.txt" for i in range(2)]
    errs = [tmp_path / f"err{i}.txt" for i in range(2)]
    procs = [_worker([*args, "--progress", "json"], i, workers, outs[i], errs[i]) for i in range(2)]
    try:
        def in_second_epoch() -> bool:
            assert procs[0].poll() is None, errs[0].read_text()
            return any(e["event"] == "batch" and e["epoch"] == 1 and e["batch"] >= 5
                       for e in events(outs[0].read_text()))

        _wait_for(in_second_epoch, 240, "the cluster never reached its second epoch")
        procs[1].kill()
        killed = time.monotonic()
        procs[0].wait(90)
        noticed = time.monotonic() - killed
        with capfd.disabled():  # the figure the README quotes
            print(f"\n[the chief noticed the lost worker in {noticed:.1f} s]")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    err = errs[0].read_text()
    assert procs[0].returncode == EXIT_WORKER_LOST, err
    assert noticed < 60 and f"worker 1 ({workers.split(',')[1]})" in err and "rerun" in err, err
    assert "Traceback" not in err and not out.exists()
    assert events(outs[0].read_text())[-1]["event"] == "error"

    # The rerun (here as --local-workers 2: the checkpoint does not depend on the ports) resumes.
    # capfd: the chief is a child process writing to this process's stdout.
    code, stdout, stderr = run(capfd, "train", *args, "--local-workers", "2", "--progress", "json")
    assert code == 0, stderr
    stream = events(stdout)
    assert any(e["event"] == "message" and e["kind"] == "info" and "resuming from epoch 2" in e["text"]
               for e in stream), stream
    assert [e["epoch"] for e in stream if e["event"] == "epoch"] == [1, 2]
    assert stream[0]["placement"]["workers"] == 2 and stream[-1]["event"] == "done"
    assert (tmp_path / "digest.0").read_text() == (tmp_path / "digest.1").read_text()
    assert not Path(str(out) + ".checkpoints").exists()
    with zipfile.ZipFile(out) as archive:
        meta = json.loads(archive.read("convas.json"))
    assert meta["distribute"] == {"strategy": "multiworker", "workers": 2, "replicas": 2, "global_batch": 32,
                                  "per_replica_batch": 16}
    cluster_rows = read_log(log)

    single_out, single_log = tmp_path / "one.keras", tmp_path / "one.csv"
    code, _, stderr = run(capfd, "train", SEED, "--epochs", "3", "--seed", "3", "--out", single_out,
                          "--log", single_log)
    assert code == 0, stderr
    single_rows = read_log(single_log)
    assert list(cluster_rows[0]) == list(single_rows[0]) and len(cluster_rows) == len(single_rows) == 3
    assert [(r["replicas"], r["per_replica_batch"]) for r in cluster_rows] == [("2.0", "16.0")] * 3
    assert [(r["replicas"], r["per_replica_batch"]) for r in single_rows] == [("1.0", "32.0")] * 3
    assert abs(float(cluster_rows[-1]["val_accuracy"]) - float(single_rows[-1]["val_accuracy"])) <= 0.02

    import keras

    model = keras.saving.load_model(out)
    assert model.count_params() == keras.saving.load_model(single_out).count_params()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_launcher_stops_the_cluster_when_a_worker_dies(tmp_path):
    """A worker that dies ends the run within seconds (the others are stopped, none is left),
    with a message naming it and how to resume."""
    launcher = subprocess.Popen([sys.executable, "-m", "engine.cli", "train", str(SEED), "--out",
                                 str(tmp_path / "m.keras"), "--local-workers", "2"], cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while len(children := _children(launcher.pid)) < 2:
            assert time.monotonic() < deadline and launcher.poll() is None
            time.sleep(0.05)
        def index_of(pid: int) -> bytes:
            words = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            return words[-2] if b"--worker-index" in words else b""  # "" until it has exec'd

        _wait_for(lambda: all(index_of(p) for p in children), 30, "the workers did not start")
        second = next(p for p in children if index_of(p) == b"1")
        os.kill(second, signal.SIGKILL)
        killed = time.monotonic()
        _, err = launcher.communicate(timeout=60)
        took = time.monotonic() - killed
    finally:
        if launcher.poll() is None:
            launcher.kill()
            launcher.wait(10)
    assert launcher.returncode == EXIT_WORKER_LOST, err
    assert took < 15 and not any(_alive(p) for p in children)
    assert "worker 1 (127.0.0.1:" in err and "was killed by SIGKILL" in err and "rerun the same command" in err
