"""The evaluation stage from the driver: resolve a genotype, retrain it with Ray Train, log the
trained model to MLflow and register it as a new version of the space's and dataset's model."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from sddarts.platform import tracking
from sddarts.platform.search import RunOptions, fit_tracked
from sddarts.search_spaces import BUILTIN_GENOTYPES, Genotype, load_genotype
from sddarts.search_spaces.genotypes import GenotypeError
from sddarts.search_spaces.network import count_flops, count_parameters
from sddarts.trainables.config import EvalConfig
from sddarts.trainables.data import INFO


class Classifier(nn.Module):
    """What the registry serves: images in, logits out (no auxiliary head, no drop-path)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[0]


@dataclass
class GenotypeSource:
    genotype: Genotype
    search_run_id: str | None = None
    label: str = ""


def resolve_genotype(spec: str, tracking_uri: str | None = None) -> GenotypeSource:
    """A built-in name, a genotype JSON file, or the id of an MLflow search run with genotype.json."""
    if spec in BUILTIN_GENOTYPES or Path(spec).is_file():
        return GenotypeSource(load_genotype(spec), None, spec)
    if not tracking_uri:
        raise GenotypeError(f"genotype {spec!r} is neither a built-in ({', '.join(BUILTIN_GENOTYPES)}) nor a file")
    return GenotypeSource(genotype_of_run(spec, tracking_uri), spec, f"run {spec}")


def genotype_of_run(run_id: str, tracking_uri: str) -> Genotype:
    """The genotype.json artifact of a search run, with clear errors for each way it can be missing."""
    import tempfile

    from mlflow.exceptions import MlflowException

    client = tracking.client(tracking_uri)
    try:
        client.get_run(run_id)
    except MlflowException:
        raise GenotypeError(f"no MLflow run {run_id!r} in {tracking_uri} (and no built-in or file of that name)") from None
    if "genotype.json" not in {a.path for a in client.list_artifacts(run_id)}:
        raise GenotypeError(f"MLflow run {run_id} has no genotype.json artifact; is it a search run that finished an epoch?")
    with tempfile.TemporaryDirectory() as d:
        return Genotype.from_json(Path(client.download_artifacts(run_id, "genotype.json", d)).read_text())


def describe(genotype: Genotype, cfg: EvalConfig) -> dict[str, Any]:
    """Parameters (without the auxiliary head) and FLOPs per image of the network a genotype builds."""
    from sddarts.trainables.evaluate import build_network

    net = build_network(genotype, cfg)
    info = INFO[cfg.dataset]
    params = count_parameters(net)
    return {"genotype": genotype.short(), "params": params, "params_m": params / 1e6,
            "flops": count_flops(net, (info.in_channels, info.image_size, info.image_size))}


def model_name(cfg: EvalConfig, space: str = "darts") -> str:
    """One registered model per search space and dataset."""
    return f"sddarts-{space}-{cfg.dataset}"


def register_model(uri: str, run_id: str, net: nn.Module, cfg: EvalConfig, genotype: Genotype,
                   tags: dict[str, Any]) -> str:
    """Logs the trained classifier (pt2, with signature and input example) to the run and registers
    it; returns the new version number."""
    import mlflow
    import mlflow.pytorch

    info = INFO[cfg.dataset]
    classifier = Classifier(net.cpu()).eval()
    example = torch.zeros(2, info.in_channels, info.image_size, info.image_size).numpy()
    mlflow.set_tracking_uri(uri)
    with mlflow.start_run(run_id=run_id):
        logged = mlflow.pytorch.log_model(classifier, name="model", input_example=example,
                                          registered_model_name=model_name(cfg))
    version = str(logged.registered_model_version)
    client = tracking.client(uri)
    for key, value in {"genotype": genotype.short(), **tags}.items():
        client.set_model_version_tag(model_name(cfg), version, key, str(value))
    return version


def run_evaluation(cfg: EvalConfig, source: GenotypeSource, opts: RunOptions) -> dict[str, Any]:
    """Retrains ``source.genotype`` from scratch; returns test accuracy, size and registry version."""
    import os

    from sddarts.trainables.evaluate import build_network, make_eval_trainer
    from sddarts.trainables.runtime import STATE_FILE

    uri = opts.tracking_uri
    exp_id = tracking.experiment_id(uri, opts.experiment)
    tags = {"kind": "evaluate", "dataset": cfg.dataset, "genotype": source.genotype.short(), "genotype_source": source.label}
    parent = None
    if source.search_run_id:  # shown as a child of its search run, in the search's experiment
        exp_id = tracking.client(uri).get_run(source.search_run_id).info.experiment_id
        tags["search_run_id"] = parent = source.search_run_id
    run_id = tracking.open_run(uri, exp_id, opts.name, tags, parent, opts.resume)
    client = tracking.client(uri)
    client.log_text(run_id, source.genotype.to_json(), "genotype.json")
    run = {"name": opts.name, "tracking_uri": uri, "run_id": run_id}
    result = fit_tracked(make_eval_trainer(cfg, source.genotype, run, opts.storage_path), uri, run_id)
    try:
        size = describe(source.genotype, cfg)
        net = build_network(source.genotype, cfg)
        with result.checkpoint.as_directory() as d:
            net.load_state_dict(torch.load(os.path.join(d, STATE_FILE), map_location="cpu", weights_only=False)["net"])
        metrics = dict(result.metrics)
        client.log_metric(run_id, "params_m", size["params_m"])
        client.log_metric(run_id, "flops_m", size["flops"] / 1e6)
        version = register_model(uri, run_id, net, cfg, source.genotype, {
            "search_run_id": source.search_run_id or "", "test_acc": f"{metrics['test_acc']:.2f}",
            "params": size["params"], "params_m": f"{size['params_m']:.3f}", "flops": size["flops"], "eval_run_id": run_id})
    except BaseException as exc:
        tracking.end_run(uri, run_id, "FAILED", {"error": f"{type(exc).__name__}: {exc}"[:4000]})
        raise
    tracking.end_run(uri, run_id, "FINISHED", {"model_version": version})
    return {**size, "test_acc": metrics["test_acc"], "run_id": run_id, "experiment_id": exp_id,
            "model": model_name(cfg), "version": version}
