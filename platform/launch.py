"""The one search and the one evaluation a user asks for: checked (``preflight``), Ray joined or
started (``cluster.connect``), then run as one MLflow run around one TorchTrainer (``jobs``).
``sddarts search``/``evaluate`` and ``sddarts.search``/``evaluate`` both call these."""

from __future__ import annotations

from typing import Any

from sddarts.platform.cluster import connect
from sddarts.platform.jobs import EvalResult, SearchResult, history_of, run_evaluation, run_search
from sddarts.platform.options import RunOptions
from sddarts.platform.preflight import check_inputs
from sddarts.platform.tracking.genotype_source import resolve_genotype
from sddarts.platform.tracking.registry import GenotypeSource, check_network
from sddarts.trainables.config import EVAL_PRESETS, SEARCH_PRESETS, EvalConfig, SearchConfig


def search(preset: str, fields: dict[str, Any], run: RunOptions) -> SearchResult:
    """One SD-DARTS search: ``preset``'s config with ``fields`` over it (with ``run.resume``, the
    run's own config, which ``fields`` must match), run as a Ray Train job in an MLflow run."""
    run, cfg = check_inputs(SearchConfig, SEARCH_PRESETS, preset, fields, run, "search")
    connect(run.address or None, cfg)
    print(f"sddarts search {run.name}: {cfg.dataset}, {cfg.num_workers} worker(s), {cfg.epochs} epochs, "
          f"{'SD-DARTS' if cfg.distills else 'plain DARTS'} (sd_weight={cfg.sd_weight:g}, vote_count={cfg.vote_count}, "
          f"teacher_interval={cfg.teacher_interval}, T={cfg.temperature:g}, voting={cfg.voting})", flush=True)
    result = run_search(cfg, run)
    result.history = history_of(run.tracking_uri, result.run_id)
    return result


def evaluate(genotype: str | GenotypeSource, preset: str, fields: dict[str, Any], run: RunOptions) -> EvalResult:
    """Retrains ``genotype`` from scratch (a built-in name, a genotype JSON file, a NAS-Bench-201
    string, a search run's id or name, or a ``GenotypeSource``) and registers the model."""
    run, cfg = check_inputs(EvalConfig, EVAL_PRESETS, preset, fields, run, "evaluate")
    source = genotype if isinstance(genotype, GenotypeSource) else resolve_genotype(genotype, run.tracking_uri,
                                                                                    run.experiment)
    check_network(source.genotype, cfg)
    connect(run.address or None, cfg)
    print(f"sddarts evaluate {run.name}: {source.genotype.space} {source.genotype.short()} on {cfg.dataset}, "
          f"C={cfg.C}, {cfg.layers} cells, {cfg.epochs} epochs, {cfg.num_workers} worker(s)", flush=True)
    out = run_evaluation(cfg, source, run)
    return EvalResult(run.name, out["run_id"], out.get("model_uri"), out)
