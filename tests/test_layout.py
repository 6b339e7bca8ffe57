"""The house by role: the platform at most five import floors deep, the SD-DARTS algorithm
importable (and runnable) without Ray or MLflow, one epoch loop, no module that only re-exports,
no file name used twice, and every workaround with the version it targets."""

from __future__ import annotations

import ast
import importlib
import re
import subprocess
import sys

from helpers import ROOT

LAYERS = ("platform", "trainables", "search_spaces")


def module_name(path) -> str:
    rel = path.relative_to(ROOT / "platform").with_suffix("")
    parts = [p for p in rel.parts if p != "__init__"]
    if parts[:1] == ["python_api"]:
        return "sddarts"
    return ".".join(["sddarts.platform", *parts])


def platform_imports() -> dict[str, set[str]]:
    """Each platform module and the platform modules it imports (at the top or inside a function)."""
    mods = {module_name(p): p for p in (ROOT / "platform").rglob("*.py")}
    deps = {}
    for name, path in mods.items():
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("sddarts.platform"):
                found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in mods else node.module
                          for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("sddarts.platform")}
        deps[name] = {d for d in found if d in mods and d != name}
    return deps


def floors(deps: dict[str, set[str]]) -> dict[str, int]:
    """1 for a module that imports no other platform module, else 1 + the deepest it imports."""
    out: dict[str, int] = {}

    def floor(m: str, path: tuple[str, ...] = ()) -> int:
        assert m not in path, f"import cycle: {' -> '.join((*path, m))}"
        if m not in out:
            out[m] = 1 + max((floor(d, (*path, m)) for d in deps[m]), default=0)
        return out[m]

    for m in deps:
        floor(m)
    return out


def test_no_platform_module_imports_more_than_five_floors_deep():
    found = floors(platform_imports())
    deepest = max(found, key=found.get)
    assert found[deepest] <= 5, (deepest, found[deepest])
    assert found["sddarts.platform.tracking.runs"] == 1 and found["sddarts.platform.commands.cli"] >= 3  # it counts


BLOCK = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('ray', 'mlflow'):
            raise ImportError('blocked: ' + name)
sys.meta_path.insert(0, Block())
import pkgutil, importlib
import sddarts.trainables.sd_darts as pkg
for m in pkgutil.iter_modules(pkg.__path__):
    importlib.import_module(f'sddarts.trainables.sd_darts.{m.name}')
from sddarts.trainables.sd_darts.searcher import Searcher
history = Searcher(dataset='digits', C=4, layers=3, epochs=1, batch_size=32, steps_per_epoch=2, vote_count=2,
                   teacher_interval=1, sharpness_every=0).run()
print(len(history), sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'mlflow')))
"""


def test_the_algorithm_imports_and_searches_with_ray_and_mlflow_unimportable():
    done = subprocess.run([sys.executable, "-c", BLOCK], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split("\n")[-2] == "1 []"


def test_the_worker_and_searcher_run_one_epoch_loop():
    loop = (ROOT / "trainables/workers/search_loop.py").read_text()
    searcher = (ROOT / "trainables/sd_darts/searcher.py").read_text()
    for text in (loop, searcher):
        assert "search_epochs(" in text
        assert not re.search(r"\b(search_epoch|measure|early_stop|bench_figures)\(", text)


def only_reexports(tree: ast.Module) -> bool:
    """A module whose body is a docstring, imports and ``__all__``, with at least one import."""
    kinds = [type(n) for n in tree.body if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant))]
    assigns_all = [n for n in tree.body if isinstance(n, ast.Assign) and any(getattr(t, "id", "") == "__all__"
                                                                            for t in n.targets)]
    imports = [k for k in kinds if k in (ast.Import, ast.ImportFrom)]
    return bool(imports) and len(imports) + len(assigns_all) == len(kinds)


def test_no_module_of_the_three_layers_only_re_exports():
    offenders = [str(p.relative_to(ROOT)) for layer in LAYERS for p in (ROOT / layer).rglob("*.py")
                 if only_reexports(ast.parse(p.read_text()))]
    assert offenders == []
    assert only_reexports(ast.parse("'''doc'''\nfrom a import b\n__all__ = ['b']\n"))  # the check can fail


def test_no_file_name_is_used_twice_across_the_layers():
    names: dict[str, list[str]] = {}
    for layer in LAYERS:
        for p in (ROOT / layer).rglob("*.py"):
            if p.name != "__init__.py":
                names.setdefault(p.name, []).append(str(p.relative_to(ROOT)))
    assert {n: ps for n, ps in names.items() if len(ps) > 1} == {}


def test_no_init_at_the_root_of_platform():
    assert not (ROOT / "platform/__init__.py").exists()  # it would shadow the standard library's platform


def test_every_workaround_in_the_table_exists_and_names_its_version():
    table = importlib.import_module("sddarts.platform.compat").__doc__
    rows = re.findall(r"^``([\w.]+)``\s+(\S+ [\d.]+)", table, re.M)
    assert len(rows) >= 8
    for where, version in rows:
        assert re.fullmatch(r"(Ray|MLflow|torch) \d+\.\d+", version), (where, version)
        assert any(resolves(f"{base}.{where}") for base in ("sddarts.platform.compat", "sddarts.platform",
                                                            "sddarts.trainables")), where


def resolves(dotted: str) -> bool:
    """Whether ``dotted`` names a module, or an attribute of one."""
    module, _, attr = dotted.rpartition(".")
    for name, look in ((dotted, None), (module, attr)):
        try:
            found = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        if look is None or hasattr(found, look):
            return True
    return False


def test_the_workers_setup_hook_imports_no_torch():
    """Ray runs the hook before it sets OMP_NUM_THREADS for the worker: torch imported there would
    take every core's threads in each worker (two workers on two cores ran 10x slower)."""
    from sddarts.platform.compat.ray_local import WORKER_SETUP

    module = WORKER_SETUP.rpartition(".")[0]
    code = f"import sys, {module}; print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr


def test_a_search_worker_imports_neither_torchvision_nor_sklearn():
    """Every Train worker and sweep trial is a fresh process: torchvision's import (it loads
    torch._dynamo) and sklearn.datasets' each cost it over a second, for digits, which needs neither."""
    code = ("import sys; from sddarts.trainables.workers.search_loop import train_loop_per_worker; "
            "from sddarts.trainables.data.datasets import DataSource, load_dataset; load_dataset(DataSource('digits')); "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torchvision', 'sklearn'}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "[]", done.stdout + done.stderr
