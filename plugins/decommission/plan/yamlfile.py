"""Reading the plan's YAML files safely: regular files of bounded size, no aliases, every fault named.

A plan or mapping path may name anything (``/dev/zero``, a FIFO, a 50 MB alias bomb): only a
regular file within its size bound is read, and YAML aliases (``*name``), which a plan never
needs and which make a few bytes expand into gigabytes, are refused before anything is built.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: specs are read by every task


class YamlFileError(ValueError):
    """The file cannot be read as the plan's YAML; the message names the file and the fault."""


def read_yaml(path: Path, *, max_bytes: int, what: str, lines: dict[tuple[Any, ...], int] | None = None) -> Any:
    """The parsed YAML of ``path``, which must be a regular file of at most ``max_bytes``.

    :param lines: when given, filled with the line (1-based) of every node, by its path of keys and
        list positions (``("tables", "diagnos", "key")``), so a fault found later can name its line

    :raises FileNotFoundError: no such file
    :raises YamlFileError: not a regular file, too large, aliases, or not valid YAML
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise YamlFileError(f"{path}: the {what} cannot be opened ({type(exc).__name__})") from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):  # before fdopen, which refuses a folder with its own error
        os.close(fd)
        raise YamlFileError(f"{path}: the {what} is not a regular file")
    with os.fdopen(fd, "rb") as f:
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlFileError(f"{path}: the {what} is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        loader = _LOADER(text)
        try:
            # composed once: an alias is a node met twice (shared, never expanded), found before anything is built
            node = loader.get_single_node()
            if _repeated_node(node) is not None:
                # only on this error path: the events say which alias and on which line
                alias = next(e for e in yaml.parse(text, Loader=_LOADER) if isinstance(e, yaml.AliasEvent))
                raise YamlFileError(
                    f"{path}: line {alias.start_mark.line + 1}: YAML aliases (*{alias.anchor}) are not allowed "
                    f"in the {what}"
                )
            if lines is not None and node is not None:
                lines.update(node_lines(node))
            return None if node is None else loader.construct_document(node)
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise YamlFileError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc


def node_lines(root: yaml.Node) -> dict[tuple[Any, ...], int]:
    """The line (1-based) of every node under ``root``, by its path; a mapping's scalar keys name the path."""
    out: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[tuple[Any, ...], yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        out.setdefault(path, node.start_mark.line + 1)  # a mapping's value: the line of its key, set below
        if isinstance(node, yaml.SequenceNode):
            stack += [((*path, i), child) for i, child in enumerate(node.value)]
        elif isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    stack.append(((*path, key.value), value))
                    out[(*path, key.value)] = key.start_mark.line + 1
    return out


def line_of(lines: dict[tuple[Any, ...], int], path: tuple[Any, ...]) -> int | None:
    """The line of ``path``, or of its nearest ancestor the file holds (a missing key: its parent's line)."""
    for end in range(len(path), -1, -1):
        found = lines.get(tuple(path[:end]))
        if found is not None:
            return found
    return None


def _repeated_node(root: yaml.Node | None) -> yaml.Node | None:
    """The first node reached twice in the composed tree (what an alias makes), or None."""
    seen: set[int] = set()
    stack = [root] if root is not None else []
    while stack:
        node = stack.pop()
        if id(node) in seen:
            return node
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(reversed(node.value))
        elif isinstance(node, yaml.MappingNode):
            for key, value in reversed(node.value):
                stack.extend((value, key))
    return None
