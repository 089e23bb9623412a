"""What dmpo registers in verl: loaded by verl's ``verl.plugins`` entry point on ``import verl``.

verl (≥ 0.9) imports every entry point of the ``verl.plugins`` group when ``verl`` is imported,
in the driver and in every Ray worker, and swallows an import error into a debug log; so this
module registers at import and imports nothing but verl's ``core_algos`` and dmpo's core.

Registered:

- advantage estimator ``dmpo`` (``algorithm.adv_estimator=dmpo``): verl's GRPO advantage (or
  none, ``base=none``) plus DMPO's DM term folded in as a per-token advantage shift
  (:mod:`dmpo.engines.verl.fold`, exact for the first update on a batch). Its parameters come
  from ``algorithm.dmpo`` (Hydra: ``+algorithm.dmpo.lam=2.0``): ``lam``, ``alpha``,
  ``target_from``, ``divergence``, ``length_normalize``, ``skip_zero_signal_groups``,
  ``normalize``, ``base`` (grpo | none), ``adv_eps`` and ``loss_agg_mode``, which must equal
  ``actor_rollout_ref.actor.loss_agg_mode`` (default ``seq-mean-token-mean``, the paper's GRPO).
- policy loss ``dmpo_vespo`` (``actor_rollout_ref.actor.policy_loss.loss_mode=dmpo_vespo``):
  VESPO, which verl lacks, with the core's weights and defaults, aggregated by verl's ``agg_loss``.
"""

from __future__ import annotations

import inspect
import logging
import sys
from typing import Any

import torch
from verl.trainer.ppo import core_algos

from dmpo.engines.verl.fold import dm_advantage_shift, group_ids_from_uids
from dmpo.errors import DmpoError
from dmpo.objectives.common import masked_mean
from dmpo.objectives.policy_gradient import policy_loss as _core_policy_loss
from dmpo.objectives.policy_gradient import vespo_weights

__all__ = ["ADV_ESTIMATOR", "DMPO_DEFAULTS", "VESPO_LOSS", "compute_dmpo_advantage",
           "dmpo_advantages", "dmpo_params", "vespo_policy_loss"]

_LOG = logging.getLogger(__name__)
ADV_ESTIMATOR = "dmpo"
VESPO_LOSS = "dmpo_vespo"
# The paper's settings (λ = 2, α = 1/15, reward target, mse per group, φ = average log-prob);
# verl's GRPO advantage (its own ε = 1e-6 and norm_adv_by_std_in_grpo) as the base.
DMPO_DEFAULTS: dict[str, Any] = {
    "lam": 2.0,
    "alpha": 1 / 15,
    "target_from": "reward",
    "divergence": "mse",
    "length_normalize": True,
    "skip_zero_signal_groups": False,
    "normalize": "group",
    "base": "grpo",
    "adv_eps": 1e-6,
    "loss_agg_mode": "seq-mean-token-mean",
}
_BASES = ("grpo", "none")
_VESPO_DEFAULTS = {
    name: p.default for name, p in inspect.signature(_core_policy_loss).parameters.items()
    if name.startswith("vespo_")
}


def dmpo_params(config: Any) -> dict[str, Any]:
    """DMPO's parameters: ``DMPO_DEFAULTS`` updated by ``config["dmpo"]`` (verl's algorithm
    config) when present; an unknown name is a clear error."""
    given = {}
    if config is not None:
        section = config.get("dmpo", None) if hasattr(config, "get") else None
        if section is not None:
            given = {str(k): section[k] for k in section}
    unknown = sorted(set(given) - set(DMPO_DEFAULTS))
    if unknown:
        raise DmpoError(f"algorithm.dmpo has no parameter(s) {unknown}; valid: {sorted(DMPO_DEFAULTS)}")
    params = {**DMPO_DEFAULTS, **given}
    if params["base"] not in _BASES:
        raise DmpoError(f"algorithm.dmpo.base must be one of {list(_BASES)}, got {params['base']!r}")
    return params


def dmpo_advantages(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any,
    old_log_probs: torch.Tensor,
    *,
    norm_adv_by_std_in_grpo: bool = True,
    **params: Any,
) -> tuple[torch.Tensor, dict[str, float]]:
    """[N, T] advantages: the base's (verl's GRPO, or 0) plus the DM shift of each row, on every
    response token; and the DM diagnostics. ``params`` as :data:`DMPO_DEFAULTS`."""
    params = {**DMPO_DEFAULTS, **params}
    lam, base, adv_eps = params.pop("lam"), params.pop("base"), params.pop("adv_eps")
    loss_agg_mode, length_normalize = params.pop("loss_agg_mode"), params.pop("length_normalize")
    dtype = torch.promote_types(token_level_rewards.dtype, torch.float32)
    mask = response_mask.to(dtype)
    rewards = token_level_rewards.to(dtype).sum(dim=-1)
    if base == "grpo":
        grpo, _ = core_algos.compute_grpo_outcome_advantage(
            token_level_rewards=token_level_rewards, response_mask=response_mask, index=index,
            epsilon=adv_eps, norm_adv_by_std_in_grpo=norm_adv_by_std_in_grpo,
        )
        base_adv = masked_mean(grpo.to(dtype), mask)
    else:
        base_adv = torch.zeros_like(rewards)
    shift, dm = dm_advantage_shift(
        old_log_probs, response_mask, rewards, group_ids_from_uids(index), lam=lam,
        loss_agg_mode=loss_agg_mode, advantages=base_adv if base == "grpo" else None,
        length_normalize=length_normalize, adv_eps=adv_eps, **params,
    )
    advantages = (base_adv + shift.to(dtype)).unsqueeze(-1) * mask
    metrics = {f"dmpo/{k}": float(v) for k, v in dm.diagnostics.items()}
    return advantages.to(token_level_rewards.dtype), metrics


