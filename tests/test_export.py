"""Models out: the registered classifier and its ONNX, TorchScript and state-dict exports take raw
images (float in [0, 1]) with the normalisation inside, and give the same class scores."""

import subprocess
import sys

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from PIL import Image

from sddarts.platform.commands.cli import main
from sddarts.platform.tracking.registry import INPUT, register_model
from sddarts.search_spaces import BUILTIN_GENOTYPES
from sddarts.trainables.config import EvalConfig
from sddarts.trainables.data.datasets import INFO, DataSource, load_dataset
from sddarts.trainables.workers.eval_loop import build_network

GENOTYPE = BUILTIN_GENOTYPES["DARTS_V2"]
CFG = EvalConfig(dataset="digits", C=4, layers=3, auxiliary_weight=0.4).validate()

NO_SDDARTS = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f).lower()]
sys.path[:] = [p for p in sys.path if "__editable__" not in p and "shim" not in p]
try:
    import sddarts.platform.tracking.registry
    sys.exit("sddarts is importable here")
except ImportError:
    pass
import numpy as np, torch
extra = {"input.txt": ""}
model = torch.jit.load(sys.argv[1], _extra_files=extra)
x = torch.from_numpy(np.load(sys.argv[2]))
np.save(sys.argv[3], model(x).detach().numpy())
print(extra["input.txt"].decode())
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    """A trained-looking network (BatchNorm statistics moved off their defaults) in the registry."""
    tmp = tmp_path_factory.mktemp("export")
    uri = f"sqlite:///{tmp / 'mlflow.db'}"
    torch.manual_seed(0)
    net = build_network(GENOTYPE, CFG)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.randn(16, 1, 8, 8) * 2 + 1)
    net.eval()
    client = MlflowClient(uri)
    exp = client.create_experiment("sddarts", artifact_location=str(tmp / "artifacts"))  # not ./mlruns
    run_id = client.create_run(exp).info.run_id
    out = register_model(uri, run_id, net, CFG, GENOTYPE, {"genotype": GENOTYPE.short()})
    assert out["model_uri"] == f"models:/sddarts-darts-digits/{out['version']}"
    return uri, out["model_uri"], net, tmp


def _png_images(tmp) -> torch.Tensor:
    """Four 8x8 grayscale PNGs, read back as a user would: pixel / 255, N x 1 x 8 x 8."""
    rng = np.random.default_rng(1)
    images = []
    for i in range(4):
        path = tmp / f"digit{i}.png"
        Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8), mode="L").save(path)
        images.append(np.asarray(Image.open(path), dtype=np.float32) / 255.0)
    return torch.from_numpy(np.stack(images)[:, None])


def _registry_model(uri, model_uri):
    """The registry's model as MLflow serves it (its pt2 program, captured in eval mode), read
    without touching MLflow's process-wide tracking URI."""
    import tempfile

    import mlflow.artifacts
    import mlflow.pytorch

    from sddarts.platform.export import artifact_uri

    local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri(model_uri, uri), tracking_uri=uri,
                                                dst_path=tempfile.mkdtemp())
    return mlflow.pytorch.load_model(local)


def test_the_registered_model_normalises_raw_images_as_training_did(registered):
    uri, model_uri, net, _ = registered
    model = _registry_model(uri, model_uri)
    from sklearn.datasets import load_digits

    raw = torch.tensor(load_digits().images[:5], dtype=torch.float32)[:, None] / 16.0  # as a user has them
    info = INFO["digits"]
    normalised = (raw - info.mean[0]) / info.std[0]
    with torch.no_grad():
        assert torch.allclose(model(raw), net(normalised)[0], atol=1e-6)
    # the training pipeline's own test images are these raw images, normalised the same way
    bunch = load_digits()
    order = np.random.default_rng(0).permutation(len(bunch.target))
    first_test = order[int(0.8 * len(order))]
    pipeline = load_dataset(DataSource("digits"), train=False)[0][0]
    raw_first = torch.tensor(bunch.images[first_test], dtype=torch.float32)[None] / 16.0
    assert torch.allclose(pipeline, (raw_first - info.mean[0]) / info.std[0], atol=1e-6)
    client = MlflowClient(uri)
    source = client.get_model_version("sddarts-darts-digits", "1").source
    logged = client.get_logged_model(source.removeprefix("models:/"))  # an MLflow 3 LoggedModel, the version's source
    assert source.startswith("models:/m-") and logged.name == "model" and str(logged.status).endswith("READY")


