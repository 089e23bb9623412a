"""``GroupObjectiveConfig`` (shown to users as ``DMPOConfig``): TRL's ``GRPOConfig`` plus the
group objective to train with and its parameters. Every ``GRPOConfig`` field keeps its meaning.

Parameters reach the objective from three places, each parameter from exactly one:

1. ``GRPOConfig`` fields that mean the same thing as an objective parameter:
   ``epsilon`` → ``epsilon_low``, ``epsilon_high``, ``beta`` → ``beta_kl``, ``scale_rewards``,
   ``max_completion_length``, ``mask_truncated_completions`` → ``mask_truncated``,
   ``use_bias_correction_kl`` → ``kl_bias_correction``. TRL uses some of
   them itself (``scale_rewards`` for the advantages, ``beta`` to load a reference model), so the
   config is the single source of truth. A field left at TRL's default takes the objective's own
   default when that differs (``dapo``: ``epsilon_high=0.28``; ``gspo``: ``epsilon=3e-4``,
   ``epsilon_high=4e-4``; ``dr_grpo``: ``scale_rewards="none"``; the plain k3 KL estimator,
   ``use_bias_correction_kl=False``) and the config shows the value used.
2. ``objective_kwargs``: every other parameter of the objective, under the objective's own name
   (``{"lam": 2.0, "alpha": 1/15, "divergence": "ce"}`` for DMPO, ``{"adv_eps": 1e-6}``): the
   same name from ``dmpo train --objective-param lam=2`` to the loss function's argument.

``loss_type`` is not used: the objective decides the loss. TRL options that act inside TRL's own
loss and have no counterpart in the objectives (entropy masks and bonuses, two-sided ``delta``
clipping, sequence-level importance sampling, off-policy masks) are rejected when set.

On a CPU pass ``use_cpu=True, bf16=False, gradient_checkpointing=False`` (TRL defaults
``bf16=True`` and ``gradient_checkpointing=True``), or build with :meth:`for_cpu`. Nothing else
about TRL's defaults changes (its learning rate is 1e-6). ``use_vllm`` and the other vLLM options
pass through to TRL unchanged; TRL's correction for the vLLM-vs-trainer sampling mismatch
(``vllm_importance_sampling_correction``) scales TRL's own per-token loss and is not applied to
the group objectives, which see the trainer's log-probs at sampling time as ``old_logps``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from trl import GRPOConfig

from dmpo import objectives
from dmpo.errors import DmpoError

GROUP_SPLITS = ("whole", "coefficient")

# GRPOConfig field -> objective parameter of the same meaning.
SHARED_FIELDS: dict[str, str] = {
    "epsilon": "epsilon_low",
    "epsilon_high": "epsilon_high",
    "beta": "beta_kl",
    "scale_rewards": "scale_rewards",
    "max_completion_length": "max_completion_length",
    "mask_truncated_completions": "mask_truncated",
    "use_bias_correction_kl": "kl_bias_correction",
}
# Shared fields whose setting makes no sense for an objective without the parameter.
_LOSS_ONLY_FIELDS = ("epsilon", "epsilon_high", "beta")

# Parameters the trainer fills in itself.
TRAINER_PARAMS = ("dm_form", "coefficients")

# Objectives that need inputs TRL's trainer does not compute.
UNSUPPORTED: dict[str, str] = {
    "dgpo": "it needs full-vocabulary logits of the policy and the reference (Hellinger distance per "
    "token), which TRL's trainer does not compute",
}

# TRL loss options with no counterpart in the objectives: field -> what to do instead.
_UNSUPPORTED_TRL_FIELDS: dict[str, str] = {
    "top_entropy_quantile": "leave it at 1.0",
    "entropy_coef": "leave it at 0.0",
    "use_adaptive_entropy": "leave it False",
    "delta": "leave it None",
    "importance_sampling_level": "use objective='gspo' for sequence-level ratios",
    "off_policy_mask_threshold": "leave it None",
}

_TRL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(GRPOConfig)}


@dataclass
class GroupObjectiveConfig(GRPOConfig):
    r"""TRL's ``GRPOConfig`` with a group objective from ``dmpo.objectives`` in place of ``loss_type``.

    See the module docstring for how fields map onto objective parameters. Built configs are
    validated: an unknown objective or parameter, a per-device batch that is not a multiple of
    ``num_generations``, or a TRL loss option the objectives ignore raises ``DmpoError``.
    """

    _VALID_DICT_FIELDS: ClassVar[list[str]] = [*GRPOConfig._VALID_DICT_FIELDS, "objective_kwargs"]

    objective: str = field(
        default="dmpo",
        metadata={
            "help": "Group objective from the dmpo registry: dmpo, dmpo-recipe, dmpo-ce, dmpo-pure, "
            "dmpo-coef, grpo, bnpo, dapo, dr_grpo, gspo, disco, brain. Replaces `loss_type`."
        },
    )
    objective_kwargs: dict[str, Any] | str | None = field(
        default=None,
        metadata={
            "help": "Further parameters of the objective (JSON on the command line), e.g. "
            '{"adv_eps": 1e-6}. Parameters that have a config field must be set through it.'
        },
    )
    group_split: str = field(
        default="whole",
        metadata={
            "help": "How the loss sees groups. 'whole' (default): every micro-batch holds whole groups "
            "(group-aware shuffle and split; per_device_train_batch_size a multiple of num_generations). "
            "'coefficient' (DMPO family only): rows may be split anywhere; the DM term enters as "
            "Σ sg[c_k]·φ_k with c_k computed at sampling time over whole groups, exact while on-policy "
            "(num_iterations=1, gradient_accumulation_steps a multiple of steps_per_generation)."
        },
    )
    max_nonfinite_steps: int = field(
        default=3,
        metadata={
            "help": "An update whose loss or gradient is NaN or ±inf is skipped (parameters and optimiser "
            "state unchanged), counted and logged as nonfinite/skipped_step; this many in a row stop the run "
            "with a clear error."
        },
    )
    reward_timeout: float | None = field(
        default=60.0,
        metadata={
            "help": "Seconds a reward function may take per call (None: no limit). A reward function that "
            "raises or runs past it costs the completions concerned their reward (0.0), never the run; "
            "failures are logged as reward_failures/<name>."
        },
    )
    def __post_init__(self) -> None:
        if self.group_split == "whole":
            self._check_whole_groups()  # before TRL's own, less specific, divisibility check
        super().__post_init__()
        spec = _group_objective(self.objective)
        self.objective_kwargs = dict(self.objective_kwargs or {})
        self._check_objective_kwargs(spec)
        self._check_trl_options()
        if self.max_nonfinite_steps < 1:
            raise DmpoError(f"max_nonfinite_steps must be at least 1, got {self.max_nonfinite_steps}")
        if not math.isfinite(self.learning_rate) or self.learning_rate < 0:
            raise DmpoError(f"learning_rate must be a finite number ≥ 0, got {self.learning_rate}")
        if self.group_split not in GROUP_SPLITS:
            raise DmpoError(f"group_split must be one of {list(GROUP_SPLITS)}, got {self.group_split!r}")
        self._check_coefficient_form(spec)
        self._sync_shared_fields(spec)
        k = self.objective_params().get("k")
        if self.objective == "passk" and k is not None and k > self.num_generations:
            raise DmpoError(f"passk: k ({k}) must not exceed the group size num_generations "
                            f"({self.num_generations})")
        if self.group_split == "coefficient" or spec.params.get("dm_form") == "coefficient":
            self._check_on_policy()

    @classmethod
    def for_cpu(cls, **kwargs: Any) -> GroupObjectiveConfig:
        """A config for CPU training: ``use_cpu=True, bf16=False``, no gradient (activation)
        checkpointing and ``report_to='none'`` unless given in ``kwargs``."""
        # transformers ≥5.20 renames gradient_checkpointing to activation_checkpointing.
        checkpointing = "activation_checkpointing" if "activation_checkpointing" in _TRL_DEFAULTS else "gradient_checkpointing"
        defaults = {"use_cpu": True, "bf16": False, checkpointing: False, "report_to": "none"}
        if "gradient_checkpointing" in kwargs:
            defaults.pop(checkpointing)
        return cls(**{**defaults, **kwargs})

    def objective_params(self) -> dict[str, Any]:
        """The keyword parameters the trainer passes to ``objectives.get(self.objective)``: the
        objective's defaults (None ones left out: they mean "the default"), the shared GRPOConfig
        fields it uses, and ``objective_kwargs``."""
        spec = objectives.get(self.objective)
        accepted = _accepted_shared_params(spec.params | self.objective_kwargs)
        params = {k: v for k, v in spec.params.items() if v is not None and k not in TRAINER_PARAMS}
        for name, param in SHARED_FIELDS.items():
            if param in accepted:
                params[param] = self._shared_value(name)
        params.update(self.objective_kwargs)
        return params

    # ---- validation -----------------------------------------------------------------------
    def _check_objective_kwargs(self, spec: objectives.ObjectiveSpec) -> None:
        by_param = {param: name for name, param in SHARED_FIELDS.items()}
        for key, value in self.objective_kwargs.items():
            if isinstance(value, float) and not math.isfinite(value):
                raise DmpoError(f"objective_kwargs: {key} must be finite, got {value}")
        for key in self.objective_kwargs:
            if key in TRAINER_PARAMS:
                raise DmpoError(
                    f"objective_kwargs may not set {key!r}: the trainer sets it (see group_split)"
                )
            if key in by_param:
                raise DmpoError(
                    f"set {key!r} through the config field {by_param[key]!r}, not objective_kwargs"
                )
        unknown = sorted(set(self.objective_kwargs) - set(spec.params))
        if unknown:
            reserved = {*TRAINER_PARAMS, *SHARED_FIELDS.values()}
            valid = sorted(set(spec.params) - reserved)
            raise DmpoError(
                f"objective {spec.name!r} has no parameter(s) {unknown}; parameters settable in "
                f"objective_kwargs: {valid}"
            )

    def _check_trl_options(self) -> None:
        for name, advice in _UNSUPPORTED_TRL_FIELDS.items():
            if getattr(self, name) != _TRL_DEFAULTS[name]:
                raise DmpoError(
                    f"{name}={getattr(self, name)!r} acts on TRL's own loss, which the group objectives "
                    f"replace; {advice}"
                )

    def _check_coefficient_form(self, spec: objectives.ObjectiveSpec) -> None:
        if self.group_split == "coefficient" and "dm_form" not in spec.params:
            dm_objectives = [n for n in objectives.names("group") if "dm_form" in objectives.get(n).params]
            raise DmpoError(
                f"group_split='coefficient' needs an objective with a distribution-matching term "
                f"({dm_objectives}); {spec.name!r} has none: use group_split='whole'"
            )

    def _shared_value(self, name: str) -> Any:
        if name == "epsilon_high" and self.epsilon_high is None:
            return self.epsilon
        return getattr(self, name)

    def _sync_shared_fields(self, spec: objectives.ObjectiveSpec) -> None:
        params = spec.params | self.objective_kwargs
        accepted = _accepted_shared_params(params)
        untouched = {name for name in SHARED_FIELDS if getattr(self, name) == _TRL_DEFAULTS[name]}
        if "epsilon" not in untouched:
            # TRL's epsilon_high=None means "same as epsilon": a user's epsilon sets both.
            untouched.discard("epsilon_high")
        for name, param in SHARED_FIELDS.items():
            if param not in accepted:
                if name in _LOSS_ONLY_FIELDS and name not in untouched:
                    raise DmpoError(
                        f"{name}={getattr(self, name)!r} has no effect: objective {spec.name!r} "
                        f"(with these parameters) has no {param!r}; leave {name} at its default"
                    )
                continue
            default = _effective_default(params, param)
            if name in untouched and default is not None:
                setattr(self, name, default)

    def _check_whole_groups(self) -> None:
        if self.per_device_train_batch_size % self.num_generations != 0:
            raise DmpoError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple "
                f"of num_generations ({self.num_generations}) so that every micro-batch holds whole "
                "groups (it counts completions, not prompts); or use group_split='coefficient' "
                "with a DMPO objective"
            )
        num_eval = self.num_generations_eval or self.num_generations
        if self.eval_strategy not in ("no", None) and self.per_device_eval_batch_size % num_eval != 0:
            raise DmpoError(
                f"per_device_eval_batch_size ({self.per_device_eval_batch_size}) must be a multiple "
                f"of the evaluation group size ({num_eval})"
            )

    def _check_on_policy(self) -> None:
        if self.num_iterations != 1 or self.gradient_accumulation_steps % self.steps_per_generation != 0:
            raise DmpoError(
                "the coefficient form of the DM term (group_split='coefficient', or the dmpo-coef "
                "objective) is exact only on-policy: set num_iterations=1 (got "
                f"{self.num_iterations}) and gradient_accumulation_steps ({self.gradient_accumulation_steps}) "
                f"to a multiple of steps_per_generation ({self.steps_per_generation})"
            )


def _group_objective(name: str) -> objectives.ObjectiveSpec:
    spec = objectives.get(name)  # DmpoError listing every objective when unknown
    supported = [n for n in objectives.names("group") if n not in UNSUPPORTED]
    if spec.kind != "group":
        raise DmpoError(
            f"objective {name!r} is a {spec.kind} objective; the TRL group trainer trains group "
            f"objectives: {supported}"
        )
    if name in UNSUPPORTED:
        raise DmpoError(f"objective {name!r} cannot train in TRL: {UNSUPPORTED[name]}; supported: {supported}")
    return spec


def _base_params(params: dict[str, Any]) -> dict[str, Any] | None:
    """The parameters of the base objective an objective delegates to (DMPO's ``base``), if any."""
    base = params.get("base")
    if base is None:
        return None
    if base == "none":
        return {"scale_rewards": "group", "adv_eps": 1e-4}
    return objectives.get(base).params


def _accepted_shared_params(params: dict[str, Any]) -> set[str]:
    """Objective parameters among SHARED_FIELDS' targets that the objective really uses."""
    shared = set(SHARED_FIELDS.values())
    base = _base_params(params)
    if base is None:
        return shared & set(params)
    return shared & set(base)


def _effective_default(params: dict[str, Any], param: str) -> Any:
    """The value an objective uses for ``param`` when not given (through its base, if it delegates)."""
    value = params.get(param)
    base = _base_params(params)
    if value is None and base is not None:
        value = base.get(param)
    return value


DMPOConfig = GroupObjectiveConfig
