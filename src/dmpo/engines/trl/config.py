"""``GroupObjectiveConfig`` and ``DMPOConfig``: TRL's ``GRPOConfig`` plus the group objective to
train with and its parameters. Every ``GRPOConfig`` field keeps its meaning.

Which objective (``objective`` and TRL's ``loss_type``):

- ``objective=None`` (``GroupObjectiveConfig``'s default): TRL's behaviour. The objective is the
  one named by ``loss_type`` (TRL's default ``"dapo"``; any TRL 1.16 loss type: grpo, bnpo, dapo,
  dr_grpo, cispo, sapo, luspo, vespo) and every shared field keeps TRL's value, defaults
  included (``epsilon_high=None`` means ``epsilon``, ``use_bias_correction_kl=True``,
  ``scale_rewards="group"``, ``importance_sampling_level="token"``): the same loss, to float
  round-off, as ``GRPOTrainer`` with that ``GRPOConfig``. ``objective`` stays None;
  :attr:`~GroupObjectiveConfig.objective_name` is the objective trained.
- ``objective="..."`` (``DMPOConfig``'s default is ``"dmpo"``): that objective, with its own
  defaults (below). ``loss_type`` then need not be set; when it is, it must agree: for an
  objective with a base surrogate (the DMPO family) it selects the base (``DMPOConfig(loss_type=
  "dr_grpo")`` is DMPO on Dr. GRPO; a different ``objective_kwargs["base"]`` is an error); for a
  GRPO-family objective it must be that objective's TRL loss type (``gspo`` is TRL's ``grpo`` at
  sequence level); an objective with its own loss (disco, brain, gpg, ...) takes no
  ``loss_type``. A contradiction is a ``DmpoError``, never ignored. After validation
  ``loss_type`` shows the TRL loss type trained (None for an objective TRL does not have).

Parameters reach the objective from three places, each parameter from exactly one:

1. ``GRPOConfig`` fields that mean the same thing as an objective parameter (``SHARED_FIELDS``):
   ``epsilon`` → ``epsilon_low``, ``epsilon_high``, ``beta`` → ``beta_kl``, ``scale_rewards``,
   ``max_completion_length``, ``mask_truncated_completions`` → ``mask_truncated``,
   ``use_bias_correction_kl`` → ``kl_bias_correction``, and under their own names TRL's loss
   options ``importance_sampling_level``, ``delta``, ``top_entropy_quantile``, ``entropy_coef``,
   ``off_policy_mask_threshold`` and the loss parameters ``sapo_temperature_pos/neg``,
   ``vespo_k_pos``, ``vespo_lambda_pos``, ``vespo_k_neg``, ``vespo_lambda_neg``. TRL uses some
   of them itself (``scale_rewards`` for the advantages, ``beta`` to load a reference model), so
   the config is the single source of truth. With an explicit ``objective``, a field left at
   TRL's default takes the objective's own default when that differs (``dapo``:
   ``epsilon_high=0.28``; ``gspo``: ``epsilon=3e-4``, ``epsilon_high=4e-4``,
   ``importance_sampling_level="sequence"``; ``luspo`` likewise; ``cispo``: ``epsilon_high=5.0``;
   ``dr_grpo``: ``scale_rewards="none"``; the plain k3 KL estimator,
   ``use_bias_correction_kl=False``) and the config shows the value used. A loss option set
   for an objective that does not use it (``delta`` with sapo, ``entropy_coef`` with disco) is
   an error.
2. ``objective_kwargs``: every other parameter of the objective, under the objective's own name
   (``{"lam": 2.0, "alpha": 1/15, "divergence": "ce"}`` for DMPO, ``{"adv_eps": 1e-6}``): the
   same name from ``dmpo train --objective-param lam=2`` to the loss function's argument.
3. The trainer: ``dm_form``/``coefficients`` (see ``group_split``), ``entropy_threshold`` (the
   entropy quantile over all processes, as TRL computes it) and, with ``use_adaptive_entropy``,
   the step's ``entropy_coef`` from TRL's adaptive controller (``entropy_coef_min``,
   ``entropy_coef_max``, ``entropy_coef_delta``, ``entropy_target``), whose state is kept and
   checkpointed as TRL keeps it.

How micro-batches hold groups (``group_split``, default ``"auto"``, resolved in the config):

- ``"whole"`` (what ``"auto"`` picks when ``per_device_train_batch_size`` is a multiple of
  ``num_generations``): every micro-batch holds whole groups; any objective trains.
- ``"rows"`` (what ``"auto"`` picks otherwise, e.g. 2 completions per device with G = 8): rows are
  shuffled and split as TRL splits them, so a group straddles micro-batches and processes
  (the generation batch, per_device × processes × steps_per_generation rows, holds whole
  groups). The objective trains from TRL's advantages, computed over whole groups; an objective
  with a DM term (DMPO family) takes it in the coefficient form, c_k = ∂L_DM/∂φ_k over the whole
  generation batch of all processes, recomputed whenever the policy has moved. An objective
  that needs whole groups inside its loss (``ObjectiveSpec.needs_whole_groups``: disco, brain,
  passk, gpg with ``alpha_scaling``, dapo with ``dynamic_sampling``) is refused with the reason.
- ``"coefficient"``: ``"rows"`` for an objective with a DM term only (an error otherwise).

On a CPU pass ``use_cpu=True, bf16=False, gradient_checkpointing=False`` (TRL defaults
``bf16=True`` and ``gradient_checkpointing=True``), or build with :meth:`for_cpu`. Nothing else
about TRL's defaults changes (its learning rate is 1e-6). ``use_vllm`` and the other vLLM options
pass through to TRL unchanged; TRL's correction for the vLLM-vs-trainer sampling mismatch
(``vllm_importance_sampling_correction``) scales TRL's own per-token loss and is not applied to
the group objectives, which see the trainer's log-probs at sampling time as ``old_logps`` (the
off-policy mask does use vLLM's own log-probs, as TRL's).

How completions are generated without vLLM (``generation_backend``): ``"default"`` is TRL's
``model.generate`` (dynamic cache, never compiled); ``"continuous"`` is TRL's
``use_transformers_continuous_batching`` (either field sets the other), with the model's own
dtype put back after each generation (TRL casts it to bf16 and leaves it so) and accelerate's
mixed-precision forward wrapper set aside while it runs (it breaks the paged cache); ``"static_compiled"``
is a static KV cache with torch.compile of the decoding step, which TRL switches off. All three
draw each token from the same distribution (tests/engines/test_generation_backends.py), and the
loss always comes from the trainer's own forward pass.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from trl import GRPOConfig

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives.policy_gradient import BASES, IMPORTANCE_SAMPLING_LEVELS, TRL_LOSS_TYPES

GROUP_SPLITS = ("auto", "whole", "rows", "coefficient")
# How completions are generated without vLLM (see ``generation_backend``).
GENERATION_BACKENDS = ("default", "continuous", "static_compiled")

# GRPOConfig field -> objective parameter of the same meaning.
SHARED_FIELDS: dict[str, str] = {
    "epsilon": "epsilon_low",
    "epsilon_high": "epsilon_high",
    "beta": "beta_kl",
    "scale_rewards": "scale_rewards",
    "max_completion_length": "max_completion_length",
    "mask_truncated_completions": "mask_truncated",
    "use_bias_correction_kl": "kl_bias_correction",
    "importance_sampling_level": "importance_sampling_level",
    "delta": "delta",
    "top_entropy_quantile": "top_entropy_quantile",
    "entropy_coef": "entropy_coef",
    "off_policy_mask_threshold": "off_policy_mask_threshold",
    "sapo_temperature_pos": "sapo_temperature_pos",
    "sapo_temperature_neg": "sapo_temperature_neg",
    "vespo_k_pos": "vespo_k_pos",
    "vespo_lambda_pos": "vespo_lambda_pos",
    "vespo_k_neg": "vespo_k_neg",
    "vespo_lambda_neg": "vespo_lambda_neg",
}
# Shared fields whose setting makes no sense for an objective without the parameter.
_LOSS_ONLY_FIELDS = tuple(
    name
    for name in SHARED_FIELDS
    if name not in ("scale_rewards", "max_completion_length", "mask_truncated_completions",
                    "use_bias_correction_kl")
)  # fmt: skip

# Parameters the trainer fills in itself.
TRAINER_PARAMS = ("dm_form", "coefficients", "entropy_threshold")

# TRL 1.16's loss types, each an objective of the same name here.
LOSS_TYPES = tuple(dict.fromkeys(TRL_LOSS_TYPES.values()))

# Objectives that need inputs TRL's trainer does not compute.
UNSUPPORTED: dict[str, str] = {
    "dgpo": "it needs full-vocabulary logits of the policy and the reference (Hellinger distance per "
    "token), which TRL's trainer does not compute",
}

_TRL_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(GRPOConfig)}


@dataclass
class GroupObjectiveConfig(GRPOConfig):
    r"""TRL's ``GRPOConfig`` with a group objective from ``dmpo.objectives``.

    Without ``objective`` it is TRL's ``GRPOConfig``: the objective named by ``loss_type``
    (default ``"dapo"``), every field as TRL reads it. With ``objective``, that objective and its
    own defaults; ``loss_type``, if set, must agree (for DMPO it picks the base surrogate). See
    the module docstring for how fields map onto objective parameters. Built configs are
    validated: an unknown objective or parameter, a contradiction between ``objective`` and
    ``loss_type``, a generation batch that does not hold whole groups, a per-device batch that is
    not a multiple of ``num_generations`` for an objective that needs whole groups (or with
    ``group_split="whole"``), or a loss option the objective does not use raises ``DmpoError``.
    """

    _VALID_DICT_FIELDS: ClassVar[list[str]] = [*GRPOConfig._VALID_DICT_FIELDS, "objective_kwargs"]

    objective: str | None = field(
        default=None,
        metadata={
            "help": "Group objective from the dmpo registry: dmpo, dmpo-recipe, dmpo-ce, dmpo-pure, "
            "dmpo-coef, grpo, bnpo, dapo, dr_grpo, gspo, luspo, cispo, sapo, vespo, disco, brain, "
            "gpg, clip_cov, kl_cov, passk, flowrl. None: the objective named by `loss_type`, with "
            "TRL's defaults (TRL's own behaviour)."
        },
    )
    loss_type: str | None = field(
        default=None,
        metadata={
            "help": "TRL's loss type: grpo, bnpo, dapo, dr_grpo, cispo, sapo, luspo or vespo. Without "
            "`objective` it names the objective (None: TRL's default, 'dapo'); with a DMPO objective "
            "it names the base surrogate; otherwise it must match the objective."
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
        default="auto",
        metadata={
            "help": "How micro-batches hold groups. 'auto' (default): 'whole' when "
            "per_device_train_batch_size is a multiple of num_generations, else 'rows'; the config "
            "then shows the choice. 'whole': every micro-batch holds whole groups (group-aware shuffle "
            "and split). 'rows': rows are shuffled and split as in TRL, so a group may straddle "
            "micro-batches and processes; the objective trains from TRL's advantages (computed over "
            "whole groups) and a DM term from coefficients c_k = ∂L_DM/∂φ_k computed over the whole "
            "generation batch, recomputed whenever the policy has moved; objectives that need whole "
            "groups (disco, brain, passk, gpg with alpha_scaling, dapo with dynamic_sampling) are "
            "refused. 'coefficient': 'rows' for an objective with a DM term (DMPO family)."
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
    generation_backend: str = field(
        default="default",
        metadata={
            "help": "How completions are generated (without vLLM). 'default': TRL's model.generate with a "
            "dynamic cache, uncompiled. 'continuous': transformers' continuous batching (TRL's "
            "use_transformers_continuous_batching; setting that field picks this backend), with the "
            "model's training dtype restored after each generation. 'static_compiled': a static KV cache "
            "(sized in steps of 64 tokens so that it rarely changes shape) and torch.compile of the "
            "decoding step (CUDA: inductor with CUDA graphs, 'reduce-overhead'; CPU: inductor's default "
            "mode); the first generation pays the compilation. Every backend samples each token from "
            "the same distribution; the loss is computed from the trainer's own forward pass as always."
        },
    )

    def __post_init__(self) -> None:
        self._resolve_generation_backend()
        if self.group_split not in GROUP_SPLITS:
            raise DmpoError(f"group_split must be one of {list(GROUP_SPLITS)}, got {self.group_split!r}")
        chosen = self.group_split == "auto"
        if chosen:
            whole = self.per_device_train_batch_size % self.num_generations == 0
            self.group_split = "whole" if whole else "rows"
        if self.group_split == "whole":
            self._check_whole_groups()  # before TRL's own, less specific, divisibility check
        try:
            super().__post_init__()
        except ValueError as exc:
            if "must be divisible by num_generations" not in str(exc):
                raise
            raise DmpoError(
                f"{exc} A generation batch (per_device_train_batch_size × processes × "
                "steps_per_generation completions) must hold whole groups: make "
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) a multiple of "
                f"num_generations ({self.num_generations}), or raise gradient_accumulation_steps "
                "(or steps_per_generation)"
            ) from None
        self.objective_kwargs = dict(self.objective_kwargs or {})
        self._resolve_objective()
        spec = _group_objective(self.objective_name)
        self._check_objective_kwargs(spec)
        self._check_trl_options()
        if self.max_nonfinite_steps < 1:
            raise DmpoError(f"max_nonfinite_steps must be at least 1, got {self.max_nonfinite_steps}")
        if not math.isfinite(self.learning_rate) or self.learning_rate < 0:
            raise DmpoError(f"learning_rate must be a finite number ≥ 0, got {self.learning_rate}")
        self._check_coefficient_form(spec)
        self._sync_shared_fields(spec)
        self._check_entropy_options(spec)
        k = self.objective_params().get("k")
        if self.objective_name == "passk" and k is not None and k > self.num_generations:
            raise DmpoError(f"passk: k ({k}) must not exceed the group size num_generations "
                            f"({self.num_generations})")
        if self.group_split != "whole":
            self._check_split_groups(spec, chosen)

    @property
    def objective_name(self) -> str:
        """The objective trained: ``objective``, or without it the one named by ``loss_type``."""
        if self.objective is not None:
            return self.objective
        return self.loss_type or _TRL_DEFAULTS["loss_type"]

    @property
    def follows_trl_defaults(self) -> bool:
        """True without ``objective``: shared fields keep TRL's values, defaults included."""
        return self.objective is None

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
        """The keyword parameters the trainer passes to ``objectives.get(self.objective_name)``:
        the objective's defaults (None ones left out: they mean "the default"), the shared
        GRPOConfig fields it uses, and ``objective_kwargs``."""
        spec = objectives.get(self.objective_name)
        accepted = _accepted_shared_params(spec.params | self.objective_kwargs)
        params = {k: v for k, v in spec.params.items() if v is not None and k not in TRAINER_PARAMS}
        for name, param in SHARED_FIELDS.items():
            if param in accepted:
                params[param] = self._shared_value(name)
        params.update(self.objective_kwargs)
        return params

    # ---- validation -----------------------------------------------------------------------
    def _resolve_generation_backend(self) -> None:
        """Check ``generation_backend`` against TRL's own generation fields: 'continuous' is TRL's
        ``use_transformers_continuous_batching`` (either one sets the other); vLLM and a cache
        other than the static one contradict the backends that replace them."""
        backend = self.generation_backend
        if backend not in GENERATION_BACKENDS:
            raise DmpoError(f"generation_backend must be one of {list(GENERATION_BACKENDS)}, got {backend!r}")
        continuous = self.use_transformers_continuous_batching or getattr(self, "use_transformers_paged", False)
        if continuous and backend == "default":
            backend = self.generation_backend = "continuous"
        if backend != "default" and self.use_vllm:
            raise DmpoError(f"generation_backend={backend!r} contradicts use_vllm=True (vLLM generates the "
                            "completions); leave generation_backend='default' with vLLM")
        if backend == "static_compiled":
            if continuous:
                raise DmpoError("generation_backend='static_compiled' contradicts "
                                "use_transformers_continuous_batching=True; set one of them")
            if self.cache_implementation not in (None, "static"):
                raise DmpoError(f"generation_backend='static_compiled' uses a static cache; "
                                f"cache_implementation={self.cache_implementation!r} contradicts it")
            self.cache_implementation = "static"
        if backend == "continuous":
            self.use_transformers_continuous_batching = True

    def _resolve_objective(self) -> None:
        """Reconcile ``objective`` and ``loss_type`` (module docstring); ``loss_type`` ends as the
        TRL loss type trained, or None for an objective TRL does not have."""
        given = self.loss_type
        if given is not None and given not in LOSS_TYPES:
            raise DmpoError(f"loss_type must be one of TRL's {list(LOSS_TYPES)}, got {given!r}")
        if self.objective is None:
            self.loss_type = self.objective_name
            return
        spec = _group_objective(self.objective)
        params = spec.params | self.objective_kwargs
        implied = _trl_loss_type(spec, params)
        if given is None or given == implied:
            self.loss_type = implied
            return
        has_base = "base" in spec.params
        if has_base and params["base"] != "none" and "base" not in self.objective_kwargs:
            self.objective_kwargs["base"] = given  # DMPOConfig(loss_type=X): DMPO on X
            self.loss_type = given
            return
        if has_base and params["base"] != "none":
            hint = (f"objective_kwargs base={params['base']!r} trains TRL's {implied!r}; drop one "
                    "of them")
        elif has_base:
            hint = f"objective {self.objective!r} has no base surrogate; leave loss_type unset"
        elif implied is None:
            hint = (f"objective {self.objective!r} has its own loss, not one of TRL's; leave "
                    "loss_type unset")
        else:
            hint = (f"objective {self.objective!r} is TRL's {implied!r}; set objective={given!r} "
                    f"(or objective=None for TRL's own defaults), or leave loss_type unset")
        raise DmpoError(f"loss_type={given!r} contradicts objective={self.objective!r}: {hint}")

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
        # Every loss option of TRL 1.16 is an option of the objectives' shared surrogate; here only
        # their values are checked (whether the objective uses them: _sync_shared_fields).
        if self.importance_sampling_level not in IMPORTANCE_SAMPLING_LEVELS:
            raise DmpoError(
                f"importance_sampling_level must be one of {list(IMPORTANCE_SAMPLING_LEVELS)}, "
                f"got {self.importance_sampling_level!r}"
            )
        for name in ("delta", "off_policy_mask_threshold"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
            ):
                raise DmpoError(f"{name} must be a finite number or None, got {value!r}")
        if not 0.0 <= self.top_entropy_quantile <= 1.0:
            raise DmpoError(f"top_entropy_quantile must be in [0, 1], got {self.top_entropy_quantile}")

    def _check_entropy_options(self, spec: objectives.ObjectiveSpec) -> None:
        if self.use_adaptive_entropy and "entropy_coef" not in _accepted_shared_params(
            spec.params | self.objective_kwargs
        ):
            raise DmpoError(
                f"use_adaptive_entropy=True has no effect: objective {spec.name!r} has no entropy "
                "bonus ('entropy_coef'); leave it False"
            )

    def _check_coefficient_form(self, spec: objectives.ObjectiveSpec) -> None:
        if self.group_split == "coefficient" and "dm_form" not in spec.params:
            dm_objectives = [n for n in objectives.names("group") if "dm_form" in objectives.get(n).params]
            raise DmpoError(
                f"group_split='coefficient' needs an objective with a distribution-matching term "
                f"({dm_objectives}); {spec.name!r} has none: use group_split='rows' (or 'auto')"
            )

    def _shared_value(self, name: str) -> Any:
        if name == "epsilon_high" and self.epsilon_high is None:
            return self.epsilon
        return getattr(self, name)

    def _sync_shared_fields(self, spec: objectives.ObjectiveSpec) -> None:
        params = spec.params | self.objective_kwargs
        accepted = _accepted_shared_params(params)
        if self.epsilon_high is None and "epsilon_high" in accepted:
            # TRL's epsilon_high=None means "same as epsilon": epsilon reaches epsilon_high.
            accepted = accepted | {"epsilon_low"}
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
            if self.follows_trl_defaults:
                continue  # TRL's behaviour: every field keeps TRL's value
            default = _effective_default(params, param)
            if name in untouched and default is not None:
                setattr(self, name, default)

    def _check_whole_groups(self) -> None:
        if self.per_device_train_batch_size % self.num_generations != 0:
            raise DmpoError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple "
                f"of num_generations ({self.num_generations}) so that every micro-batch holds whole "
                "groups (it counts completions, not prompts); or leave group_split='auto', which "
                "splits groups over micro-batches for the objectives that allow it"
            )
        num_eval = self.num_generations_eval or self.num_generations
        if self.eval_strategy not in ("no", None) and self.per_device_eval_batch_size % num_eval != 0:
            raise DmpoError(
                f"per_device_eval_batch_size ({self.per_device_eval_batch_size}) must be a multiple "
                f"of the evaluation group size ({num_eval})"
            )

    def _check_split_groups(self, spec: objectives.ObjectiveSpec, chosen: bool) -> None:
        """Groups may straddle micro-batches: refuse an objective that needs them whole."""
        params = self.objective_params()
        if "dm_form" in spec.params:
            params["dm_form"] = "coefficient"  # the trainer's form on split groups
        reason = spec.needs_whole_groups(**params)
        if reason is None:
            return
        if chosen:
            raise DmpoError(
                f"per_device_train_batch_size ({self.per_device_train_batch_size}) must be a multiple "
                f"of num_generations ({self.num_generations}) for objective {spec.name!r}, which needs "
                f"whole groups in every micro-batch: {reason}. Raise gradient_accumulation_steps "
                "(or steps_per_generation) for a larger batch per optimiser step"
            )
        raise DmpoError(
            f"objective {spec.name!r}, which needs whole groups in every micro-batch: {reason}, "
            f"cannot train with group_split={self.group_split!r}, which lets a group straddle "
            "micro-batches; use group_split='whole' (or 'auto') with per_device_train_batch_size a "
            "multiple of num_generations"
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


def _trl_loss_type(spec: objectives.ObjectiveSpec, params: dict[str, Any]) -> str | None:
    """TRL's loss_type of what ``spec`` trains with ``params``: a base surrogate's own, a DMPO
    objective's base's, or None (an objective with its own loss, or DMPO without a base)."""
    for name, fn in BASES.items():
        if spec.fn is fn:
            return TRL_LOSS_TYPES[name]
    base = params.get("base")
    return TRL_LOSS_TYPES.get(base) if isinstance(base, str) else None


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


@dataclass
class DMPOConfig(GroupObjectiveConfig):
    r"""``GroupObjectiveConfig`` whose objective defaults to DMPO (the paper's defaults, base
    grpo). ``loss_type`` picks DMPO's base surrogate (``DMPOConfig(loss_type="dapo")``); any
    other ``objective`` may be set, as in ``GroupObjectiveConfig``."""

    objective: str | None = field(
        default="dmpo",
        metadata={
            "help": "Group objective from the dmpo registry (default dmpo); see GroupObjectiveConfig. "
            "None: the objective named by `loss_type`, with TRL's defaults."
        },
    )
