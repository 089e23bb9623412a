"""Command-line flags and YAML configs from the settings dataclasses of ``dmpo.pipeline``.

:func:`add_settings_arguments` makes one flag per field (``max_steps`` → ``--max-steps``; type
from the default, help from the field's ``help`` metadata), so a setting is declared once, in
its dataclass. :func:`settings_from_args` builds the dataclass from defaults ← YAML ← flags.

    # train.yaml
    objective: dmpo
    tasks: [knapsack, vertex_cover]
    max_steps: 200
    objective_params: {lam: 2.0, alpha: 0.1}
    trainer: {beta: 0.04, save_total_limit: 2}   # any DMPOConfig / GRPOConfig field

Keys are the fields of a settings dataclass (``TrainSettings``); ``max-steps`` and
``max_steps`` both work. Values are converted to the field's type (so ``2e-4``, which YAML
reads as a string, is a float), and an unknown key is an error that lists the valid ones.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path
from typing import Any

import yaml

from dmpo.errors import DmpoError


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """The mapping in a YAML file (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise DmpoError(f"no such config file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise DmpoError(f"{path}: not valid YAML ({exc})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise DmpoError(f"{path}: a config must be a mapping of option: value, got {type(data).__name__}")
    return {str(key).replace("-", "_"): value for key, value in data.items()}


def parse_scalar(text: str) -> Any:
    """A command-line value: int, float, bool, null, or else the string itself."""
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    value = yaml.safe_load(text) if text.strip() else text
    return value if isinstance(value, (bool, type(None), list, dict)) else text


def parse_key_values(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    """``["lam=2", "divergence=ce"]`` → ``{"lam": 2, "divergence": "ce"}``."""
    out: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise DmpoError(f"{flag} takes key=value, got {pair!r}")
        out[key.strip()] = parse_scalar(value.strip())
    return out


def coerce(cls: type, values: dict[str, Any], *, source: str) -> dict[str, Any]:
    """``values`` checked against the fields of dataclass ``cls`` and converted to their types
    (judged by each field's default: int, float, bool, str, tuple, dict)."""
    defaults = {f.name: _default(f) for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - set(defaults))
    if unknown:
        raise DmpoError(f"{source}: unknown option(s) {unknown}; valid: {sorted(defaults)}")
    return {key: _convert(key, value, defaults[key], source) for key, value in values.items()}


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _convert(key: str, value: Any, default: Any, source: str) -> Any:
    if value is None:
        return None
    try:
        if isinstance(default, bool):
            if isinstance(value, str):
                value = parse_scalar(value)
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(default, int):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, tuple):
            items = value.split(",") if isinstance(value, str) else value
            if not isinstance(items, (list, tuple)):
                raise ValueError
            return tuple(str(v).strip() for v in items if str(v).strip())
        if isinstance(default, dict):
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if isinstance(value, (dict, list)):
            raise ValueError
        return str(value)
    except (TypeError, ValueError):
        kind = type(default).__name__ if default is not None else "str"
        raise DmpoError(f"{source}: {key!r} must be a {kind}, got {value!r}") from None


def merge(cls: type, *layers: dict[str, Any]) -> Any:
    """``cls(**defaults ← layer 1 ← layer 2 ...)``; a ``None`` in a layer means 'not given'.
    ``objective_params`` and ``trainer`` mappings merge key by key."""
    merged: dict[str, Any] = {}
    for layer in layers:
        for key, value in layer.items():
            if value is None:
                continue
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key] = {**merged[key], **value}
            else:
                merged[key] = value
    return cls(**merged)


def _show(value: Any) -> str:
    if isinstance(value, tuple):
        return ",".join(map(str, value))
    return str(value)


def add_settings_arguments(parser: argparse.ArgumentParser, cls: type, *, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per field of the settings dataclass ``cls`` (except ``skip``). Defaults are
    None ("not given") so that a YAML value stands unless the flag is given; the help shows the
    field's own default. Mapping fields are repeatable ``KEY=VALUE`` flags (``metadata["flag"]``
    names them); ``metadata["const"]`` makes the value optional; ``metadata["choices"]`` limits it."""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        meta = f.metadata
        flag = meta.get("flag", "--" + f.name.replace("_", "-"))
        default = _default(f)
        text = meta.get("help", "")
        if isinstance(default, dict):
            parser.add_argument(flag, dest=f.name, action="append", default=None, metavar="KEY=VALUE", help=text)
            continue
        if default is not None and default != "":
            text = f"{text} (default: {_show(default)})"
        kwargs: dict[str, Any] = {"dest": f.name, "default": None, "help": text}
        if isinstance(default, bool):
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _flag_type(default)
            if "const" in meta:
                kwargs.update(nargs="?", const=meta["const"])
            if "choices" in meta:
                kwargs["choices"] = meta["choices"]
        parser.add_argument(flag, **kwargs)


def _flag_type(default: Any) -> Any:
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    return str


def settings_from_args(cls: type, args: argparse.Namespace, *, config: str | None = None) -> Any:
    """``cls`` from its defaults ← the YAML file ``config`` ← the flags given in ``args``."""
    file_values = coerce(cls, load_yaml(config), source=config) if config else {}
    given: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        value = getattr(args, f.name, None)
        if value is None:
            continue
        if isinstance(_default(f), dict):
            value = parse_key_values(value, f.metadata.get("flag", f.name)) or None
        given[f.name] = value
    flag_values = coerce(cls, {k: v for k, v in given.items() if v is not None}, source="flags")
    return merge(cls, file_values, flag_values)
