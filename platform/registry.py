"""Genotypes in and models out: where a genotype comes from (built-in, file, search run), what
network it builds, and the trained classifier in the MLflow Model Registry."""

from __future__ import annotations

import dataclasses
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sddarts.platform import runs
from sddarts.search_spaces import BUILTIN_GENOTYPES, GenotypeError, genotype_from_json, get_space, load_genotype
from sddarts.search_spaces.network import count_flops, count_parameters
from sddarts.search_spaces.spaces import AnyGenotype
from sddarts.trainables.config import ConfigError, EvalConfig
from sddarts.trainables.data import DatasetInfo, DataSource, dataset_info


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
    genotype: AnyGenotype
    search_run_id: str | None = None
    label: str = ""


def resolve_genotype(spec: str, tracking_uri: str | None = None, experiment: str = runs.DEFAULT_EXPERIMENT
                     ) -> GenotypeSource:
    """A built-in name, a genotype JSON file, a NAS-Bench-201 architecture string, or an MLflow
    search run (its id or name) with genotype.json."""
    if spec in BUILTIN_GENOTYPES or spec.startswith("|") or Path(spec).is_file():
        return GenotypeSource(load_genotype(spec), None, spec)
    if not tracking_uri or runs.store_missing(tracking_uri):
        raise GenotypeError(f"genotype {spec!r} is neither a built-in ({', '.join(BUILTIN_GENOTYPES)}) nor a file"
                            + (f", and {tracking_uri} holds no runs" if tracking_uri else ""))
    runs.check_tracking(tracking_uri)
    run = runs.lookup(tracking_uri, experiment, spec)
    if run is None:
        raise GenotypeError(f"no MLflow run with id or name {spec!r} in {tracking_uri} (and no built-in or file of that name)")
    kind = run.data.tags.get("kind", "search")
    if kind != "search":
        best = run.data.tags.get("best_run_id")
        raise GenotypeError(f"run {spec!r} is a {kind} run, not a search run"
                            + (f"; its best search run is {best}" if best else "; pass the id of a search run"))
    return GenotypeSource(genotype_of_run(run.info.run_id, tracking_uri), run.info.run_id, f"run {run.info.run_id}")


def genotype_of_run(run_id: str, tracking_uri: str) -> AnyGenotype:
    """The genotype.json artifact of a search run."""
    client = runs.client(tracking_uri)
    if "genotype.json" not in {a.path for a in client.list_artifacts(run_id)}:
        raise GenotypeError(f"MLflow run {run_id} has no genotype.json artifact; is it a search run that finished an epoch?")
    with tempfile.TemporaryDirectory() as d:
        return genotype_from_json(Path(client.download_artifacts(run_id, "genotype.json", d)).read_text())


def check_network(genotype: AnyGenotype, cfg: EvalConfig) -> None:
    """Refuses a network too shallow for the genotype's space, before any work starts."""
    min_layers = get_space(genotype.space).min_layers
    if cfg.layers < min_layers:
        raise ConfigError(f"layers must be >= {min_layers} for a {genotype.space} network (got {cfg.layers})")


def describe(genotype: AnyGenotype, cfg: EvalConfig) -> dict[str, Any]:
    """Parameters (without the auxiliary head) and FLOPs per image of the network a genotype builds."""
    from sddarts.trainables.eval_loop import build_network

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
                   tags: dict[str, Any]) -> str:
    """Saves the trained classifier (raw images in, ``Classifier``; MLflow's default pt2 program,
    with signature, input example, the input's description and the ``recipe`` that rebuilds it
    in its metadata) as the run's ``model`` artifact and registers it as a new version of ``model_name(cfg, space)``; returns the version."""
    import mlflow.pytorch
    from mlflow.exceptions import MlflowException

    info = dataset_info(DataSource.of(cfg))
    recipe = {"genotype": genotype.to_dict(), "eval_config": cfg.to_dict(), "dataset": dataclasses.asdict(info)}
    model = Classifier(net.cpu(), info, recipe).eval()
    example = torch.rand(2, *model.input_shape, generator=torch.Generator().manual_seed(0)).numpy()
    client = runs.client(uri)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "model")
        mlflow.pytorch.save_model(model, path, input_example=example,
                                  metadata={"input": INPUT, "dataset": cfg.dataset, "output": "logits N x classes",
                                            "recipe": recipe})
        client.log_artifacts(run_id, path, "model")
    name = model_name(cfg, genotype.space)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    source = f"{client.get_run(run_id).info.artifact_uri}/model"
    version = client.create_model_version(name, source=source, run_id=run_id,
                                          tags={k: str(v) for k, v in tags.items()}).version
    return str(version)
