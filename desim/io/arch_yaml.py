"""Native YAML architecture files: components and links, named directly.

::

    name: my_run                 # run name: reports go under OUTDIR/my_run/
    word_bytes: 1                # bytes per operand element
    clock_mhz: 1000              # accelerator clock: trace time and GB/s (cycles are unaffected)
    components:
      array: {kind: systolic_array, rows: 32, cols: 32, dataflow: ws}
      sram_ifmap: {kind: scratchpad, operand: ifmap, capacity_bytes: 65536}
      ...
    links:
      - {from: array.ifmap, to: sram_ifmap.compute}
      - {from: sram_ifmap.memory, to: bus.clients, bandwidth_bytes_per_cycle: 64, latency_cycles: 2}
      - [bus.memory, dram.clients]          # short form: [from, to]

Every key is checked: an unknown top-level key, kind, parameter or link attribute is an error
that names the file and line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import yaml

from desim.errors import DesimError, read_text
from desim.params import Param
from desim.system import System, run_name_problem

SETTINGS = {
    "name": Param(str, "desim_run", description="run name"),
    "word_bytes": Param(int, 1, "bytes", "bytes per operand element", minimum=1),
    "clock_mhz": Param(float, 1000.0, "MHz", "accelerator clock (trace time, bandwidth in GB/s)", positive=True),
}
for _key, _param in SETTINGS.items():
    _param.name = _key
TOP_LEVEL = (*SETTINGS, "components", "links")


def read_arch_yaml(path: str | Path) -> System:
    """The system a YAML architecture file describes, validated."""
    text = read_text(path, "architecture file")
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.SafeLoader(text).construct_document(root) if root is not None else None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise DesimError(f"not valid YAML: {problem}", file=path, line=mark.line + 1 if mark else None) from None
    lines = _Lines(root, path)
    _refuse_duplicate_keys(root, path)
    if not isinstance(data, dict):
        raise DesimError("expected a mapping with 'components' and 'links'", file=path, line=1)
    for key in data:
        if key not in TOP_LEVEL:
            lines.fail([key], f"unknown key (expected {', '.join(TOP_LEVEL)})", key=str(key))
    settings = {}
    for key, param in SETTINGS.items():
        try:
            settings[key] = param.coerce(data.get(key, param.default))
        except DesimError as error:
            lines.fail([key], error.message, key=key)
    problem = run_name_problem(settings["name"])
    if problem:
        lines.fail(["name"], f"{settings['name']!r} {problem}", key="name")
    components = data.get("components")
    if not isinstance(components, dict) or not components:
        lines.fail(
            ["components"] if "components" in data else [],
            "expected 'components': a mapping of name -> {kind, params}",
            key="components",
        )
    for node, spec in components.items():
        if not isinstance(spec, dict):
            lines.fail(["components", node], "expected a mapping with 'kind' and parameters", key=str(node))
    links = data.get("links", [])
    if not isinstance(links, list):
        lines.fail(["links"], "expected a list of links", key="links")
    link_specs = [_link(entry, index, lines) for index, entry in enumerate(links)]

    try:
        system = System.build(
            components,
            link_specs,
            name=settings["name"],
            word_bytes=settings["word_bytes"],
            clock_mhz=settings["clock_mhz"],
            source=str(path),
        )
        system.validate()
    except DesimError as error:
        path_in_file = _path_of(error.key, link_specs) if error.key else []
        raise DesimError(error.message, file=path, line=lines.line(path_in_file), key=error.key) from None
    return system


def _link(entry: Any, index: int, lines: _Lines) -> dict[str, Any]:
    if isinstance(entry, list) and len(entry) == 2:
        return {"from": entry[0], "to": entry[1]}
    if isinstance(entry, dict):
        return dict(entry)
    lines.fail(["links", index], "expected {from: node.port, to: node.port, ...} or [from, to]", key=f"links[{index}]")


def _path_of(key: str, links: list[dict[str, Any]]) -> list[Any]:
    """Where in the file an error key (``node.param``, ``links[3].to``, ``a.p->b.q``) points."""
    indexed = re.match(r"links\[(\d+)\](?:\.(\w+))?$", key)
    if indexed:
        return ["links", int(indexed.group(1))] + ([indexed.group(2)] if indexed.group(2) else [])
    joined = re.match(r"(\S+?\.\S+?)->(\S+?\.\S+?)$", key)
    if joined:
        for index, link in enumerate(links):
            if (link.get("from"), link.get("to")) == joined.groups():
                return ["links", index]
        return ["links"]
    node, _, rest = key.partition(".")
    return ["components", node] + ([rest] if rest else [])


def _refuse_duplicate_keys(node: yaml.Node | None, path: str | Path) -> None:
    """YAML lets a later key silently replace an earlier one; a typo'd copy is an error here."""
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            if key_node.value in seen:
                raise DesimError(
                    "this key appears twice in one mapping",
                    file=path,
                    line=key_node.start_mark.line + 1,
                    key=str(key_node.value),
                )
            seen.add(key_node.value)
            _refuse_duplicate_keys(value_node, path)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            _refuse_duplicate_keys(item, path)


class _Lines:
    """Line numbers of the nodes of a composed YAML document."""

    def __init__(self, root: yaml.Node | None, path: str | Path) -> None:
        self.root = root
        self.path = path

    def line(self, keys: list[Any]) -> int | None:
        """The line of the deepest node along ``keys`` that exists (1-based)."""
        node = self.root
        found = node.start_mark.line + 1 if node is not None else None
        for depth, key in enumerate(keys):
            child = None
            if isinstance(node, yaml.MappingNode):
                for key_node, value_node in node.value:
                    if key_node.value == str(key):
                        child = key_node if depth == len(keys) - 1 else value_node
                        break
            elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
                child = node.value[key]
            if child is None:
                break
            node = child
            found = node.start_mark.line + 1
        return found

    def fail(self, keys: list[Any], message: str, *, key: str) -> NoReturn:
        raise DesimError(message, file=self.path, line=self.line(keys), key=key)
