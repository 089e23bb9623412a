"""Clip-Cov and KL-Cov (Cui et al., "The Entropy Mechanism of RL for Reasoning LMs", 2505.22617).

Entropy collapses when tokens whose log-probability and advantage move together get pushed
further. Both methods score each real token of the batch by its centred covariance

    Cov_t = (A_t − mean A) · (log π_θ(y_t) − mean log π_θ)      (means over real tokens)

with ``A_t`` the advantage of the token's completion, and restrain a tiny fraction of the
highest-covariance tokens: Clip-Cov detaches the gradient of randomly chosen tokens with
``lb < Cov < ub``; KL-Cov adds ``β·|log π_θ − log π_old|`` to the top-k tokens by Cov.
Covariances are computed without gradient on the current (not the old) log-probabilities, as
in the authors' code and verl. Advantages are group-normalised rewards (GRPO, the paper's base)
unless the batch brings its own.
"""

from __future__ import annotations

import math

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import compute_dtype, masked_sum, to_output, token_mean
from dmpo.objectives.gpg import batch_advantages
from dmpo.objectives.policy_gradient import aggregate_token_loss, clip_fraction, clipped_token_loss
from dmpo.objectives.registry import ObjectiveOutput, register


def _check_fraction(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise DmpoError(f"{name} must be a fraction of tokens in [0, 1], got {value}")


def token_covariance(
    advantages: torch.Tensor, logps: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """Cov_t = (A_i − Ā)·(lp_t − l̄p) per token, means over real tokens: [N], [N, T] → [N, T].

    ``logps`` must be 0 on padding (any value there would enter nothing but the padded
    entries of the result, which callers ignore). No gradient.
    """
    with torch.no_grad():
        count = mask.sum().clamp(min=1)
        mean_adv = (advantages * mask.sum(-1)).sum() / count
        mean_lp = masked_sum(logps, mask).sum() / count
        return (advantages - mean_adv).unsqueeze(-1) * (logps - mean_lp)


def _selection_size(ratio: float, num_real: int) -> int:
    """max(⌊ratio · real tokens⌋, 1) as the authors and verl count; 0 when ratio or tokens are 0."""
    if ratio == 0.0 or num_real == 0:
        return 0
    return max(int(ratio * num_real), 1)


def _inputs(
    batch: GroupBatch, scale_rewards: str, adv_eps: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(real-token bool mask, mask, logps, old_logps, advantages [N]) in the compute dtype."""
    dtype = compute_dtype(batch.logps.dtype)
    real = batch.mask.bool()
    logps = batch.logps.to(dtype)
    old = logps.detach() if batch.old_logps is None else batch.old_logps.to(dtype)
    advantages = batch_advantages(batch, dtype, scale_rewards=scale_rewards, adv_eps=adv_eps)
    return real, batch.mask.to(dtype), logps, old, advantages


@register(
    "clip_cov",
    "group",
    paper="arXiv 2505.22617 (Clip-Cov)",
    oracle="verl compute_policy_loss_clip_cov (authors' code); clip_cov_ratio=0 gives the "
    "clipped surrogate of the GRPO family exactly",
    summary="PPO-clip surrogate; a random 2e-4 of the tokens with 1 < Cov < 5 lose their gradient.",
)
def clip_cov(
    batch: GroupBatch,
    *,
    clip_cov_ratio: float = 2e-4,
    clip_cov_lb: float = 1.0,
    clip_cov_ub: float = 5.0,
    seed: int | None = 0,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    aggregation: str = "dapo",
) -> ObjectiveOutput:
    """Clip-Cov (arXiv 2505.22617, the paper's L_Clip-Cov; verl's and the authors' code):

        ρ_t = exp(lp_t − old_t),  ℓ_t = −min(ρ_t·A_t, clip(ρ_t, 1−ε_low, 1+ε_high)·A_t)
        I   = n random tokens of {t real, not clipped by PPO, clip_cov_lb < Cov_t < clip_cov_ub}
        L   = Σ_t [t ∉ I]·ℓ_t / |T|,     n = max(⌊clip_cov_ratio · #real tokens⌋, 1)

    A token of I contributes 0 (its gradient is detached; as in the authors' code, its value
    is dropped too, while it still counts in ``|T|``). "Clipped by PPO" means the clipped term
    is the active one (−A·clip(ρ) > −A·ρ); those tokens already carry no gradient. ``|T|`` is
    set by ``aggregation`` (``dapo`` = verl's token-mean, as the authors train; or ``bnpo``,
    ``grpo``, ``dr_grpo``). ``n`` counts all real tokens, and is capped by the number of
    candidates.

    ``clip_cov_ratio = 0`` selects nothing: the loss is then exactly the GRPO family's clipped
    surrogate with the same ``aggregation`` (verl rejects 0). Any ratio > 0 selects at least
    one token, as in verl.

    Randomness: the choice among candidates is a ``torch.randperm`` drawn from a CPU
    ``torch.Generator`` seeded with ``seed``, so a call is reproducible on any device. An
    engine should pass a different seed each step (e.g. the global step); ``seed=None`` draws
    from torch's global generator instead (verl's behaviour).

    Defaults: ε_low = ε_high = 0.2 as verl's ``clip_ratio`` (the authors' Clip-Cov recipes set
    ε_low = ε_high = 1, i.e. clip only above ρ = 2); ratio 2e-4, bounds (1, 5) as the authors.
    """
    _check_fraction("clip_cov_ratio", clip_cov_ratio)
    if not clip_cov_lb < clip_cov_ub:
        raise DmpoError(
            f"clip_cov_lb must be < clip_cov_ub, got clip_cov_lb={clip_cov_lb}, "
            f"clip_cov_ub={clip_cov_ub}"
        )
    real, mask, logps, old, advantages = _inputs(batch, scale_rewards, adv_eps)
    token_loss, ratio = clipped_token_loss(
        logps,
        old,
        mask,
        advantages,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        sequence_level=False,
    )

    with torch.no_grad():
        adv = advantages.unsqueeze(-1)
        clipped = -adv * ratio.clamp(1 - epsilon_low, 1 + epsilon_high) > -adv * ratio
        cov = token_covariance(advantages, torch.where(real, logps.detach(), 0.0), mask)
        candidates = real & ~clipped & (cov > clip_cov_lb) & (cov < clip_cov_ub)
        keep = torch.ones_like(token_loss)
        size = _selection_size(clip_cov_ratio, int(real.sum().item()))
        flat = torch.nonzero(candidates.reshape(-1)).squeeze(-1)
        if size and flat.numel():
            generator = None if seed is None else torch.Generator().manual_seed(seed)
            perm = torch.randperm(flat.numel(), generator=generator)[:size]
            keep.view(-1)[flat[perm.to(flat.device)]] = 0.0
        selected = keep == 0

    loss = aggregate_token_loss(
        token_loss * keep,
        mask,
        aggregation,
        max_completion_length=None,
        num_items_in_batch=batch.num_items_in_batch,
    )
    with torch.no_grad():
        log_ratio = torch.where(real, logps - old, 0.0)
        low = clip_fraction(ratio < 1 - epsilon_low, mask, advantages < 0)
        high = clip_fraction(ratio > 1 + epsilon_high, mask, advantages > 0)
        metrics = {
            "clip_cov/fraction": token_mean(selected.to(mask.dtype), mask),
            "clip_cov/candidate_fraction": token_mean(candidates.to(mask.dtype), mask),
            "clip_ratio/low_mean": low,
            "clip_ratio/high_mean": high,
            "clip_ratio/region_mean": low + high,
            "ppo_kl": token_mean(-log_ratio, mask),
            "advantage_abs_mean": advantages.abs().mean(),
        }
    return to_output(loss, metrics)


@register(
    "kl_cov",
    "group",
    paper="arXiv 2505.22617 (KL-Cov)",
    oracle="verl compute_policy_loss_kl_cov (authors' code); kl_cov_ratio=0 gives the "
    "unclipped surrogate −A·ρ (= grpo family on-policy)",
    summary="Unclipped surrogate −A·ρ; the top 2e-4 of the tokens by Cov add |log π − log π_old|.",
)
def kl_cov(
    batch: GroupBatch,
    *,
    kl_cov_ratio: float = 2e-4,
    ppo_kl_coef: float = 1.0,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    aggregation: str = "dapo",
) -> ObjectiveOutput:
    """KL-Cov (arXiv 2505.22617, the paper's L_KL-Cov; verl's and the authors' code):

        ρ_t = exp(lp_t − old_t)
        I   = the k real tokens of largest Cov_t,   k = max(⌊kl_cov_ratio · #real tokens⌋, 1)
        ℓ_t = −A_t·ρ_t + [t ∈ I]·ppo_kl_coef·|lp_t − old_t|
        L   = Σ_t ℓ_t / |T|

    There is no ratio clipping: the KL term on the high-covariance tokens replaces it, as in
    the authors' code and verl (their recipes' clip ranges do not reach this loss). With
    ``kl_cov_ratio = 0`` nothing is selected and the loss is the unclipped surrogate −A·ρ,
    which equals the GRPO family's clipped surrogate on-policy (ρ = 1) and in general that
    surrogate with ε_low = 1, ε_high = ∞ (verl rejects 0).

    Ties in Cov are broken by position (a stable sort, row-major), so the selection is
    deterministic. ``|T|`` is set by ``aggregation`` (``dapo`` = verl's token-mean, default).
    On-policy (``old_logps`` None) the KL term is 0 with zero gradient (|x| at 0).

    Defaults as verl: ratio 2e-4 (the authors' 32B recipe; their 7B recipe uses 2e-3, given
    there as ``k_percent=0.2`` per cent), ``ppo_kl_coef = 1``.
    """
    _check_fraction("kl_cov_ratio", kl_cov_ratio)
    if not (ppo_kl_coef >= 0 and math.isfinite(ppo_kl_coef)):
        raise DmpoError(f"ppo_kl_coef must be finite and >= 0, got {ppo_kl_coef}")
    real, mask, logps, old, advantages = _inputs(batch, scale_rewards, adv_eps)
    log_ratio = torch.where(real, logps - old, 0.0)
    token_loss = -(advantages.unsqueeze(-1) * torch.exp(log_ratio))

    with torch.no_grad():
        cov = token_covariance(advantages, torch.where(real, logps.detach(), 0.0), mask)
        flat = torch.nonzero(real.reshape(-1)).squeeze(-1)
        size = _selection_size(kl_cov_ratio, flat.numel())
        selected = torch.zeros_like(real)
        if size:
            order = torch.sort(cov.reshape(-1)[flat], descending=True, stable=True).indices
            selected.view(-1)[flat[order[:size]]] = True

    token_loss = token_loss + torch.where(selected, ppo_kl_coef * log_ratio.abs(), 0.0)
    loss = aggregate_token_loss(
        token_loss,
        mask,
        aggregation,
        max_completion_length=None,
        num_items_in_batch=batch.num_items_in_batch,
    )
    with torch.no_grad():
        metrics = {
            "kl_cov/fraction": token_mean(selected.to(mask.dtype), mask),
            "ppo_kl_abs": token_mean(log_ratio.abs(), mask),
            "advantage_abs_mean": advantages.abs().mean(),
        }
    return to_output(loss, metrics)


# Part of a group is enough (registry docstring): the covariances, the token selection and the
# normaliser are over the batch's tokens (one micro-batch, as in verl), never per group.
clip_cov.whole_groups = None
kl_cov.whole_groups = None
