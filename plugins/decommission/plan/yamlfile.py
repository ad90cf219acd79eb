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


def read_yaml(path: Path, *, max_bytes: int, what: str) -> Any:
    """The parsed YAML of ``path``, which must be a regular file of at most ``max_bytes``.

    :raises FileNotFoundError: no such file
    :raises YamlFileError: not a regular file, too large, aliases, or not valid YAML
    """
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))  # a FIFO must not block the open
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise YamlFileError(f"{path}: the {what} cannot be opened ({type(exc).__name__})") from exc
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise YamlFileError(f"{path}: the {what} is not a regular file")
        data = f.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise YamlFileError(f"{path}: the {what} is larger than {max_bytes} bytes")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise YamlFileError(f"{path}: the {what} is not UTF-8 text (byte {exc.start})") from exc
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            if isinstance(event, yaml.AliasEvent):
                mark = event.start_mark
                raise YamlFileError(
                    f"{path}: line {mark.line + 1}: YAML aliases (*{event.anchor}) are not allowed in the {what}"
                )
        return yaml.load(text, Loader=_LOADER)  # noqa: S506 - a safe loader
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise YamlFileError(f"{path}:{where} not valid YAML: {getattr(exc, 'problem', None) or exc}") from exc
