"""Bad input, as a user on a shared cluster might type it: exit 2, one line on stderr naming the
field and what it accepts, no traceback, no Ray started, and no run or folder created."""

import json
import pickle

import numpy as np
import pytest

from cifar_files import write_cifar
from sddarts.platform.commands.cli import main


def _file(tmp, name, content):
    path = tmp / name
    path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    return str(path)


def _readonly(tmp):
    """A local folder that refuses writes even to root: immutable (chattr +i) where the filesystem
    allows it, else sysfs, which refuses new folders."""
    import atexit
    import subprocess

    folder = tmp / "readonly"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode:
        return "/sys/sddarts-runs"
    atexit.register(subprocess.run, ["chattr", "-i", str(folder)])  # let pytest clean its tmp folders
    return str(folder / "runs")


def _cifar(tmp, change=None):
    write_cifar(tmp / "cifar")
    if change:
        path = tmp / "cifar" / "cifar-10-batches-py" / "data_batch_1"
        path.write_bytes(change(pickle.loads(path.read_bytes())))
    return ["--dataset", "cifar10", "--data-dir", str(tmp / "cifar")]


def _store_with_run(tmp, name, params=None, kind="search"):
    """A store holding one run named ``name`` (and its checkpoint folder, for --resume)."""
    from sddarts.platform.tracking import runs

    uri = f"sqlite:///{tmp / 'store.db'}"
    run_id = runs.open_run(uri, runs.experiment_id(uri, "sddarts"), name, {"kind": kind})
    for k, v in (params or {}).items():
        runs.client(uri).log_param(run_id, k, v)
    (tmp / "runs" / name).mkdir(parents=True)
    return ["--tracking-uri", uri, "--storage-path", str(tmp / "runs")], run_id


def _resume_changed(tmp):
    where, _ = _store_with_run(tmp, "ran", {"C": 8, "epochs": 4, "dataset": "digits"})
    return ["search", "--resume", "ran", "--C", "16", *where]


def _sweep_parent_as_search(tmp):
    where, run_id = _store_with_run(tmp, "sw", kind="sweep")
    return ["evaluate", "--search-run", run_id, *where]


def _labels(entry):
    entry[b"labels"][0] = 42
    return pickle.dumps(entry)


