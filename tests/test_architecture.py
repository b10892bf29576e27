"""The library's shape: layers that import one way, small units, registries that match their code."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from costeff_same.foundations import registry
from costeff_same.foundations.paths import PACKAGE_DIR, REPO_DIR

MAX_MODULE_LINES = 450
MAX_FUNCTION_CODE_LINES = 60
SOURCES = sorted(PACKAGE_DIR.rglob("*.py"))


def test_the_import_linter_contracts_hold():
    """Layers, independent chapters and no import cycle (the contracts in pyproject.toml)."""
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(lint)], cwd=REPO_DIR, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "3 kept, 0 broken" in run.stdout


def test_the_layers_contract_catches_an_upward_import(tmp_path):
    """The contract is not vacuous: a model-and-data module importing a chapter breaks it."""
    import shutil

    copy = tmp_path / "repo"
    shutil.copytree(PACKAGE_DIR, copy / "costeff_same", ignore=shutil.ignore_patterns("__pycache__", "nltk_data"))
    shutil.copy(REPO_DIR / "pyproject.toml", copy / "pyproject.toml")
    data = copy / "costeff_same" / "core" / "data.py"
    data.write_text(data.read_text() + "\nfrom costeff_same.chapters import same  # noqa: E402\n")
    lint = Path(sys.executable).parent / "lint-imports"
    run = subprocess.run([str(lint)], cwd=copy, capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(copy), "PATH": "/usr/bin:/bin"})
    assert run.returncode != 0 and "BROKEN" in run.stdout


def _code_lines(lines: list[str], node: ast.AST) -> int:
    docs = set()
    for n in ast.walk(node):
        body = getattr(n, "body", None)
        if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Module)) and body \
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            docs.update(range(body[0].lineno, body[0].end_lineno + 1))
    return sum(1 for i in range(node.lineno, node.end_lineno + 1)
               if i not in docs and lines[i - 1].strip() and not lines[i - 1].strip().startswith("#"))


def test_modules_and_functions_are_small():
    too_long = [(len(p.read_text().splitlines()), str(p)) for p in SOURCES
                if len(p.read_text().splitlines()) > MAX_MODULE_LINES]
    assert not too_long, too_long
    functions = []
    for path in SOURCES:
        text = path.read_text()
        lines = text.splitlines()
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                functions.append((_code_lines(lines, node), f"{path.relative_to(PACKAGE_DIR)}:{node.name}"))
    assert not [f for f in functions if f[0] > MAX_FUNCTION_CODE_LINES], sorted(functions)[-5:]


def test_package_imports_inside_functions_only_where_documented():
    """The command line imports inside its commands (a fast --help) and ``notebooks.setup``
    orders its imports; nowhere else does a function import the package (no hidden cycle)."""
    allowed = {"cli.py", "notebooks.py"}
    found = []
    for path in SOURCES:
        if path.name in allowed:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for inner in ast.walk(node):
                    if isinstance(inner, ast.ImportFrom) and (inner.module or "").startswith("costeff_same"):
                        found.append(f"{path.relative_to(PACKAGE_DIR)}:{inner.lineno}")
    assert not found, found


def test_no_docstring_points_outside_the_repository():
    offenders = [str(p.relative_to(PACKAGE_DIR)) for p in SOURCES if "papers.md" in p.read_text()]
    assert not offenders, offenders


@pytest.mark.parametrize("names,implemented", [
    (registry.EXIT_STYLES, lambda: __import__("costeff_same.core.modeling", fromlist=["x"]).EXIT_STYLES),
    (registry.POLICIES, lambda: __import__("costeff_same.core.exits", fromlist=["x"]).POLICIES),
    (registry.GLUE_TASK_NAMES, lambda: tuple(__import__("costeff_same.core.data", fromlist=["x"]).GLUE_TASKS)),
    (registry.PACKAGED_BACKBONES, lambda: __import__("costeff_same.core.backbones", fromlist=["x"]).PACKAGED),
])
def test_each_registry_names_what_its_module_implements(names, implemented):
    assert tuple(names) == tuple(implemented())


def test_every_recipe_of_the_registry_builds_from_its_module():
    from costeff_same.attacks import recipe_module

    for name in registry.RECIPES:
        module = recipe_module(name)
        assert module.NAME and callable(module.build)
