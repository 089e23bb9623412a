"""Group objectives from the literature around DMPO: DisCO, BRAIn and DGPO (spec §2.3).

Each is a pure function of a :class:`GroupBatch`; groups are complete and may differ in size.
Half-precision inputs are computed in float32 (gradients flow back in the input's dtype).
"""

from __future__ import annotations

import math

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    group_advantages,
    group_index,
    group_log_softmax,
    group_max,
    group_softmax,
    group_sum,
    masked_mean,
    masked_sum,
    num_tokens,
)
from dmpo.objectives.registry import ObjectiveOutput, register


def _upcast(values: torch.Tensor) -> torch.Tensor:
    return values.float() if values.dtype in (torch.float16, torch.bfloat16) else values


def _choice(name: str, value: str, options: tuple[str, ...]) -> None:
    if value not in options:
        raise DmpoError(f"{name} must be one of {list(options)}, got {value!r}")


def _token_inputs(
    batch: GroupBatch,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(real-token bool mask, mask as float, logps, old_logps), padding set to 0.

    Padding is zeroed so that ``exp`` or ``0·inf`` on arbitrary pad values cannot make NaN.
    ``old_logps`` defaults to the detached ``logps`` (on-policy).
    """
    real = batch.mask.bool()
    logps = torch.where(real, _upcast(batch.logps), 0.0)
    old = logps.detach() if batch.old_logps is None else _upcast(batch.old_logps)
    old = torch.where(real, old, 0.0)
    return real, real.to(logps.dtype), logps, old


def _group_logsumexp(
    values: torch.Tensor, include: torch.Tensor, index: torch.Tensor, num_groups: int
) -> torch.Tensor:
    """log Σ_{i∈g, include_i} exp(values_i) per group: [N] → [K]; 0 for a group with no member.

    Stable, and with finite gradients even for the empty groups.
    """
    masked = torch.where(include, values, float("-inf"))
    shift = group_max(masked.detach(), index, num_groups)
    shift = torch.where(torch.isfinite(shift), shift, 0.0)
    total = group_sum(torch.exp(masked - shift[index]), index, num_groups)
    has_member = group_sum(include.to(values.dtype), index, num_groups) > 0
    return torch.log(torch.where(has_member, total, 1.0)) + torch.where(has_member, shift, 0.0)


@register(
    "disco",
    "group",
    paper="DisCO, arXiv 2505.12366",
    oracle="official code's detach-trick log-sum-exp (gradient only); DisCO-b = mean_pos − mean_neg",
    summary="Discriminative objective on binary rewards with a squared-hinge KL constraint.",
)
def disco(
    batch: GroupBatch,
    *,
    score: str = "logL",
    tau: float | None = None,
    form: str = "dro",
    threshold: float = 0.5,
    delta: float = 1e-4,
    beta_constraint: float = 1e3,
) -> ObjectiveOutput:
    """DisCO: discriminative constrained optimisation (arXiv 2505.12366).

    Completion i is positive when ``r_i > threshold``. Score ``s_i = avg(y_i)`` (``logL``,
    τ = 10) or ``s_i = mean_t ρ_t``, ``ρ_t = exp(lp_t − old_t)`` (``Lratio``, τ = 1).
    Per group holding both positives and negatives:

        dro:    J_g = mean_pos s − τ·log Σ_neg exp(s/τ)
        basic:  J_g = mean_pos s − mean_neg s                    (DisCO-b)

    ``J = Σ_g J_g / K`` over all K groups: all-correct and all-wrong groups add 0 but count.
    ``KL̂ = Σ_t (old_t − lp_t) / #tokens`` over every real token of the batch, and

        L = −J + (β/2)·max(KL̂ − δ, 0)²

    whose gradient is the paper's squared-hinge step ``−∇J + sg[β·max(KL̂ − δ, 0)]·∇KL̂``.
    The loss value is the honest one: the true log-sum-exp and the penalty itself, not the
    official code's detach-trick surrogate (same gradient, different value).
    """
    _choice("score", score, ("logL", "Lratio"))
    _choice("form", form, ("dro", "basic"))
    if tau is None:
        tau = 10.0 if score == "logL" else 1.0
    if tau <= 0:
        raise DmpoError(f"tau must be > 0, got {tau}")
    if delta < 0 or beta_constraint < 0:
        raise DmpoError(f"delta and beta_constraint must be >= 0, got {delta}, {beta_constraint}")

    real, mask, logps, old = _token_inputs(batch)
    log_ratio = torch.where(real, logps - old, 0.0)
    scores = (
        masked_mean(logps, mask) if score == "logL" else masked_mean(torch.exp(log_ratio), mask)
    )

    index, k = group_index(batch.group_ids)
    positive = batch.rewards > threshold
    pos = positive.to(scores.dtype)
    neg = 1.0 - pos
    n_pos = group_sum(pos, index, k)
    n_neg = group_sum(neg, index, k)
    kept = (n_pos > 0) & (n_neg > 0)

    mean_pos = group_sum(scores * pos, index, k) / n_pos.clamp(min=1)
    if form == "basic":
        neg_term = group_sum(scores * neg, index, k) / n_neg.clamp(min=1)
    else:
        neg_term = tau * _group_logsumexp(scores / tau, ~positive, index, k)
    j = torch.where(kept, mean_pos - neg_term, 0.0).sum() / k

    kl = masked_sum(old - logps, mask).sum() / mask.sum().clamp(min=1)
    hinge = torch.clamp(kl - delta, min=0.0)
    loss = -j + 0.5 * beta_constraint * hinge * hinge

    metrics = {
        "j": j.item(),
        "kl": kl.item(),
        "dropped_fraction": (~kept).float().mean().item(),
    }
    return ObjectiveOutput(loss, metrics)


@register(
    "brain",
    "group",
    paper="BRAIn, arXiv 2402.02479",
    oracle="gradient Σ_i (β̂_i − α̂_i)∇lp(y_i)",
    summary="Self-normalised cross-entropy to the reward-conditioned posterior over each group.",
)
def brain(batch: GroupBatch, *, beta_r: float = 1.0, proposal: str = "sampler") -> ObjectiveOutput:
    """BRAIn: distil the reward-conditioned posterior by self-normalised importance sampling.

    With ``lp(y) = Σ_t lp_t`` and per group g:

        log q_prop(y) = Σ_t old_t  (``sampler``; ``logps`` detached when on-policy)
                        Σ_t ref_t  (``prior``: the completions were sampled from the reference)
        log p_prior(y) = Σ_t ref_t, or 0 (flat prior) when the batch has no ``ref_logps``
        α̂_i = softmax_g(log p_prior + r/β_r − log q_prop)_i     (target, no gradient)
        β̂_i = softmax_g(lp − log q_prop)_i
        L = mean_g [ −Σ_{i∈g} α̂_i log β̂_i ]

    Gradient ``Σ_i (β̂_i − α̂_i)∇lp(y_i)`` per group: with the sampler as proposal and a flat
    prior, this is the ``dmpo-ce`` form on summed log-likelihoods.
    """
    _choice("proposal", proposal, ("sampler", "prior"))
    if beta_r <= 0:
        raise DmpoError(f"beta_r must be > 0, got {beta_r}")
    if proposal == "prior" and batch.ref_logps is None:
        raise DmpoError("brain with proposal='prior' needs batch.ref_logps (the prior's log-probs)")

    real, mask, logps, old = _token_inputs(batch)
    seq_logps = masked_sum(logps, mask)
    prior = (
        masked_sum(torch.where(real, _upcast(batch.ref_logps), 0.0), mask)
        if batch.ref_logps is not None
        else torch.zeros_like(seq_logps)
    )
    log_proposal = masked_sum(old, mask) if proposal == "sampler" else prior
    rewards = batch.rewards.to(seq_logps.dtype)

    index, k = group_index(batch.group_ids)
    target = group_softmax((prior + rewards / beta_r - log_proposal).detach(), index, k)
    log_policy = group_log_softmax(seq_logps - log_proposal.detach(), index, k)
    loss = group_sum(-target * log_policy, index, k).sum() / k

    with torch.no_grad():
        log_target = torch.log(target.clamp(min=torch.finfo(target.dtype).tiny))
        kl = group_sum(target * (log_target - log_policy), index, k).sum() / k
        size = group_sum(torch.ones_like(target), index, k)
        ess = (1.0 / group_sum(target * target, index, k) / size).mean()
    return ObjectiveOutput(loss, {"kl_target_policy": kl.item(), "target_ess": ess.item()})


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
    entropies = _upcast(entropies.detach())
    gate = (entropies.clamp(min=0) / math.log(vocab_size)) ** kappa
    logits = torch.where(real, _upcast(hellinger.detach()) * gate / tau, float("-inf"))
    weights = torch.where(real, torch.softmax(logits, dim=-1), 0.0)
    return weights * num_tokens(real.to(weights.dtype)).unsqueeze(-1)


def _clipped_surrogate(
    log_ratio: torch.Tensor, token_advantages: torch.Tensor, epsilon_low: float, epsilon_high: float
) -> torch.Tensor:
    """ℓ_t = −min(ρ_t·A_t, clip(ρ_t, 1−ε_low, 1+ε_high)·A_t), ρ_t = exp(lp_t − old_t).

    Token-weighted version of the §2.1 surrogate (per-token A_t); kept local until it is
    merged with the GRPO family's in ``group.py``.
    """
    ratio = torch.exp(log_ratio)
    clipped = torch.clamp(ratio, 1.0 - epsilon_low, 1.0 + epsilon_high)
    return -torch.minimum(ratio * token_advantages, clipped * token_advantages)


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

    real, mask, logps, old = _token_inputs(batch)
    if batch.advantages is not None:
        advantages = _upcast(batch.advantages).to(logps.dtype)
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
    per_token = _clipped_surrogate(log_ratio, token_advantages, epsilon_low, epsilon_high)
    loss = masked_mean(per_token, mask).mean()

    with torch.no_grad():
        ratio = torch.exp(log_ratio)
        clipped = ((ratio < 1 - epsilon_low) & (token_advantages < 0)) | (
            (ratio > 1 + epsilon_high) & (token_advantages > 0)
        )
        n_real = mask.sum().clamp(min=1)
        metrics = {
            "clip_ratio": (clipped & real).sum().item() / n_real.item(),
            "weight_max": weights.max().item() if weights.numel() else 0.0,
        }
    return ObjectiveOutput(loss, metrics)
