"""Reading recipe and config files: TOML, or YAML by extension, with errors that name the file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import yaml

from mixline.errors import ConfigError


def read_table_file(path: str | Path, what: str) -> dict[str, Any]:
    """The top-level table of a TOML (or .yml/.yaml) file."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{what} {p} not found")
    text = p.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) if p.suffix.lower() in (".yml", ".yaml") else tomllib.loads(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"{what} {p} does not parse: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {p}: expected a table of settings at the top level")
    return data
