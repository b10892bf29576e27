"""The code fingerprint of a stage: what the results cache keys on besides the config.

A cached result is only as good as the code that computed it, so the key of an entry
(:mod:`costeff_same.engine.results`) includes a fingerprint of that code. The unit is the
module:

- the stage function's module, and every module of the ``costeff_same`` package that it
  imports, directly or through other modules (any ``import``, at the top or inside a
  function), with the ``__init__`` of every package on the way;
- a string literal that names a module of the package counts as an import (the recipe
  registry names its modules for :func:`importlib.import_module`);
- each module contributes the sha256 of its syntax tree with docstrings removed, so a
  change of a comment, a docstring or the layout leaves the fingerprint alone, and any
  change of what the code does (a statement, a constant, a default) changes it.

A stage is therefore recomputed when its own module or any module below it changes, and
the stages that read it through the cache are recomputed too (their modules import it),
while a stage whose modules are untouched keeps its entry. Modules are small, one concept
each, so the unit is fine enough: changing chapter 2's evaluation does not retrain
chapter 1's models, whose training modules do not import it. This is the rule of
showyourwork (a rule re-runs when its script changes), applied to Python imports.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import sys
from collections.abc import Callable
from pathlib import Path

PACKAGE = "costeff_same"


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


def _resolve(module: str, level: int, name: str | None, package: str) -> str:
    if level == 0:
        return module or ""
    base = package.split(".")
    base = base[: len(base) - (level - 1)]
    return ".".join(base + ([module] if module else []))


ROOT = Path(__file__).resolve().parents[1]


@functools.lru_cache(maxsize=512)
def _parse(source: str, module: str, is_package: bool, package_name: str) -> tuple[str, tuple[str, ...]]:
    """``(sha256 of the docstring-free syntax tree, package modules it names)`` of one source text."""
    tree = _strip_docstrings(ast.parse(source, filename=module))
    digest = hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()
    package = module if is_package else module.rpartition(".")[0]
    named: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            named.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            target = _resolve(node.module, node.level, None, package)
            named.add(target)
            named.update(f"{target}.{alias.name}" for alias in node.names)   # ``from pkg import module``
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) \
                and node.value.startswith(package_name + "."):
            named.add(node.value)
    return digest, tuple(sorted(n for n in named if n == package_name or n.startswith(package_name + ".")))


def _source(module: str, package: str, root: Path) -> tuple[Path, bool] | None:
    """The file of ``module`` and whether it is a package, or None when it is not a module.

    Package modules are found on disk under ``root`` (nothing is imported); another module
    (a test's, say) by the file it was loaded from.
    """
    if module == package or module.startswith(package + "."):
        base = root.joinpath(*module.split(".")[1:])
        if (base / "__init__.py").is_file():
            return base / "__init__.py", True
        if base.with_suffix(".py").is_file():
            return base.with_suffix(".py"), False
        return None
    origin = getattr(sys.modules.get(module), "__file__", None)
    if not origin or not origin.endswith(".py"):
        return None
    return Path(origin), Path(origin).name == "__init__.py"


def module_closure(module: str, package: str = PACKAGE, root: Path = ROOT) -> dict[str, str]:
    """``{module: sha256}`` of ``module`` and every module of ``package`` (rooted at the
    folder ``root``) it reaches (see the module docstring)."""
    out: dict[str, str] = {}
    todo = [module]
    while todo:
        name = todo.pop()
        if name in out:
            continue
        found = _source(name, package, root)
        if found is None:
            continue
        path, is_package = found
        digest, named = _parse(path.read_text(), name, is_package, package)
        out[name] = digest
        parents = [name.rsplit(".", k)[0] for k in range(1, name.count(".") + 1)]
        todo.extend(n for n in (*named, *parents) if n not in out)
    return out


def code_fingerprint(fn: Callable) -> str:
    """16 hex digits naming the code of stage function ``fn`` (its module closure).

    ``functools.partial`` objects and decorated functions are unwrapped to the function
    that holds the code.
    """
    while isinstance(fn, functools.partial) or hasattr(fn, "__wrapped__"):
        fn = fn.func if isinstance(fn, functools.partial) else fn.__wrapped__
    closure = module_closure(fn.__module__, PACKAGE, ROOT)   # read at call time: tests point them elsewhere
    blob = "\n".join(f"{name} {digest}" for name, digest in sorted(closure.items()))
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
