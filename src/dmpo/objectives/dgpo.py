"""DGPO: distribution-guided policy optimisation (arXiv 2605.03327).

A pure function of a :class:`GroupBatch`; groups are complete and may differ in size.
Half-precision inputs are computed in float32 (gradients flow back in the input's dtype).
"""

from __future__ import annotations

import math

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    clipped_surrogate,
    group_advantages,
    masked_mean,
    num_tokens,
    token_inputs,
    upcast,
)
from dmpo.objectives.registry import ObjectiveOutput, register


def dgpo_token_weights(
    entropies: torch.Tensor,
    hellinger: torch.Tensor,
    mask: torch.Tensor,
    *,
    kappa: float,
    tau: float,
    vocab_size: int,
) -> torch.Tensor:
    """DGPO's credit weights ``w_t = T·softmax_t(d_t·(H_t/log|V|)^κ / τ)``: [N, T] → [N, T].

    The softmax runs over each completion's real tokens (T of them), so the weights average
    to 1 per completion; padding, and completions without tokens, get 0. No gradient.
    """
    real = mask.bool()
    entropies = upcast(entropies.detach())
    gate = (entropies.clamp(min=0) / math.log(vocab_size)) ** kappa
    logits = torch.where(real, upcast(hellinger.detach()) * gate / tau, float("-inf"))
    weights = torch.where(real, torch.softmax(logits, dim=-1), 0.0)
    return weights * num_tokens(real.to(weights.dtype)).unsqueeze(-1)


@register(
    "dgpo",
    "group",
    paper="DGPO, arXiv 2605.03327",
    oracle="grpo when d_t·H_t is uniform within each completion (w_t = 1)",
    summary="GRPO with the advantage spread over tokens by entropy-gated Hellinger distance.",
)
def dgpo(
    batch: GroupBatch,
    *,
    vocab_size: int | None = None,
    kappa: float = 1.0,
    tau: float = 0.5,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> ObjectiveOutput:
    """DGPO: distribution-guided policy optimisation (arXiv 2605.03327; details second-hand).

    ``A_i`` the group-normalised advantage (``batch.advantages`` when given), ``d_t`` the
    squared Hellinger distance policy↔reference (``batch.hellinger``), ``H_t`` the policy
    entropy (``batch.entropies``), ``|V|`` the vocabulary size:

        w_t = T·softmax_t(d_t·(H_t/log|V|)^κ / τ)      over the completion's T real tokens
        ℓ_t = −min(ρ_t·A_i·w_t, clip(ρ_t, 1−ε_low, 1+ε_high)·A_i·w_t)
        L   = mean_i [ mean_t ℓ_t ]                    (``grpo`` aggregation; no KL term)

    ``w`` is a credit weight, not a loss term: no gradient flows through ``d_t`` or ``H_t``.
    The same weights multiply positive and negative advantages.
    """
    if batch.entropies is None or batch.hellinger is None:
        missing = [n for n in ("entropies", "hellinger") if getattr(batch, n) is None]
        raise DmpoError(
            f"dgpo needs batch.{' and batch.'.join(missing)} (per-token policy entropy and "
            "squared Hellinger distance to the reference, from full-vocabulary logits)"
        )
    if vocab_size is None or vocab_size < 2:
        raise DmpoError(
            f"dgpo needs vocab_size >= 2 (the policy's vocabulary size), got {vocab_size}"
        )
    if tau <= 0 or kappa < 0:
        raise DmpoError(f"dgpo needs tau > 0 and kappa >= 0, got tau={tau}, kappa={kappa}")

    real, mask, logps, old = token_inputs(batch)
    if batch.advantages is not None:
        advantages = upcast(batch.advantages).to(logps.dtype)
    else:
        rewards = batch.rewards.to(logps.dtype)
        advantages = group_advantages(
            rewards, batch.group_ids, scale_rewards=scale_rewards, eps=adv_eps
        )
    weights = dgpo_token_weights(
        batch.entropies, batch.hellinger, batch.mask, kappa=kappa, tau=tau, vocab_size=vocab_size
    ).to(logps.dtype)
    token_advantages = advantages.unsqueeze(-1) * weights

    log_ratio = torch.where(real, logps - old, 0.0)
    per_token, ratio = clipped_surrogate(log_ratio, token_advantages, epsilon_low, epsilon_high)
    loss = masked_mean(per_token, mask).mean()

    with torch.no_grad():
        clipped = ((ratio < 1 - epsilon_low) & (token_advantages < 0)) | (
            (ratio > 1 + epsilon_high) & (token_advantages > 0)
        )
        n_real = mask.sum().clamp(min=1)
        metrics = {
            "clip_ratio": (clipped & real).sum().item() / n_real.item(),
            "weight_max": weights.max().item() if weights.numel() else 0.0,
        }
    return ObjectiveOutput(loss, metrics)


# Part of a group is enough (registry docstring): weights and terms are per completion.
dgpo.whole_groups = None
