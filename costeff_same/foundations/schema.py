"""One parameter schema per chapter: names, types and help declared once, defaults from YAML.

A chapter's notebook takes flat parameters (papermill's ``-p key value``, the CLI's
``--set key=value``). Each chapter declares them once, as a :class:`Schema` of
:class:`Param` (a type and a help text). The **default profile**
(``configs/default.yaml``) is the single source of their default values; the other
profiles override them. From the schema and the profile follow:

- :meth:`Schema.complete`: the check of a set of parameters (unknown names and wrong types
  are refused, naming the value and what is accepted) and its completion from the default
  profile, which every chapter's config builder calls;
- :meth:`Schema.parameters_cell`: the text of the notebook's ``parameters`` cell; a test
  checks that every notebook's cell is exactly this text, so the notebook, the profile and
  the builder cannot drift apart.
"""

from __future__ import annotations

import ast
import dataclasses
import json
from typing import Any

from costeff_same.foundations.config import ConfigError, load_profile

#: the project's line length (``pyproject.toml``); a longer parameter line is marked for ruff
LINE_LENGTH = 120
#: the annotations a parameter may have, and what each accepts
KINDS = ("str", "int", "float", "bool", "Optional[str]", "Optional[int]", "Optional[float]",
         "list[str]", "list[int]", "list[float]")


def _accepts(kind: str, value: Any) -> bool:
    if kind.startswith("Optional["):
        return value is None or _accepts(kind[9:-1], value)
    if kind.startswith("list["):
        return isinstance(value, (list, tuple)) and all(_accepts(kind[5:-1], v) for v in value)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str)


def describe(kind: str) -> str:
    """``kind`` in words, for error messages (``Optional[int]`` -> "an integer or null")."""
    if kind.startswith("Optional["):
        return f"{describe(kind[9:-1])} or null"
    if kind.startswith("list["):
        return f"a list of {describe(kind[5:-1])}"
    return {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}[kind]


def _literal(value: Any) -> str:
    """``value`` as a Python literal in the notebook (strings in double quotes)."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_literal(v) for v in value) + "]"
    if isinstance(value, str):
        return json.dumps(value)
    return repr(value)


#: the first line of the cell papermill injects after a notebook's ``parameters`` cell
PAPERMILL_MARKER = "# Parameters"


def injected_parameters(namespace: dict[str, Any]) -> set[str]:
    """The names papermill assigned in its injected cell, read from the IPython input
    history ``In`` of ``namespace`` (empty outside papermill)."""
    history = namespace.get("In") or []
    for source in reversed(history):
        if isinstance(source, str) and source.lstrip().startswith(PAPERMILL_MARKER):
            tree = ast.parse(source)
            return {target.id for node in tree.body if isinstance(node, ast.Assign)
                    for target in node.targets if isinstance(target, ast.Name)}
    return set()


@dataclasses.dataclass(frozen=True)
class Param:
    """One notebook parameter.

    Attributes:
        kind: its annotation, one of :data:`KINDS`.
        help: one line for the notebook and ``--help``.
    """

    kind: str
    help: str

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"unknown parameter kind {self.kind!r}; accepted: {', '.join(KINDS)}")


@dataclasses.dataclass(frozen=True)
class Schema:
    """A chapter's parameters, in the notebook's order.

    Attributes:
        chapter: the notebook's name (``01_multi_exit`` ...), its key in the profiles.
        params: ``{name: Param}``; ``profile`` (which profile a run belongs to) is added to
            every schema and is not passed to the config builder.
    """

    chapter: str
    params: dict[str, Param]

    @property
    def all_params(self) -> dict[str, Param]:
        """``profile`` first, then the chapter's parameters."""
        return {"profile": Param("str", "parameter profile the run belongs to: smoke, default or paper"),
                **self.params}

    def defaults(self) -> dict[str, Any]:
        """The default profile's values of every parameter (``profile`` is ``"default"``).

        A chapter with no parameter but ``profile`` (the reproduction summary, which reads
        the other chapters' results) has no entry in the profiles.

        Raises:
            ConfigError: when the default profile lacks a parameter or has one the schema
                does not know.
        """
        if not self.params:
            return {"profile": "default"}
        values = {"profile": "default", **load_profile("default")[self.chapter]}
        missing = sorted(set(self.all_params) - set(values))
        unknown = sorted(set(values) - set(self.all_params))
        if missing or unknown:
            raise ConfigError(f"configs/default.yaml, {self.chapter}: missing {missing}, unknown {unknown}")
        return {name: values[name] for name in self.all_params}

    def complete(self, values: dict[str, Any]) -> dict[str, Any]:
        """``values`` checked and completed from the default profile, without ``profile``.

        Raises:
            ConfigError: for an unknown name (the accepted ones are listed) or a value of the
                wrong type (naming the value and the accepted type).
        """
        unknown = sorted(set(values) - set(self.all_params))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown} for {self.chapter}; "
                              f"accepted: {', '.join(self.all_params)}")
        for name, value in values.items():
            kind = self.all_params[name].kind
            if kind.startswith("list[") and isinstance(value, (list, tuple)):
                for i, item in enumerate(value):
                    if not _accepts(kind[5:-1], item):
                        raise ConfigError(f"{name}[{i}]={item!r} must be {describe(kind[5:-1])}")
            if not _accepts(kind, value):
                raise ConfigError(f"{name}={value!r} must be {describe(kind)}")
        out = {**self.defaults(), **values}
        out.pop("profile")
        return out

    def from_namespace(self, namespace: dict[str, Any]) -> dict[str, Any]:
        """The parameters of a notebook run, from its ``globals()``, ``profile`` left out.

        ``profile`` selects that profile's values of every parameter; on top of them come the
        parameters given explicitly: those papermill injected (``papermill -p epochs 1``; its
        injected cell is found in the kernel's input history) and those edited by hand in the
        parameters cell (a value other than the cell's default). So ``papermill -p profile
        smoke`` runs the smoke profile, not the default one with a smoke label.

        Raises:
            ConfigError: for an injected parameter the chapter does not know (the accepted
                ones are listed) or an unknown profile.
        """
        injected = injected_parameters(namespace)
        unknown = sorted(set(injected) - set(self.all_params))
        if unknown:
            raise ConfigError(f"unknown parameter(s) {unknown} for {self.chapter}; "
                              f"accepted: {', '.join(self.all_params)}")
        if not self.params:
            return {}
        defaults = self.defaults()
        chosen = load_profile(namespace.get("profile", "default")).get(self.chapter, {})
        values = {name: chosen[name] for name in self.params if name in chosen}
        values.update({name: namespace[name] for name in self.params
                       if name in injected or namespace[name] != defaults[name]})
        return values

    def parameters_cell(self) -> str:
        """The notebook's ``parameters`` cell: one ``name: kind = default  # help`` line each."""
        lines = []
        for name, param in self.all_params.items():
            line = f"{name}: {param.kind} = {_literal(self.defaults()[name])}  # {param.help}"
            lines.append(line if len(line) <= LINE_LENGTH else f"{line}  # noqa: E501 (a long default)")
        return "\n".join(lines) + "\n"
