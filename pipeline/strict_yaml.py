"""YAML as the project reads its config: PyYAML's safe loader, except that a key given
twice in one mapping is refused (PyYAML keeps the last value silently, ruamel.yaml, which
DVC uses, refuses it: every engine must give the same answer for the same file)."""

from __future__ import annotations

import re

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

MERGE_TAG = "tag:yaml.org,2002:merge"


class DuplicateKeyError(yaml.YAMLError):
    """A key given twice in one mapping: its path (``presets.demo.methods``) and both lines."""

    def __init__(self, path: str, first_line: int, line: int):
        super().__init__(path, first_line, line)
        self.path, self.first_line, self.line = path, first_line, line

    def __str__(self) -> str:
        return (
            f"line {self.line}: {self.path} is given twice (also on line {self.first_line}); "
            "YAML would keep only the last value: remove one"
        )


def refuse_duplicate_keys(node: Node, path: str = "", seen: set | None = None) -> None:
    """Raise DuplicateKeyError for the first key given twice in a mapping of ``node``'s tree
    (keys merged in with ``<<`` may be overridden, as YAML allows)."""
    seen = set() if seen is None else seen
    if id(node) in seen:  # an alias of a node already checked
        return
    seen.add(id(node))
    if isinstance(node, MappingNode):
        first_lines = {}
        for key, value in node.value:
            if key.tag == MERGE_TAG:
                continue
            name = key.value if isinstance(key, ScalarNode) else repr(key.value)  # a complex key: rare
            where = f"{path}.{name}" if path else name
            if (key.tag, name) in first_lines:
                raise DuplicateKeyError(where, first_lines[key.tag, name], key.start_mark.line + 1)
            first_lines[key.tag, name] = key.start_mark.line + 1
            refuse_duplicate_keys(value, where, seen)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            refuse_duplicate_keys(item, f"{path}[{index}]", seen)


class UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader refusing a key given twice in one mapping."""

    def construct_document(self, node):
        refuse_duplicate_keys(node)
        return super().construct_document(node)


# YAML 1.2's floats with an exponent and no dot (1e-3, 2E+5), which YAML 1.1, and so
# PyYAML, reads as text; ruamel.yaml (DVC) reads them as numbers.
EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9]+[eE][-+]?[0-9]+$")
UniqueKeyLoader.add_implicit_resolver("tag:yaml.org,2002:float", EXPONENT_FLOAT, list("-+0123456789"))


def load(stream):
    """The data of a YAML document (text or an open file); DuplicateKeyError (a YAMLError)
    for a key given twice."""
    return yaml.load(stream, Loader=UniqueKeyLoader)
