"""Models out: the network a genotype builds (its size), and the trained classifier as an MLflow 3
LoggedModel, registered in the Model Registry (``genotype_source`` says where genotypes come from)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from sddarts.search_spaces import get_space
from sddarts.search_spaces.network import count_flops, count_parameters
from sddarts.search_spaces import AnyGenotype
from sddarts.search_spaces.errors import ConfigError
from sddarts.trainables.config import EvalConfig
from sddarts.trainables.data.datasets import DatasetInfo, DataSource, dataset_info


MODEL_URI_TAG = "sddarts.model_uri"  # on an evaluate run: its LoggedModel's URI (models:/m-...)
INPUT = "float32 images N x C x H x W with values in [0, 1] (pixel / 255; digits: pixel / 16), not normalised"


class Classifier(nn.Module):
    """What the registry serves and the exports hold: raw images in (``INPUT``), logits out. The
    dataset's normalisation is inside; no auxiliary head, no drop-path."""

    def __init__(self, net: nn.Module, info: DatasetInfo, recipe: dict[str, Any] | None = None):
        super().__init__()
        self.net = net
        self.recipe = recipe or {}  # {"genotype", "eval_config", "dataset": DatasetInfo fields}: rebuilds ``net``
        self.input_shape = (info.in_channels, info.image_size, info.image_size)
        self.register_buffer("mean", torch.tensor(info.mean).view(1, -1, 1, 1))
        self.register_buffer("std", torch.tensor(info.std).view(1, -1, 1, 1))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.net((images - self.mean) / self.std)[0]


@dataclass
class GenotypeSource:
    """A genotype to train, and where it came from (its search run, if any: the evaluation's parent)."""

    genotype: AnyGenotype
    search_run_id: str | None = None
    label: str = ""


def check_network(genotype: AnyGenotype, cfg: EvalConfig) -> None:
    """Refuses a network too shallow for the genotype's space, before any work starts."""
    min_layers = get_space(genotype.space).min_layers
    if cfg.layers < min_layers:
        raise ConfigError(f"layers must be >= {min_layers} for a {genotype.space} network (got {cfg.layers})")


def describe(genotype: AnyGenotype, cfg: EvalConfig) -> dict[str, Any]:
    """Parameters (without the auxiliary head) and FLOPs per image of the network a genotype builds."""
    from sddarts.trainables.workers.eval_loop import build_network

    net = build_network(genotype, cfg)
    info = dataset_info(DataSource.of(cfg))
    params = count_parameters(net)
    return {"genotype": genotype.short(), "space": genotype.space, "params": params, "params_m": params / 1e6,
            "flops": count_flops(net, (info.in_channels, info.image_size, info.image_size))}


def model_name(cfg: EvalConfig, space: str) -> str:
    """One registered model per search space and dataset (an image folder: its folder's name)."""
    if cfg.dataset == "imagefolder":
        import re

        folder = Path(cfg.data_dir).expanduser().resolve().name or "images"
        return f"sddarts-{space}-{re.sub(r'[^A-Za-z0-9._-]+', '-', folder)}"
    return f"sddarts-{space}-{cfg.dataset}"


def register_model(uri: str, run_id: str, net: nn.Module, cfg: EvalConfig, genotype: AnyGenotype,
                   tags: dict[str, Any]) -> dict[str, str]:
    """Logs the trained classifier (raw images in, ``Classifier``; MLflow's default pt2 program, with
    signature, input example, the input's description and the ``recipe`` that rebuilds it in its
    metadata) as an MLflow 3 LoggedModel of run ``run_id`` (the experiment's Models tab), tags the
    run with its URI (``MODEL_URI_TAG``) and registers it as a new version of ``model_name(cfg,
    space)``. Returns ``version``, ``model_uri`` (``models:/NAME/VERSION``) and ``logged_model_uri``."""
    import mlflow.pytorch
    from mlflow import MlflowClient
    from mlflow.entities import LoggedModelOutput
    from mlflow.exceptions import MlflowException

    info = dataset_info(DataSource.of(cfg))
    recipe = {"genotype": genotype.to_dict(), "eval_config": cfg.to_dict(), "dataset": dataclasses.asdict(info)}
    model = Classifier(net.cpu(), info, recipe).eval()
    example = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(0)).numpy()
    client = MlflowClient(uri)
    text_tags = {k: str(v) for k, v in tags.items()}
    logged = client.create_logged_model(client.get_run(run_id).info.experiment_id, name="model",
                                        source_run_id=run_id, tags=text_tags)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model")
        mlflow.pytorch.save_model(model, path, input_example=example,
                                  pip_requirements=mlflow.pytorch.get_default_pip_requirements(),
                                  metadata={"input": INPUT, "dataset": cfg.dataset, "output": "logits N x classes",
                                            "recipe": recipe})
        client.log_model_artifacts(logged.model_id, path)
    client.finalize_logged_model(logged.model_id, "READY")
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    logged_uri = f"models:/{logged.model_id}"
    client.set_tag(run_id, MODEL_URI_TAG, logged_uri)
    name = model_name(cfg, genotype.space)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    with process_tracking_uri(uri):
        version = str(client.create_model_version(name, source=logged_uri, run_id=run_id, tags=text_tags,
                                                  model_id=logged.model_id).version)
    return {"version": version, "model_uri": f"models:/{name}/{version}", "logged_model_uri": logged_uri}


@contextlib.contextmanager
def process_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow 3.17 resolves a version's ``models:/m-...`` source through the process-wide tracking
    URI, not its client's (a TODO in its sqlalchemy store): within the block that URI is ``uri``;
    after it, the previous setting and ``MLFLOW_TRACKING_URI`` are back as they were."""
    import mlflow
    from mlflow.tracking._tracking_service import utils

    saved, env = utils._tracking_uri, os.environ.get("MLFLOW_TRACKING_URI")
    mlflow.set_tracking_uri(uri)
    try:
        yield
    finally:
        utils._tracking_uri = saved
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


def set_alias(uri: str, name: str, version: str, alias: str) -> str:
    """Points registry alias ``alias`` of model ``name`` at ``version``; returns ``models:/NAME@ALIAS``."""
    from mlflow import MlflowClient

    MlflowClient(uri).set_registered_model_alias(name, alias, version)
    return f"models:/{name}@{alias}"
