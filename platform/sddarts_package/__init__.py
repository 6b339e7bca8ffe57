"""sddarts: Self-Distillation DARTS on Ray, tracked in MLflow.

From Python (each as the ``sddarts`` command of the same name; see ``sddarts.platform.python_api``)::

    import sddarts
    found = sddarts.search(preset="digits-demo", epochs=2)
    found.genotype, found.metrics["derived_val_acc"], found.history
    model = sddarts.evaluate(found, epochs=2)          # model.model_uri: models:/...
    rows = sddarts.sweep(preset="digits-demo", trials=2).rows

``sddarts.Searcher`` runs the search loop on one process, without Ray or MLflow. Names load on
first use, so ``import sddarts.search_spaces`` stays pure torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

_HERE = Path(__file__).resolve().parent
if _HERE.name == "sddarts_package":  # a checkout (editable install): the layers live at its root
    __path__.append(str(_HERE.parents[1]))

_API = "sddarts.platform.python_api"
_EXPORTS = {
    "search": _API, "sweep": _API, "evaluate": _API, "compare": _API, "SddartsError": _API,
    "SearchResult": _API, "SweepResult": _API, "EvalResult": _API, "CompareResult": _API,
    "Searcher": "sddarts.trainables.searcher",
    "SearchConfig": "sddarts.trainables.config", "EvalConfig": "sddarts.trainables.config",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'sddarts' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
