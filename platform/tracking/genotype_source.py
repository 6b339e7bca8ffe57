"""Where a genotype comes from: a built-in, a genotype JSON file, a NAS-Bench-201 string, or an MLflow
search run (by id or name), whose ``genotype.json`` it reads."""

from __future__ import annotations

import tempfile
from pathlib import Path

from sddarts.platform.options import DEFAULT_EXPERIMENT
from sddarts.platform.tracking import runs
from sddarts.platform.tracking.registry import GenotypeSource
from sddarts.platform.tracking.store import check_tracking, store_missing
from sddarts.search_spaces import BUILTIN_GENOTYPES, AnyGenotype, genotype_from_json, load_genotype
from sddarts.search_spaces.errors import GenotypeError


def resolve_genotype(spec: str, tracking_uri: str | None = None, experiment: str = DEFAULT_EXPERIMENT
                     ) -> GenotypeSource:
    """A built-in name, a genotype JSON file, a NAS-Bench-201 architecture string, or an MLflow
    search run (its id or name) with genotype.json."""
    if spec in BUILTIN_GENOTYPES or spec.startswith("|") or Path(spec).is_file():
        return GenotypeSource(load_genotype(spec), None, spec)
    if not tracking_uri or store_missing(tracking_uri):
        raise GenotypeError(f"genotype {spec!r} is neither a built-in ({', '.join(BUILTIN_GENOTYPES)}) nor a file"
                            + (f", and {tracking_uri} holds no runs" if tracking_uri else ""))
    check_tracking(tracking_uri)
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
