"""Native YAML architecture files: components and links, named directly.

::

    name: my_run                 # run name: reports go under OUTDIR/my_run/
    word_bytes: 1                # bytes per operand element
    accumulator_bytes: 4         # bytes per partial sum (default: word_bytes)
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
that names the file and line. YAML's aliases (``*name``) are refused: a file means what it says,
and an alias cannot make a small file expand into a huge (or endless) one.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, NoReturn

import yaml

from desim.errors import DesimError, read_text
from desim.limits import MAX_NESTING
from desim.params import parse_float
from desim.system import SETTINGS, System

TOP_LEVEL = (*SETTINGS, "components", "links")
_YAML_INT = re.compile(r"[+-]?(0|[1-9][0-9]*|0x[0-9a-fA-F]+)")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing aliases and nesting deeper than ``MAX_NESTING``.

    Numbers are decimal (integers may also be hex, ``0x10``): YAML 1.1's other spellings read
    surprisingly (``010`` is 8, ``1:30`` is 90, ``1_0`` is 10) and are refused, as are numbers too
    large to be any desim value (``1e400`` is not ``.inf``). Only the types desim's settings take
    are built: text, numbers, true/false, null, lists and mappings; a date-like word is text.
    """

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, f"aliases (*{event.anchor}) are not supported; write the value out", event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_NESTING} levels deep", self.peek_event().start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        text = node.value.strip()
        if not _YAML_INT.fullmatch(text):
            raise yaml.constructor.ConstructorError(
                None,
                None,
                f"write integers in decimal without leading zeros (or 0x hex), not {text!r}",
                node.start_mark,
            )
        if len(text.lstrip("+-")) > 30:
            raise yaml.constructor.ConstructorError(None, None, "this integer is too large", node.start_mark)
        return super().construct_yaml_int(node)

    def construct_yaml_float(self, node: yaml.ScalarNode) -> float:
        text = node.value.strip()
        if not (text.lower().lstrip("+-") in (".inf", ".nan") or parse_float(text) is not None):
            raise yaml.constructor.ConstructorError(
                None, None, f"write numbers in decimal (12, 0.5, 1e3 or .inf), not {text!r}", node.start_mark
            )
        return super().construct_yaml_float(node)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        text = node.value.strip().lower()
        if text not in self.bool_values:  # an explicit !!bool of something else
            raise yaml.constructor.ConstructorError(None, None, f"not true or false: {node.value!r}", node.start_mark)
        return self.bool_values[text]

    def refuse(self, node: yaml.Node) -> None:
        """A YAML type no desim setting takes (dates, binary, sets, ordered maps)."""
        kind = node.tag.rpartition(":")[2]
        raise yaml.constructor.ConstructorError(None, None, f"no desim setting takes a {kind}", node.start_mark)


_Loader.add_constructor("tag:yaml.org,2002:int", _Loader.construct_yaml_int)
_Loader.add_constructor("tag:yaml.org,2002:float", _Loader.construct_yaml_float)
_Loader.add_constructor("tag:yaml.org,2002:bool", _Loader.construct_yaml_bool)
for _tag in ("timestamp", "binary", "set", "omap", "pairs"):
    _Loader.add_constructor(f"tag:yaml.org,2002:{_tag}", _Loader.refuse)
# A date-like value (a run named 2024-02-30) is text, as every other unquoted word is.
_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_arch_yaml(path: str | Path) -> System:
    """The system a YAML architecture file describes, validated."""
    text = read_text(path, "architecture file")
    loader = None
    try:
        loader = _Loader(text)  # reading starts here: a character YAML forbids fails at once
        root = loader.get_single_node()
        data = loader.construct_document(root) if root is not None else None
    except yaml.reader.ReaderError as error:
        line = text.count("\n", 0, error.position) + 1
        raise DesimError(
            f"not valid YAML: character {error.character:#x} is not allowed", file=path, line=line
        ) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        raise DesimError(f"not valid YAML: {problem}", file=path, line=mark.line + 1 if mark else None) from None
    finally:
        if loader is not None:
            loader.dispose()
    lines = _Lines(root, path)
    _refuse_duplicate_keys(root, path)
    if not isinstance(data, dict):
        raise DesimError("expected a mapping with 'components' and 'links'", file=path, line=1)
    for key in data:
        if key not in TOP_LEVEL:
            lines.fail([key], f"unknown key (expected {', '.join(TOP_LEVEL)})", key=str(key))
    settings = {key: data.get(key, param.default) for key, param in SETTINGS.items()}  # the System checks them
    components = data.get("components")
    if not isinstance(components, dict) or not components:
        lines.fail(
            ["components"] if "components" in data else [],
            "expected 'components': a mapping of name -> {kind, params}",
            key="components",
        )
    for node, spec in components.items():
        if not isinstance(node, str):
            lines.fail(["components", node], f"a component's name must be text, got {node!r}", key=str(node))
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
            **settings,
            source=str(path),
        )
        system.validate()
    except DesimError as error:
        path_in_file = _path_of(error.key, components, link_specs) if error.key else []
        raise DesimError(error.message, file=path, line=lines.line(path_in_file), key=error.key) from None
    return system


def _link(entry: Any, index: int, lines: _Lines) -> dict[str, Any]:
    if isinstance(entry, list) and len(entry) == 2:
        return {"from": entry[0], "to": entry[1]}
    if isinstance(entry, dict):
        return dict(entry)
    lines.fail(["links", index], "expected {from: node.port, to: node.port, ...} or [from, to]", key=f"links[{index}]")


def _path_of(key: str, components: dict[str, Any], links: list[dict[str, Any]]) -> list[Any]:
    """Where in the file an error key (a setting, ``node.param``, ``node.port``, ``links[3].to``,
    ``a.p->b.q``) points: a port's error at the first link that attaches there."""
    if key in SETTINGS:
        return [key]
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
    spec = components.get(node)
    if rest and not (isinstance(spec, dict) and rest in spec):
        for index, link in enumerate(links):
            if key in (link.get("from"), link.get("to")):
                return ["links", index]
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