def _calling_batch(token_level_rewards: torch.Tensor) -> Any:
    """The ``DataProto`` whose rewards verl's ``compute_advantage`` passed us: its local ``data``.

    verl gives an estimator the rewards, the mask and the prompt ids, not the log-probs the DM
    term needs; the batch they come from is the caller's ``data`` (verl 0.9.1's
    ``ray_trainer.compute_advantage``, used by both trainers). It is recognised by holding this
    very rewards tensor, so no other batch can be taken for it.
    """
    frame = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            break
        data = frame.f_locals.get("data")
        batch = getattr(data, "batch", None)
        if batch is not None and "token_level_rewards" in batch:
            held = batch["token_level_rewards"]
            if held is token_level_rewards or (
                held.shape == token_level_rewards.shape
                and held.data_ptr() == token_level_rewards.data_ptr()
            ):
                return data
        frame = frame.f_back
    return None


@core_algos.register_adv_est(ADV_ESTIMATOR)
def compute_dmpo_advantage(
    token_level_rewards: torch.Tensor,
    response_mask: torch.Tensor,
    index: Any = None,
    config: Any = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """verl advantage estimator ``dmpo`` (module docstring). Needs the batch's ``old_log_probs``,
    which verl's ``compute_advantage`` holds but does not pass: they are read from its batch."""
    if index is None:
        raise DmpoError("the dmpo estimator needs the prompt ids (non_tensor_batch['uid'])")
    data = _calling_batch(token_level_rewards)
    if data is None or "old_log_probs" not in data.batch:
        raise DmpoError(
            "the dmpo estimator needs the batch's old_log_probs: call it through verl's "
            "compute_advantage on a batch that holds them, or call "
            "dmpo.engines.verl.plugin.dmpo_advantages(...) yourself"
        )
    norm = bool(config.get("norm_adv_by_std_in_grpo", True)) if config is not None else True
    advantages, metrics = dmpo_advantages(
        token_level_rewards, response_mask, index, data.batch["old_log_probs"],
        norm_adv_by_std_in_grpo=norm, **dmpo_params(config),
    )
    # verl has no channel from an estimator to its step metrics: the DM diagnostics go to the log.
    _LOG.info("dmpo: %s", " ".join(f"{k}={v:.4g}" for k, v in metrics.items()))
    return advantages, advantages


@core_algos.register_policy_loss(VESPO_LOSS)
def vespo_policy_loss(
    old_log_prob: torch.Tensor,
    log_prob: torch.Tensor,
    advantages: torch.Tensor,
    response_mask: torch.Tensor,
    loss_agg_mode: str = "token-mean",
    config: Any = None,
    rollout_is_weights: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """VESPO (``dmpo.objectives``' ``vespo``): ℓ_t = −sg[φ(w_i)]·A·lp_t with the core's
    ``vespo_weights`` and default (k, λ), aggregated by verl's ``agg_loss`` with ``loss_agg_mode``
    (``token-mean`` is the core's ``dapo`` sum over the global batch's tokens)."""
    mask = response_mask.to(torch.float32)
    dtype = torch.promote_types(log_prob.dtype, torch.float32)
    logps = torch.where(mask.bool(), log_prob.to(dtype), 0.0)
    log_ratio = torch.where(mask.bool(), logps - old_log_prob.to(dtype), 0.0)
    row_adv = masked_mean(advantages.to(dtype), mask)
    phi = vespo_weights(log_ratio, mask, row_adv, k_pos=_VESPO_DEFAULTS["vespo_k_pos"],
                        lambda_pos=_VESPO_DEFAULTS["vespo_lambda_pos"],
                        k_neg=_VESPO_DEFAULTS["vespo_k_neg"],
                        lambda_neg=_VESPO_DEFAULTS["vespo_lambda_neg"])
    token_loss = -phi * advantages.to(dtype) * logps
    if rollout_is_weights is not None:
        token_loss = token_loss * rollout_is_weights
    batch_info = dict(getattr(config, "global_batch_info", None) or {}) if config is not None else {}
    loss = core_algos.agg_loss(loss_mat=token_loss, loss_mask=response_mask,
                               loss_agg_mode=loss_agg_mode, **batch_info)
    return loss, {"actor/vespo_phi_seq_mean": float(phi.mean())}
