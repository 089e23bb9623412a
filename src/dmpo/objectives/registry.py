"""Objectives registered by name, selected by a config string (as in verl's ``core_algos``).

Every objective is a function ``fn(batch, **params) -> ObjectiveOutput`` whose keyword
parameters carry the defaults. A preset is the same function under another name with other
defaults (``dmpo-ce`` = ``dmpo`` with ``divergence="ce"``). A function that passes ``**kwargs``
on to an inner objective (``dmpo`` to its base surrogate) lists those names, with their
defaults, in its ``forwarded_params`` attribute; they count as its own parameters.

Whether an objective may be computed on part of a group (an engine that splits a group's
completions over micro-batches or processes, as TRL does when the per-device batch is smaller
than the group) is marked on the function by a ``whole_groups`` attribute, read through
:meth:`ObjectiveSpec.needs_whole_groups`:

- ``None``: never needs whole groups. Given ``batch.advantages`` (computed by the engine where
  whole groups exist) every quantity it computes is per completion, or over the batch's tokens
  as a whole (normalisers, covariances, quantiles), never per group; so the micro-batches of a
  split group train exactly as micro-batches of whole groups would.
- a string: always needs them; the string says why.
- a function ``params -> str | None``: it depends on the parameters (dapo's
  ``dynamic_sampling``, gpg's ``alpha_scaling``, DMPO's ``dm_form`` and base).

An objective without the attribute needs whole groups (the safe default).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch

from dmpo.errors import DmpoError

Kind = Literal["group", "pair", "forget"]
KINDS: tuple[str, ...] = ("group", "pair", "forget")


@dataclass
class ObjectiveOutput:
    """A scalar loss (with gradient) and detached float diagnostics."""

    loss: torch.Tensor
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjectiveSpec:
    name: str
    kind: Kind
    fn: Callable[..., ObjectiveOutput]
    defaults: dict[str, Any]
    paper: str = ""
    oracle: str = ""
    summary: str = ""

    @property
    def params(self) -> dict[str, Any]:
        """Every parameter with its default for this name (presets applied)."""
        sig = inspect.signature(self.fn)
        out = {
            p.name: p.default
            for p in sig.parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY
        }
        out.update(_forwarded(self.fn))
        out.update(self.defaults)
        return out

    def needs_whole_groups(self, **params: Any) -> str | None:
        """Why this objective, with ``params`` (over its defaults), must see whole groups in
        every batch; None when a batch may hold part of a group (module docstring)."""
        return whole_groups_reason(self.fn, {**self.params, **params}, self.name)

    def __call__(self, batch: Any, **params: Any) -> ObjectiveOutput:
        valid = self.params
        unknown = sorted(set(params) - set(valid))
        if unknown:
            raise DmpoError(
                f"objective {self.name!r} has no parameter(s) {unknown}; "
                f"valid parameters: {sorted(valid)}"
            )
        for name, value in params.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise DmpoError(f"objective {self.name!r}: parameter {name} must be finite, got {value}")
        return self.fn(batch, **{**self.defaults, **params})


_REGISTRY: dict[str, ObjectiveSpec] = {}
_UNMARKED = object()


def whole_groups_reason(
    fn: Callable[..., ObjectiveOutput], params: dict[str, Any], name: str | None = None
) -> str | None:
    """``fn``'s ``whole_groups`` mark evaluated at ``params`` (see the module docstring)."""
    rule = getattr(fn, "whole_groups", _UNMARKED)
    if rule is _UNMARKED:
        return f"objective {name or fn.__name__!r} is not marked as computable on part of a group"
    if callable(rule):
        return rule(params)
    return rule


def register(
    name: str,
    kind: Kind,
    *,
    paper: str = "",
    oracle: str = "",
    summary: str = "",
    **defaults: Any,
) -> Callable[[Callable[..., ObjectiveOutput]], Callable[..., ObjectiveOutput]]:
    """Decorator: register ``fn`` under ``name``; ``defaults`` override its keyword defaults."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def wrap(fn: Callable[..., ObjectiveOutput]) -> Callable[..., ObjectiveOutput]:
        add(name, kind, fn, paper=paper, oracle=oracle, summary=summary, **defaults)
        return fn

    return wrap


def add(
    name: str,
    kind: Kind,
    fn: Callable[..., ObjectiveOutput],
    *,
    paper: str = "",
    oracle: str = "",
    summary: str = "",
    **defaults: Any,
) -> None:
    """Register ``fn`` (or a preset of it, through ``defaults``) under ``name``."""
    if name in _REGISTRY:
        raise ValueError(f"objective {name!r} registered twice")
    sig = inspect.signature(fn)
    keyword = {p.name for p in sig.parameters.values() if p.kind is inspect.Parameter.KEYWORD_ONLY}
    keyword |= set(_forwarded(fn))
    stray = sorted(set(defaults) - keyword)
    if stray:
        raise ValueError(f"preset {name!r} sets unknown parameters {stray} of {fn.__name__}")
    _REGISTRY[name] = ObjectiveSpec(name, kind, fn, dict(defaults), paper, oracle, summary)


def _forwarded(fn: Callable[..., ObjectiveOutput]) -> dict[str, Any]:
    return dict(getattr(fn, "forwarded_params", {}))


def get(name: str) -> ObjectiveSpec:
    """The objective registered as ``name``; call it as ``get(name)(batch, **params)``."""
    _load_all()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise DmpoError(f"unknown objective {name!r}; valid objectives: {sorted(_REGISTRY)}") from None


def names(kind: Kind | None = None) -> list[str]:
    """Registered names, optionally only those of one kind (group, pair, forget)."""
    _load_all()
    if kind is not None and kind not in KINDS:
        raise DmpoError(f"unknown objective kind {kind!r}; valid kinds: {list(KINDS)}")
    return sorted(n for n, s in _REGISTRY.items() if kind is None or s.kind == kind)


def specs() -> list[ObjectiveSpec]:
    _load_all()
    return [_REGISTRY[n] for n in sorted(_REGISTRY)]


def _load_all() -> None:
    # Modules register on import; importing the package imports them all.
    import dmpo.objectives  # noqa: F401
