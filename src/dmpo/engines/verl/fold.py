"""DMPO's DM term on verl in the coefficient form: c = ∂L_DM/∂φ folded into the advantages.

verl's policy loss sees per-token advantages and log-probs of a micro-batch, never a group; its
advantage estimator sees whole groups (it runs on the driver over the whole batch) but not the
log-probs. L_DM depends on the tokens only through φ_k (the average, or sum, of row k's token
log-probs), so its gradient is Σ_k c_k·∂φ_k with ``c = dm_term(φ, ...).coefficients`` computed
where the whole batch is: at advantage time, from the batch's ``old_log_probs`` (φ at the policy
that the first update starts from). Adding

    δ_k = −λ·c_k·(∂φ_k/∂lp_t) / w_k        (∂φ_k/∂lp_t = 1/|y_k| for the average, 1 for the sum)

to every token's advantage of row k, where w_k is the weight verl's ``agg_loss`` gives one token of
row k (the ``loss_agg_mode``, over the global mini-batch), makes the policy loss's gradient at
ratio 1 equal ∇L_base + λ·∇L_DM: at ratio 1 the PPO-clip term −A·ρ_t is unclipped and its
gradient is −A·w_k per token. Because w_k is a global normalisation (verl divides by the tokens
or sequences of the global mini-batch, not of the micro-batch, and FSDP averages the ranks'
gradients) the sum over ranks and micro-batches is the same however ``balance_batch`` reorders the
rows and however (dynamic) micro-batching splits them: c_k travels with row k.

What is exact when (stated for the whole batch as one global mini-batch, B sequences):

- ``ppo_mini_batch_size`` = ``data.train_batch_size`` (one optimiser step per batch), ``ppo_epochs``
  = 1, old log-probs recomputed by the actor (verl's default, not bypass mode), no rollout
  importance weights: the update equals one step on L_base + λ·L_DM over the whole batch, for any
  number of ranks, micro-batch size, ``use_dynamic_bsz`` and ``balance_batch``.
- Several mini-batches per batch: each row's DM share is applied in the step that trains it, with
  the weights of the whole batch (w_k above uses B and the batch's tokens, so each mini-batch's
  DM gradient has the weight of a whole batch's, like its base term); the steps after the first
  start from a moved policy, so c is then that of the batch's start (and ρ ≠ 1 lets the clip act
  on the folded advantage): an approximation, as for any PPO quantity computed at sampling time.
- ``ppo_epochs`` > 1: the same approximation in the later epochs.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from dmpo.errors import DmpoError
from dmpo.objectives.common import check_choice, compute_dtype, num_tokens, sequence_logps
from dmpo.objectives.dm_term import DM_TERM_PARAMS, DMTerm, dm_term

__all__ = ["LOSS_AGG_MODES", "dm_advantage_shift", "group_ids_from_uids", "token_weights"]

# The aggregations of verl's ``agg_loss`` under which the fold is exact (the -norm variant
# divides by the padded width of each micro-batch unless loss_scale_factor is set: not exact).
LOSS_AGG_MODES = ("token-mean", "seq-mean-token-mean", "seq-mean-token-sum", "token-sum")


def group_ids_from_uids(index: Any) -> torch.Tensor:
    """verl's per-row prompt ids (``non_tensor_batch["uid"]``, strings or ints) as integer group ids."""
    values = np.asarray(index, dtype=object)
    if values.ndim != 1:
        raise DmpoError(f"the group index must be one id per row, got shape {values.shape}")
    _, inverse = np.unique(values.astype(str), return_inverse=True)
    return torch.as_tensor(inverse, dtype=torch.long)


def token_weights(response_mask: torch.Tensor, loss_agg_mode: str) -> torch.Tensor:
    """[N] the weight verl's ``agg_loss`` gives one real token of each row when the rows are one
    global mini-batch of N sequences: the gradient of the aggregated −A·ρ_t at ρ = 1 is −A·w_k."""
    check_choice("loss_agg_mode", loss_agg_mode, LOSS_AGG_MODES)
    mask = response_mask.to(compute_dtype(response_mask.dtype) if response_mask.is_floating_point()
                            else torch.float32)
    rows = mask.shape[0]
    lengths = num_tokens(mask)
    if loss_agg_mode == "token-mean":
        return torch.full_like(lengths, 1.0) / mask.sum().clamp(min=1)
    if loss_agg_mode == "seq-mean-token-mean":
        return 1.0 / (lengths.clamp(min=1) * rows)
    if loss_agg_mode == "seq-mean-token-sum":
        return torch.full_like(lengths, 1.0 / rows)
    return torch.ones_like(lengths)


def dm_advantage_shift(
    old_log_probs: torch.Tensor,
    response_mask: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    lam: float,
    loss_agg_mode: str,
    advantages: torch.Tensor | None = None,
    length_normalize: bool = True,
    **dm_params: Any,
) -> tuple[torch.Tensor, DMTerm]:
    """δ [N] to add to every token's advantage of each row (module docstring), and the DM term.

    ``old_log_probs`` / ``response_mask``: [N, T] of the whole batch (whole groups); ``rewards``
    [N] the raw rewards, ``group_ids`` [N]; ``advantages`` [N] the base advantages (the target
    with ``target_from="advantage"``). ``dm_params``: :func:`~dmpo.objectives.dm_term.dm_term`'s
    (alpha, target_from, divergence, skip_zero_signal_groups, normalize, ...). Rows without
    tokens get δ = 0 (φ does not depend on any token).
    """
    unknown = sorted(set(dm_params) - set(DM_TERM_PARAMS))
    if unknown:
        raise DmpoError(f"the DM term has no parameter(s) {unknown}; valid: "
                        f"{sorted({*DM_TERM_PARAMS, 'lam', 'length_normalize', 'loss_agg_mode'})}")
    if old_log_probs.shape != response_mask.shape or old_log_probs.dim() != 2:
        raise DmpoError(f"old_log_probs {tuple(old_log_probs.shape)} and response_mask "
                        f"{tuple(response_mask.shape)} must be the same [N, T]")
    dtype = compute_dtype(old_log_probs.dtype)
    mask = response_mask.to(dtype)
    weights = token_weights(mask, loss_agg_mode)
    with torch.no_grad():
        logps = torch.where(mask.bool(), old_log_probs.to(dtype), 0.0)
        if not bool(torch.isfinite(logps).all()):
            raise DmpoError("old_log_probs hold NaN or ±inf at response tokens")
        phi = sequence_logps(logps, mask, average=length_normalize)
        dm = dm_term(phi, rewards, group_ids, advantages=advantages, **dm_params)
        lengths = num_tokens(mask)
        per_token = lam * dm.coefficients
        if length_normalize:
            per_token = per_token / lengths.clamp(min=1)
        shift = torch.where(lengths > 0, -per_token / weights, 0.0)
    return shift, dm