CASES = [  # (argv, or a function of the tmp folder giving it; what the one error line says)
    (["search", "--dataset", "mnist"], "dataset must be one of digits, cifar10, cifar100, cifar10-valid, ImageNet16-120, imagefolder (got 'mnist')"),
    (["search", "--space", "nb999"], "space must be one of darts, s1, s2, s3, s4, nb201 (got 'nb999')"),
    (["search", "--space", "s2", "--early-stop", "sharpness", "--sharpness-every", "0"],
     "early_stop sharpness needs sharpness_every >= 1"),
    (["search", "--space", "darts", "--layers", "2"], "layers must be >= 3 for space darts (got 2)"),
    (["evaluate", "--genotype", "DARTS_V2", "--layers", "2"], "layers must be >= 3 for a darts network (got 2)"),
    (["evaluate", "--genotype", "|nor_conv_3x3~0|+|bogus~0|none~1|+|none~0|none~1|none~2|"],
     "edge 0->2: unknown op 'bogus'"),
    (["search", "--vote-count", "-1"], "vote_count must be >= 0 and <= 64 (got -1)"),
    (["search", "--temperature", "0"], "temperature must be > 0 (got 0.0)"),
    (["search", "--train-portion", "1.5"], "train_portion must be > 0 and < 1 (got 1.5)"),
    (["search", "--holdout-portion", "0"], "holdout_portion must be > 0 and < 1 (got 0.0)"),
    (["search", "--order", "3"], "order must be one of 1, 2 (got 3)"),
    (["search", "--C", "7"], "C must be even"),
    (["search", "--C", "100000"], "C must be >= 2 and <= 1024 (got 100000)"),
    (["search", "--seed", "99999999999999999999"], "seed must be >= 0 and <= 4294967295"),
    (["search", "--lr", "nan"], "lr must be a finite number, > 0 (got nan)"),
    (["search", "--lr", "1e400"], "lr must be a finite number, > 0 (got inf)"),
    (["search", "--momentum", "nan"], "momentum must be a finite number"),
    (["search", "--sd-weight", "nan"], "sd_weight must be a finite number"),
    (["search", "--temperature", "inf"], "temperature must be a finite number, > 0 (got inf)"),
    (["search", "--teacher-interval", "nan"], "argument --teacher-interval: invalid int value: 'nan'"),
    (["search", "--cpus-per-worker", "0.00001"], "cpus_per_worker must be >= 0.01"),
    (["search", "--cpus-per-worker", "nan"], "cpus_per_worker must be a finite number"),
    (["search", "--gpus-per-worker", "nan"], "gpus_per_worker must be a finite number"),
    (["search", "--gpus-per-worker", "1"], "needs 2 GPUs but the Ray cluster has 0"),
    (["search", "--num-workers", "64", "--batch-size", "4"], "needs 64 CPUs but the Ray cluster has"),
    (["search", "--batch-size", "5000"], "batch_size 5000 is larger than a worker's share of the w-train split"),
    (["search", "--sd", "1"], "unrecognized arguments: --sd 1"),
    (["search", "--epoch", "1"], "unrecognized arguments: --epoch 1"),
    (["search", "--name", "a/b"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["search", "--name", "../escape"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["search", "--name", "caf\u00e9"], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["search", "--name", "x" * 101], "name must be 1-100 ASCII letters, digits, spaces and"),
    (["search", "--experiment", ""], "experiment must be a non-empty name"),
    (["search", "--address", "127.0.0.1:1"], "address 127.0.0.1:1: no Ray cluster answers there"),
    (["search", "--address", "no port here"], "address must be host:port of a Ray head"),
    (["search", "--tracking-uri", "file:./mlruns"], "MLflow 3.13+ refuses file stores"),
    (["search", "--tracking-uri", "http://127.0.0.1:9"], "is not reachable"),
    (["search", "--tracking-uri", "sqlite://"], "is an in-memory store, which Ray workers cannot share"),
    (["search", "--tracking-uri", "sqlite:////nonexistent/dir/t.db"], "folder /nonexistent/dir does not exist"),
    (lambda t: ["search", "--storage-path", _file(t, "afile", "x")], "is a file, not a folder"),
    (["search", "--storage-path", "/dev/null/runs"], "storage_path /dev/null/runs is under a file"),
    (["search", "--storage-path", "/proc/sddarts-runs"], "storage_path /proc/sddarts-runs is not writable here"),
    (lambda t: ["search", "--storage-path", _readonly(t)], "is not writable here"),
    (["search", "--storage-path", "s3://sddarts-test/runs?endpoint_override=127.0.0.1:9&scheme=http&region=us-east-1"],
     "nothing listens at 127.0.0.1:9 (connection refused)"),  # a closed port (conftest: no credential look-ups)
    (["search", "--resume", "never-ran"], "resume: no run named 'never-ran' under storage_path"),
    (lambda t: ["search", "--name", "dup", *_store_with_run(t, "dup")[0]], "name: a run named 'dup' already exists"),
    (_resume_changed, "resume: --C 16 (the run has 8); a resumed run keeps the config it started with"),
    (["search", "--dataset", "cifar10", "--data-dir", "/nonexistent"], "has no cifar10 batches"),
    (lambda t: ["search", *_cifar(t, lambda e: b"not a pickle")], "data_batch_1 is not a CIFAR python batch"),
    (lambda t: ["search", *_cifar(t, lambda e: pickle.dumps({b"data": np.zeros((0, 3072), np.uint8), b"labels": []}))],
     "data_batch_1 holds no images"),
    (lambda t: ["search", *_cifar(t, lambda e: pickle.dumps({**e, b"data": e[b"data"][:, :100]}))],
     "data_batch_1 is not a CIFAR python batch"),
    (lambda t: ["search", *_cifar(t, _labels)], "cifar10 labels must be in [0, 9], found 0..42"),
    (lambda t: ["sweep", "--space-file", _file(t, "s.yaml", "sd_weight: {type: float, low: 0.1, high: .inf}\n")],
     "space.sd_weight: high must be finite"),
    (lambda t: ["sweep", "--space-file", _file(t, "s.yaml", b"\xff\xfe\x00binary")], "is not valid YAML"),
    (lambda t: ["sweep", "--space-file", _file(t, "s.yaml", "vote_count: {type: int, low: 1.5, high: 3}\n")],
     "space.vote_count: low must be an integer for type int (got 1.5)"),
    (["sweep", "--metric", "bogus"], "argument --metric: invalid choice: 'bogus'"),
    (lambda t: ["sweep", "--space-file", _file(t, "s.yaml", "voting: {type: categorical, choices: [[soft], hard]}\n")],
     "space.voting: choices must be numbers, strings, booleans or null (got ['soft'])"),
    (["sweep", "--epochs", "3", "--grace-period", "3"], "grace_period must be < epochs (3)"),
    (["sweep", "--trials", "0"], "trials must be >= 1 (got 0)"),
    (lambda t: ["evaluate", "--genotype", _file(t, "g.json", b"\x89PNG\xff\xfe")], "is not a readable JSON text file"),
    (lambda t: ["evaluate", "--genotype", _file(t, "g.json", "[" * 100_000 + "]" * 100_000)],
     "genotype JSON is nested too deeply"),
    (lambda t: ["evaluate", "--genotype", _file(t, "g.json", json.dumps({"normal": [["sep_conv_3x3", 1e400]] * 8}))],
     "malformed genotype"),
    (_sweep_parent_as_search, "is a sweep run, not a search run"),
    (["compare", "--seeds", "0"], "seeds must be >= 1 (got 0)"),
    (["compare", "--variant", "w=--distill-on nowhere"], "variant w: distill_on must be one of both, weights, arch"),
    (["compare", "--variant", "w=--bogus 1"], "variant w: unknown flag(s) --bogus 1"),
    (["compare", "--variant", "w=--sd-weight 0"], "variant w: is plain DARTS"),
    (["compare", "--variant", "w=", "--variant", "w=--vote-count 1"], "variant 'w' is given twice"),
    (["search", "--num-workers", "2", "--gpus-per-worker", "0.5"], "gpus_per_worker must be >= 1 with num_workers 2"),
    (["search", "--teacher-bn", "eval"], "teacher_bn must be one of batch, running"),
    (["search", "--precision", "fp16"], "precision must be one of fp32, bf16"),
    (["search", "--augment-on-device"], "augment_on_device applies to CIFAR's crop and flip"),
    (["sweep", "--prune-metric", "bogus"], "argument --prune-metric: invalid choice: 'bogus'"),
    (["ui", "--port", "-5"], "port must be in 1..65535 (got -5)"),
    (["describe", "nope"], "genotype 'nope' is neither a built-in"),
    (["describe", "0123abcd", "--tracking-uri", "http://127.0.0.1:9"], "MLflow tracking server at http://127.0.0.1:9 is not reachable"),
    (["runs", "--limit", "0"], "limit must be >= 1 (got 0)"),
]


def _run(argv) -> int:
    """The CLI's exit code, whether it returns it or argparse exits with it."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize("argv,message", CASES, ids=[str(i) for i in range(len(CASES))])
def test_bad_input_is_one_line_before_anything_starts(argv, message, tmp_path, monkeypatch, capsys):
    import ray

    from sddarts.platform.tracking import runs

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    argv = argv(tmp_path) if callable(argv) else argv
    store = f"sqlite:///{tmp_path / 'store.db'}"
    before = len(runs.client(store).search_runs(["1"])) if (tmp_path / "store.db").exists() else 0
    was_running = ray.is_initialized()
    rc = _run(argv)
    assert rc == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sddarts: error: ") and message in lines[0], lines
    assert ray.is_initialized() == was_running  # no Ray was started
    assert not (tmp_path / "sddarts_runs").exists() and not (tmp_path / "mlflow.db").exists()
    assert not any(p.name.startswith("checkpoint") for p in tmp_path.rglob("*"))
    if (tmp_path / "store.db").exists():
        assert len(runs.client(store).search_runs(["1"])) == before  # no run created


def test_a_failed_download_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from torchvision import datasets

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.CIFAR10, "url", "http://127.0.0.1:9/cifar-10-python.tar.gz")  # a closed local port
    monkeypatch.setattr(datasets.CIFAR10, "mirrors", [], raising=False)
    target = tmp_path / "new" / "cifar"
    assert _run(["search", "--dataset", "cifar10", "--data-dir", str(target), "--download",
                 "--tracking-uri", f"sqlite:///{tmp_path / 'store.db'}"]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "could not download cifar10" in lines[0], lines
    assert not (tmp_path / "new").exists()


def test_a_storage_endpoint_that_accepts_but_never_answers_times_out_in_one_line():
    """The other side of ``refused_endpoint``: a listener that takes the connection and says
    nothing is cut off after the check's timeout (1 s here; the commands wait ``STORAGE_CHECK_S``)."""
    import socket

    from sddarts.platform.preflight import check_storage
    from sddarts.search_spaces.errors import ConfigError

    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen()  # the kernel completes the handshake; nobody reads or replies
        port = silent.getsockname()[1]
        uri = f"s3://sddarts-test/runs?endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
        with pytest.raises(ConfigError, match=r"did not answer within 1 s"):
            check_storage(uri, timeout=1)
