"""The SD-DARTS search as one Ray Train ``train_loop_per_worker``, and the trainer that runs it.

Reads top to bottom: set up (data, supernet, optimisers, teachers), resume, then each epoch of
``search_epochs`` (the same epochs ``Searcher`` runs) is recorded: MLflow, checkpoint, report.
"""

from __future__ import annotations

from typing import Any

import ray.train.torch
from sddarts.search_spaces import genotype_from_json
from sddarts.trainables.config import SearchConfig
from sddarts.trainables.data.datasets import DataSource, source_record
from sddarts.trainables.sd_darts.distributed import WeightsOnly
from sddarts.trainables.workers.worker import Worker
from sddarts.trainables.workers.fatal import reporting_fatal
from sddarts.trainables.workers.run_logger import RunLogger
from sddarts.trainables.data.nb201_bench import Bench
from sddarts.trainables.workers.trainer import make_trainer
from sddarts.trainables.sd_darts.epoch import make_supernet, search_epochs, search_loaders
from sddarts.trainables.workers.search_records import alpha_dict, log_cell_pictures, log_genotype_and_alpha
from sddarts.trainables.sd_darts.search_step import SearchState


@reporting_fatal
def train_loop_per_worker(config: dict[str, Any]) -> None:
    """One Train worker of a search. ``config``: {"search": SearchConfig dict, "run": {name, tracking_uri, run_id}}."""
    cfg = SearchConfig.from_dict(config["search"])
    worker = Worker.start(config["run"], cfg.seed)
    loaders = search_loaders(cfg, worker.rank, worker.world, cfg.download and worker.rank == 0)
    state = build_state(cfg, worker)
    start = worker.resume(state.load_state_dict, cfg.to_dict(), {"dataset.json": source_record(DataSource.of(cfg))})
    steps = loaders.steps(cfg)
    if cfg.distills and cfg.teacher_interval > steps and start == 0:
        worker.say(f"note: teacher_interval {cfg.teacher_interval} > {steps} steps per epoch: "
                   f"epoch 1 has no teacher (plain DARTS until step {cfg.teacher_interval})")
    progress = lambda epoch: worker.step_hook(epoch, cfg.epochs, cfg.batch_size)  # noqa: E731
    for metrics in search_epochs(state, loaders, worker.device, Bench(cfg.nb201_bench), worker.say, progress):
        epoch = metrics["epoch"]
        metrics["mlflow_run_id"] = worker.log.run_id
        worker.record(epoch, cfg.epochs, metrics, {"config": cfg.to_dict(), **state.state_dict()},
                      lambda log: log_epoch_records(log, cfg, metrics, state.net, epoch))
    worker.finish()


def build_state(cfg: SearchConfig, worker: Worker) -> SearchState:
    """The supernet on this worker's device, its optimisers and the teacher ring. Under several
    workers DDP wraps w alone (``WeightsOnly``; alpha is averaged by the alpha step) without
    broadcasting buffers: BatchNorm statistics are averaged explicitly (``sync_buffers``)."""
    net = make_supernet(cfg, worker.device)
    model = net
    if worker.world > 1:
        model = ray.train.torch.prepare_model(WeightsOnly(net), move_to_device=False,
                                              parallel_strategy_kwargs={"forward_sync_buffers": False})
    return SearchState.create(cfg, net, model)


def log_epoch_records(log: RunLogger, cfg: SearchConfig, metrics: dict[str, Any], net, epoch: int) -> None:
    """The current genotype (``genotype.json`` and tag, rewritten each epoch) and alpha
    (``alpha.json``), and the cell pictures every ``plot_every`` epochs."""
    genotype = genotype_from_json(metrics["genotype_json"])
    log_genotype_and_alpha(log, genotype, alpha_dict(dict(net.named_parameters())))
    if cfg.plot_every and epoch % cfg.plot_every == 0 and epoch < cfg.epochs and "es_returned_epoch" not in metrics:
        log_cell_pictures(log, genotype, f"plots/epoch_{epoch:03d}")


def make_search_trainer(cfg: SearchConfig, run: dict[str, Any], storage_path: str, callbacks: list | None = None,
                        placement_group_cleaner: bool = True) -> "ray.train.torch.TorchTrainer":
    """The search's TorchTrainer; ``run``: {name, tracking_uri, run_id}."""
    return make_trainer(train_loop_per_worker, {"search": cfg.to_dict(), "run": run}, cfg, run["name"],
                        storage_path, callbacks, placement_group_cleaner)
