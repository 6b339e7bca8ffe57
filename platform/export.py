"""``sddarts export``: a trained model out of MLflow, as ONNX, TorchScript or a state dict.

Every format takes images as a user has them (``registry.INPUT``: float in [0, 1], N x C x H x W)
with the dataset's normalisation inside, and says so: ONNX in its doc string and metadata (input
``images``, dynamic batch, output ``logits``), TorchScript in its ``input.txt`` extra file, the
state dict under ``input``. ONNX is checked with onnxruntime against PyTorch before it is kept.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from sddarts.platform.options import DEFAULT_EXPERIMENT
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.registry import INPUT, MODEL_URI_TAG, Classifier
from sddarts.platform.tracking.store import check_tracking, resolve_tracking_uri, store_missing
from sddarts.search_spaces.errors import ConfigError

FORMATS = ("onnx", "torchscript", "state-dict")
ONNX_TOLERANCE = 1e-4


def export_model(source: str, fmt: str, out: str, tracking_uri: str = "", experiment: str = DEFAULT_EXPERIMENT) -> Path:
    """Writes the model ``source`` names (``models:/NAME/VERSION``, ``models:/NAME@ALIAS``,
    ``models:/MODEL_ID``, ``runs:/RUN_ID/model``, or an evaluate run's id or name) to ``out`` in
    ``fmt`` (one of ``FORMATS``); returns the path written."""
    if fmt not in FORMATS:
        raise ConfigError(f"format must be one of {', '.join(FORMATS)} (got {fmt!r})")
    path = check_out(out)
    uri = resolve_tracking_uri(tracking_uri or None)
    export(load_classifier(model_uri(source, uri, experiment), uri), fmt, path)
    return path


def check_out(path: str) -> Path:
    """``--out`` as a path whose folder exists and that is not a folder itself."""
    out = Path(path).expanduser()
    if out.is_dir():
        raise ConfigError(f"--out {path!r} is a folder; give a file name such as {out / 'model.onnx'}")
    if not out.parent.is_dir():
        raise ConfigError(f"--out {path!r}: folder {str(out.parent)!r} does not exist")
    return out


def model_uri(source: str, uri: str, experiment: str) -> str:
    """``source`` as an MLflow model URI: URIs pass through; a run id or name becomes its ``model``."""
    if source.startswith(("models:/", "runs:/")):
        return source
    if store_missing(uri):
        raise ConfigError(f"{source!r} is not a models:/ or runs:/ URI, and {uri} holds no runs to look it up in")
    run = runs.lookup(uri, experiment, source)
    if run is None:
        raise ConfigError(f"no MLflow run with id or name {source!r} in {uri}; pass an evaluate run or a models:/ URI")
    if MODEL_URI_TAG in run.data.tags:  # the model it logged (MLflow 3: a LoggedModel, models:/m-...)
        return run.data.tags[MODEL_URI_TAG]
    if "model" not in {a.path for a in runs.client(uri).list_artifacts(run.info.run_id)}:
        raise ConfigError(f"run {source!r} ({run.data.tags.get('kind', 'unknown')} run) has no model; "
                          "export an `sddarts evaluate` run or a models:/ URI")
    return f"runs:/{run.info.run_id}/model"


def load_classifier(source: str, uri: str) -> Classifier:
    """The ``Classifier`` behind an MLflow model URI: rebuilt from the ``recipe`` in its metadata,
    with the weights of its saved program (MLflow's pt2, a graph that no longer exports)."""
    import mlflow.artifacts
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException
    from mlflow.models import Model

    check_tracking(uri)
    if store_missing(uri):  # a read never creates a store
        raise ConfigError(f"tracking store {uri} does not exist, so it holds no model {source!r}; pass the "
                          "--tracking-uri of the store the model was registered in")
    with tempfile.TemporaryDirectory() as d:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=artifact_uri(source, uri), tracking_uri=uri,
                                                        dst_path=d)
        except (MlflowException, OSError) as exc:
            raise ConfigError(f"cannot read model {source!r} from {uri}: {' '.join(str(exc).split())[:300]}") from exc
        recipe = (Model.load(local).metadata or {}).get("recipe")
        if not recipe:
            raise ConfigError(f"{source!r} is not an sddarts classifier with its recipe in its metadata; "
                              "retrain it with `sddarts evaluate` to export it")
        weights = mlflow.pytorch.load_model(local).state_dict()
    model = from_recipe(recipe)
    model.load_state_dict(weights)
    return model.eval()


def artifact_uri(source: str, uri: str) -> str:
    """Where a model's files are: a ``models:/NAME/VERSION``, ``models:/NAME@ALIAS`` or
    ``models:/MODEL_ID`` URI resolved in the store of ``uri`` (MLflow's own resolution reads the
    process-wide tracking and registry URIs)."""
    if not source.startswith("models:/"):
        return source
    client = runs.client(uri)
    ref = source[len("models:/"):].strip("/")
    if ref.startswith("m-") and "/" not in ref and "@" not in ref:  # a LoggedModel by id
        return client.get_logged_model(ref).artifact_location
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = client.get_model_version_by_alias(name, alias)
    else:
        name, _, number = ref.rpartition("/")
        version = client.get_model_version(name, number)
    if version.model_id:  # an MLflow 3 version of a LoggedModel: its files are the LoggedModel's
        return client.get_logged_model(version.model_id).artifact_location
    return client.get_model_version_download_uri(name, version.version)


def from_recipe(recipe: dict[str, Any]) -> Classifier:
    """An untrained ``Classifier`` of the genotype and network a recipe names."""
    from sddarts.search_spaces import genotype_from_dict
    from sddarts.trainables.config import EvalConfig
    from sddarts.trainables.workers.eval_loop import build_network

    cfg = EvalConfig.from_dict(dict(recipe["eval_config"]))
    info = recipe_info(recipe, cfg)
    return Classifier(build_network(genotype_from_dict(recipe["genotype"]), cfg, info), info, recipe)


def recipe_info(recipe: dict[str, Any], cfg):
    """The ``DatasetInfo`` a recipe recorded (an image folder need not be at hand), else the config's."""
    from sddarts.trainables.data.datasets import DataSource, DatasetInfo, dataset_info

    if "dataset" in recipe:
        d = recipe["dataset"]
        return DatasetInfo(d["in_channels"], d["num_classes"], d["image_size"], tuple(d["mean"]), tuple(d["std"]))
    return dataset_info(DataSource.of(cfg))


def export(model: Classifier, fmt: str, out: Path) -> None:
    """Writes ``model`` to ``out`` in ``fmt`` (one of ``FORMATS``)."""
    {"onnx": to_onnx, "torchscript": to_torchscript, "state-dict": to_state_dict}[fmt](model, out)


def example(model: Classifier, n: int = 2) -> torch.Tensor:
    return torch.rand(n, *model.input_shape, generator=torch.Generator().manual_seed(n))


def to_onnx(model: Classifier, out: Path) -> None:
    """ONNX through ``torch.onnx`` (dynamic batch), then checked with onnxruntime on 3 images."""
    import onnx
    import onnxruntime

    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (example(model),), str(out), dynamo=True, input_names=["images"],
                          output_names=["logits"], dynamic_shapes={"images": {0: torch.export.Dim("batch")}})
    proto = onnx.load(str(out))
    proto.doc_string = f"input 'images': {INPUT}; output 'logits'"
    onnx.helper.set_model_props(proto, {"input": INPUT, "input_shape": "x".join(map(str, model.input_shape))})
    onnx.save(proto, str(out))
    x = example(model, 3)
    session = onnxruntime.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = torch.from_numpy(session.run(None, {"images": x.numpy()})[0])
    with torch.no_grad():
        diff = float((got - model(x)).abs().max())
    if diff > ONNX_TOLERANCE:
        out.unlink()
        raise RuntimeError(f"the ONNX export differs from PyTorch by {diff:.2e} (> {ONNX_TOLERANCE}); nothing written")


def to_torchscript(model: Classifier, out: Path) -> None:
    """A traced TorchScript module: loads with ``torch.jit.load`` alone, no sddarts needed."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export, and still what servers load
        traced = torch.jit.trace(model, example(model))
        torch.jit.save(traced, str(out), _extra_files={"input.txt": INPUT})


def to_state_dict(model: Classifier, out: Path) -> None:
    """The weights and what rebuilds the network (``rebuild``), readable with ``weights_only=True``."""
    state: dict[str, Any] = {"state_dict": model.state_dict(), "input": INPUT, "input_shape": list(model.input_shape),
                             **model.recipe}
    torch.save(state, str(out))


def rebuild(path: str | Path) -> Classifier:
    """The ``Classifier`` a ``state-dict`` export holds, built with sddarts."""
    saved = torch.load(str(path), weights_only=True)
    model = from_recipe({"genotype": saved["genotype"], "eval_config": saved["eval_config"]})
    model.load_state_dict(saved["state_dict"])
    return model.eval()