def test_every_export_gives_the_registry_scores_on_raw_png_images(registered, tmp_path):
    import onnx
    import onnxruntime

    from sddarts.platform.export import rebuild

    uri, model_uri, _, _ = registered
    x = _png_images(tmp_path)
    with torch.no_grad():
        expected = _registry_model(uri, model_uri)(x).numpy()
    for fmt in ("onnx", "torchscript", "state-dict"):
        assert main(["export", model_uri, "--format", fmt, "--out", str(tmp_path / f"m.{fmt}"), "--tracking-uri", uri]) == 0

    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "images" and inp.shape[1:] == [1, 8, 8] and isinstance(inp.shape[0], str)  # dynamic batch
    np.testing.assert_allclose(session.run(None, {"images": x.numpy()})[0], expected, atol=1e-4)
    np.testing.assert_allclose(session.run(None, {"images": x[:1].numpy()})[0], expected[:1], atol=1e-4)
    assert INPUT in onnx.load(str(tmp_path / "m.onnx")).doc_string

    np.save(tmp_path / "x.npy", x.numpy())
    out = subprocess.run([sys.executable, "-c", NO_SDDARTS, str(tmp_path / "m.torchscript"), str(tmp_path / "x.npy"),
                          str(tmp_path / "ts.npy")], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == INPUT
    np.testing.assert_allclose(np.load(tmp_path / "ts.npy"), expected, atol=1e-5)

    saved = torch.load(tmp_path / "m.state-dict", weights_only=True)
    assert saved["input"] == INPUT and saved["genotype"] == GENOTYPE.to_dict()
    with torch.no_grad():
        np.testing.assert_allclose(rebuild(tmp_path / "m.state-dict")(x).numpy(), expected, atol=1e-6)


def test_an_evaluate_run_exports_by_its_id(registered, tmp_path):
    uri, model_uri, _, _ = registered
    client = MlflowClient(uri)
    run_id = client.get_model_version("sddarts-darts-digits", "1").run_id
    assert main(["export", run_id, "--format", "state-dict", "--out", str(tmp_path / "r.pt"), "--tracking-uri", uri]) == 0
    assert (tmp_path / "r.pt").stat().st_size > 0


@pytest.mark.parametrize("args,needle", [
    (["--format", "tflite", "--out", "m.x"], "argument --format: invalid choice: 'tflite'"),
    (["--format", "onnx", "--out", "nowhere/m.onnx"], "folder 'nowhere' does not exist"),
    (["--format", "onnx", "--out", "."], "is a folder"),
])
def test_bad_export_arguments_are_one_line(args, needle, registered, tmp_path, monkeypatch, capsys):
    uri, model_uri, _, _ = registered
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) if "tflite" in args else _no_raise():
        rc = main(["export", model_uri, *args, "--tracking-uri", uri])
        assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sddarts: error: ") and needle in err[0]


@pytest.mark.parametrize("source,needle", [
    ("0123456789abcdef", "no MLflow run with id or name '0123456789abcdef'"),
    ("models:/no-such-model/1", "cannot read model 'models:/no-such-model/1'"),
])
def test_bad_export_sources_are_one_line(source, needle, registered, tmp_path, capsys):
    uri, _, _, _ = registered
    rc = main(["export", source, "--format", "onnx", "--out", str(tmp_path / "m.onnx"), "--tracking-uri", uri])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and needle in err[0] and not (tmp_path / "m.onnx").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
