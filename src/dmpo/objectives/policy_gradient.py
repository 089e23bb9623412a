"""The GRPO family and TRL's other policy losses: one surrogate function, options shared by all.

Per token (DeepSeekMath, arXiv 2402.03300):

    ρ_t = exp(lp_t − old_t)
    ℓ_t = −min(ρ_t·A, clip(ρ_t, 1−ε_low, 1+ε_high)·A) + β_kl·k3_t,
    k3_t = exp(ref_t − lp_t) − (ref_t − lp_t) − 1    (times ρ_t with kl_bias_correction, as
                                                     TRL's use_bias_correction_kl, default on there)

with the group-normalised advantage ``A_i = (r_i − mean_g r) / (std_g r + eps)`` unless the
batch brings its own. The clipped methods differ only in how ℓ_t is averaged (TRL's ``loss_type``):

    grpo     mean over each completion's tokens, then over completions
    bnpo     Σ ℓ_t / tokens in this batch
    dapo     Σ ℓ_t / tokens in the whole optimisation batch (``batch.num_items_in_batch``)
    dr_grpo  Σ ℓ_t / (completions × max_completion_length)
    gspo     grpo, with ρ_t replaced by the sequence ratio s_i = exp(mean_t(lp_t − old_t))
    luspo    Σ_t ℓ_t per completion, then the mean over completions (GSPO scaled by length)

TRL 1.16's other losses replace the clipped term (w = sg[·] carries no gradient):

    cispo    ℓ_t = −sg[min(ρ_t, ε_high)]·A·lp_t, summed as dapo          (MiniMax-M1)
    sapo     ℓ_t = −σ(τ·(ρ_t − 1))·(4/τ)·A, τ = τ_pos if A > 0 else τ_neg, averaged as grpo (SAPO)
    vespo    ℓ_t = −sg[φ(w_i)]·A·lp_t, summed as dapo, with w_i = exp(Σ_t (lp_t − old_t)) and
             φ(w) = exp(λ + k·ln w − λ·w) (k, λ by the sign of A)              (VESPO)

Options every one of them takes, as TRL applies them in ``GRPOTrainer._compute_loss``:

    importance_sampling_level  "token" (ρ_t) or "sequence" (ρ_t := s_i, as GSPO)
    delta                      two-sided clipping (INTELLECT-2): the unclipped term uses
                               min(ρ, δ); clipped surrogates only
    top_entropy_quantile       q < 1 keeps the policy term only on tokens whose entropy is at
                               least the (1 − q)-quantile of the batch's token entropies
                               ("Beyond the 80/20 rule"); ``entropy_threshold`` gives the
                               threshold computed elsewhere (over all processes)
    off_policy_mask_threshold  drops the policy term of a completion with A < 0 whose mean
                               log(π_sampler/π_θ) over its tokens exceeds it (DeepSeek-V3.2)
    entropy_coef               L −= c · (mean entropy over the tokens the policy term acts on)

Both masks multiply the policy term only (not the KL term, not the normaliser). Half-precision
inputs are computed in float32 and the loss is float32; float32 and float64 inputs keep their
dtype. Tokens outside ``mask`` never reach an ``exp`` (their log-ratios are zeroed first), so
padding filled with −inf or −1e4 cannot turn the loss into NaN.
"""

from __future__ import annotations

import math

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    ZERO_SIGNAL_TOL,
    check_choice,
    clipped_surrogate,
    compute_dtype,
    group_advantages,
    masked_mean,
    masked_sum,
    to_output,
    token_mean,
    zero_signal_groups,
)
from dmpo.objectives.registry import ObjectiveOutput, register

__all__ = [
    "AGGREGATIONS",
    "BASES",
    "IMPORTANCE_SAMPLING_LEVELS",
    "SURROGATES",
    "ZERO_SIGNAL_TOL",
    "bnpo",
    "cispo",
    "dapo",
    "dr_grpo",
    "grpo",
    "gspo",
    "luspo",
    "sapo",
    "vespo",
]

AGGREGATIONS = ("grpo", "bnpo", "dapo", "dr_grpo", "luspo")
SURROGATES = ("clip", "cispo", "sapo", "vespo")
IMPORTANCE_SAMPLING_LEVELS = ("token", "sequence")


def clipped_token_loss(
    logps: torch.Tensor,
    old_logps: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    epsilon_low: float,
    epsilon_high: float,
    sequence_level: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """ℓ_t = −min(ρ·A, clip(ρ, 1−ε_low, 1+ε_high)·A), and ρ.

    Token level: ρ and ℓ are [N, T]. Sequence level (GSPO): ρ = exp(mean_t(lp_t − old_t)) and
    ℓ are [N, 1], broadcast over the completion's tokens by the aggregation, as in TRL.
    """
    log_ratio = torch.where(mask.bool(), logps - old_logps, 0.0)
    if sequence_level:
        log_ratio = masked_mean(log_ratio, mask).unsqueeze(-1)
    return clipped_surrogate(log_ratio, advantages.unsqueeze(-1), epsilon_low, epsilon_high)


def aggregate_token_loss(
    token_loss: torch.Tensor,
    mask: torch.Tensor,
    aggregation: str,
    *,
    max_completion_length: int | None,
    num_items_in_batch: float | torch.Tensor | None,
) -> torch.Tensor:
    if aggregation == "grpo":
        return masked_mean(token_loss, mask).mean()
    if aggregation == "luspo":
        return masked_sum(token_loss, mask).mean()
    total = masked_sum(token_loss, mask).sum()
    if aggregation == "bnpo":
        return total / mask.sum().clamp(min=1)
    if aggregation == "dapo":
        if num_items_in_batch is None:
            return total / mask.sum().clamp(min=1)
        if isinstance(num_items_in_batch, torch.Tensor):
            return total / num_items_in_batch.to(total.dtype).clamp(min=1)
        return total / max(float(num_items_in_batch), 1.0)
    if aggregation == "dr_grpo":
        length = mask.shape[1] if max_completion_length is None else max_completion_length
        if length <= 0:
            raise DmpoError(f"max_completion_length must be positive, got {length}")
        return total / (mask.shape[0] * length)
    raise DmpoError(f"aggregation must be one of {AGGREGATIONS}, got {aggregation!r}")


def clip_fraction(flags: torch.Tensor, mask: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """Fraction of real tokens flagged within ``rows``; of completions for [N, 1] flags, as TRL logs."""
    if flags.shape[1] == 1:
        return (flags[:, 0] & rows).to(mask.dtype).mean()
    per_row = torch.where(flags, mask, 0.0).sum(-1)
    return (per_row * rows).sum() / mask.sum().clamp(min=1)


# ---- the options ---------------------------------------------------------------------------
def entropy_quantile_threshold(
    entropies: torch.Tensor, mask: torch.Tensor, top_entropy_quantile: float
) -> torch.Tensor:
    """The (1 − q)-quantile of the entropies of the real tokens (+inf without real tokens)."""
    values = entropies.detach()[mask.bool()].float()
    if values.numel() == 0:
        return torch.tensor(math.inf, device=entropies.device)
    return torch.quantile(values, 1.0 - top_entropy_quantile)


def high_entropy_mask(
    entropies: torch.Tensor, mask: torch.Tensor, threshold: torch.Tensor | float
) -> torch.Tensor:
    """[N, T] bool: a real token whose entropy is at least ``threshold``."""
    masked = torch.where(mask.bool(), entropies.detach(), 0.0) * mask
    return (masked >= threshold) & mask.bool()


def off_policy_keep(
    logps: torch.Tensor,
    sampling_logps: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    threshold: float,
) -> torch.Tensor:
    """[N, 1] 1.0 for a completion kept by the off-policy sequence mask, else 0.0.

    Kept when A ≥ 0 or mean_t(sampling_t − lp_t) ≤ threshold; a NaN log-prob (a token the
    sampler could not score) counts as no evidence (0).
    """
    with torch.no_grad():
        kl = torch.where(mask.bool(), sampling_logps - logps.detach(), 0.0).nan_to_num(nan=0.0)
        mean_kl = masked_mean(kl, mask)
        return ((advantages >= 0) | (mean_kl <= threshold)).to(mask.dtype).unsqueeze(-1)


def vespo_weights(
    log_ratio: torch.Tensor,
    mask: torch.Tensor,
    advantages: torch.Tensor,
    *,
    k_pos: float,
    lambda_pos: float,
    k_neg: float,
    lambda_neg: float,
) -> torch.Tensor:
    """[N, 1] φ(w_i) = exp(λ + k·ln w_i − λ·w_i), no gradient; ln w_i = Σ_t clamp(lp_t − old_t, ±20)
    clamped to [ln 1e-8, 20]; (k, λ) = (k_pos, λ_pos) for A ≥ 0, else the negative pair; λ ≥ 1e-4."""
    with torch.no_grad():
        per_token = log_ratio.clamp(-20.0, 20.0)
        log_w = masked_sum(per_token, mask).clamp(math.log(1e-8), 20.0).unsqueeze(-1)
        nonneg = (advantages >= 0).unsqueeze(-1)
        k = _by_sign(nonneg, k_pos, k_neg, log_w.dtype)
        lam = _by_sign(nonneg, lambda_pos, lambda_neg, log_w.dtype).clamp(min=1e-4)
        phi = torch.exp(lam + k * log_w - lam * torch.exp(log_w))
        return phi.nan_to_num(nan=0.0, posinf=0.0, neginf=0.0)


def _by_sign(
    condition: torch.Tensor, if_true: float, if_false: float, dtype: torch.dtype
) -> torch.Tensor:
    """``if_true`` where ``condition`` else ``if_false``, as ``dtype`` (float64 keeps 1.05 exact)."""
    values = torch.tensor([if_false, if_true], dtype=dtype, device=condition.device)
    return values[condition.long()]


def _check_options(
    surrogate: str,
    importance_sampling_level: str,
    delta: float | None,
    top_entropy_quantile: float,
    sapo_temperatures: tuple[float, float],
) -> None:
    check_choice("surrogate", surrogate, SURROGATES)
    check_choice("importance_sampling_level", importance_sampling_level, IMPORTANCE_SAMPLING_LEVELS)
    if delta is not None and surrogate != "clip":
        raise DmpoError(f"delta (two-sided clipping) applies to clipped surrogates, not {surrogate!r}")
    if not 0.0 <= top_entropy_quantile <= 1.0:
        raise DmpoError(f"top_entropy_quantile must be in [0, 1], got {top_entropy_quantile}")
    if surrogate == "sapo" and min(sapo_temperatures) <= 0:
        raise DmpoError(f"sapo temperatures must be positive, got {sapo_temperatures}")


# ---- the surrogate -------------------------------------------------------------------------
def policy_loss(
    batch: GroupBatch,
    *,
    aggregation: str,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    max_completion_length: int | None = None,
    dynamic_sampling: bool = False,
    mask_truncated: bool = False,
    surrogate: str = "clip",
    importance_sampling_level: str = "token",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    vespo_k_pos: float = 2.0,
    vespo_lambda_pos: float = 3.0,
    vespo_k_neg: float = 3.0,
    vespo_lambda_neg: float = 2.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The surrogate of every group objective (module docstring): (scalar loss, detached metrics)."""
    _check_options(
        surrogate,
        importance_sampling_level,
        delta,
        top_entropy_quantile,
        (sapo_temperature_pos, sapo_temperature_neg),
    )
    dtype = compute_dtype(batch.logps.dtype)
    mask = batch.mask.to(dtype)
    logps = torch.where(mask.bool(), batch.logps.to(dtype), 0.0)
    old_logps = logps.detach() if batch.old_logps is None else batch.old_logps.to(dtype)
    if batch.advantages is not None:
        advantages = batch.advantages.to(dtype)
    else:
        advantages = group_advantages(
            batch.rewards.to(dtype), batch.group_ids, scale_rewards=scale_rewards, eps=adv_eps
        )

    if mask_truncated:
        if batch.truncated is None:
            raise DmpoError(
                "mask_truncated=True needs batch.truncated (which completions hit the length limit)"
            )
        mask = mask * (~batch.truncated.bool()).to(dtype).unsqueeze(-1)
    if dynamic_sampling:
        informative = ~zero_signal_groups(batch.rewards.to(dtype), batch.group_ids)
        mask = mask * informative.to(dtype).unsqueeze(-1)

    log_ratio = torch.where(mask.bool(), logps - old_logps, 0.0)
    log_weight = log_ratio
    if importance_sampling_level == "sequence":
        log_weight = masked_mean(log_ratio, mask).unsqueeze(-1)
    ratio = torch.exp(log_weight)  # [N, T], or [N, 1] at sequence level
    adv = advantages.unsqueeze(-1)

    metrics: dict[str, torch.Tensor] = {}
    if surrogate == "clip":
        clipped = ratio.clamp(1 - epsilon_low, 1 + epsilon_high)
        if delta is not None:
            ratio = ratio.clamp(max=delta)
        token_loss = -torch.minimum(ratio * adv, clipped * adv)
    elif surrogate == "cispo":
        token_loss = -ratio.clamp(max=epsilon_high).detach() * adv * logps
    elif surrogate == "sapo":
        temperature = _by_sign(adv > 0, sapo_temperature_pos, sapo_temperature_neg, dtype)
        token_loss = -torch.sigmoid(temperature * (ratio - 1)) * 4 / temperature * adv
    else:  # vespo
        phi = vespo_weights(
            log_ratio,
            mask,
            advantages,
            k_pos=vespo_k_pos,
            lambda_pos=vespo_lambda_pos,
            k_neg=vespo_k_neg,
            lambda_neg=vespo_lambda_neg,
        )
        token_loss = -phi * adv * logps
        metrics["vespo/phi_seq_mean"] = phi.mean()

    if off_policy_mask_threshold is not None:
        sampling = batch.sampling_logps if batch.sampling_logps is not None else old_logps
        token_loss = token_loss * off_policy_keep(
            logps, sampling.to(dtype), mask, advantages, off_policy_mask_threshold
        )
    entropy_mask = None
    if top_entropy_quantile < 1.0 or entropy_coef != 0.0:
        if batch.entropies is None:
            raise DmpoError(
                "top_entropy_quantile < 1 and entropy_coef need batch.entropies (entropy per token)"
            )
        entropies = batch.entropies.to(dtype)
    if top_entropy_quantile < 1.0:
        if entropy_threshold is None:
            entropy_threshold = entropy_quantile_threshold(entropies, mask, top_entropy_quantile)
        entropy_mask = high_entropy_mask(entropies, mask, entropy_threshold).to(dtype)
        token_loss = token_loss * entropy_mask

    if beta_kl != 0.0:
        if batch.ref_logps is None:
            raise DmpoError(f"beta_kl={beta_kl} needs batch.ref_logps (reference-model log-probs)")
        ref_minus_lp = torch.where(mask.bool(), batch.ref_logps.to(dtype) - logps, 0.0)
        kl = torch.exp(ref_minus_lp) - ref_minus_lp - 1
        if kl_bias_correction:
            kl = kl * torch.exp(log_weight)
        token_loss = token_loss + beta_kl * kl
        metrics["kl"] = token_mean(kl.detach(), mask)

    loss = aggregate_token_loss(
        token_loss,
        mask,
        aggregation,
        max_completion_length=max_completion_length,
        num_items_in_batch=batch.num_items_in_batch,
    )
    if entropy_coef != 0.0:
        acting = mask if entropy_mask is None else mask * entropy_mask
        metrics["policy_loss"] = loss.detach()
        loss = loss - entropy_coef * token_mean(entropies, acting)

    with torch.no_grad():
        if surrogate == "clip":
            # Clipped low needs A < 0 and clipped high A > 0: disjoint, so region = low + high.
            low = clip_fraction(ratio < 1 - epsilon_low, mask, advantages < 0)
            high = clip_fraction(ratio > 1 + epsilon_high, mask, advantages > 0)
            metrics["clip_ratio/low_mean"] = low
            metrics["clip_ratio/high_mean"] = high
            metrics["clip_ratio/region_mean"] = low + high
        elif surrogate == "cispo":
            metrics["cispo_clip_ratio"] = clip_fraction(ratio > epsilon_high, mask, advantages > 0)
        metrics["advantage_abs_mean"] = advantages.abs().mean()
    return loss, metrics


# ---- the objectives ------------------------------------------------------------------------
_OPTIONS_DOC = """
    Options (module docstring): importance_sampling_level, top_entropy_quantile (with
    entropy_threshold), entropy_coef, off_policy_mask_threshold; delta for clipped surrogates."""


def _documented(fn):
    fn.__doc__ = (fn.__doc__ or "") + _OPTIONS_DOC
    return fn


@register(
    "grpo",
    "group",
    paper="arXiv 2402.03300 (DeepSeekMath)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='grpo'",
    summary="Clipped surrogate, mean over each completion's tokens, then over completions.",
)
@_documented
def grpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """GRPO: L = mean_i [ (1/|y_i|) Σ_t ℓ_{i,t} ]; an empty completion contributes 0."""
    return to_output(*policy_loss(batch, aggregation="grpo", **_given(locals())))


@register(
    "bnpo",
    "group",
    paper="— (TRL loss_type='bnpo')",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='bnpo'",
    summary="Clipped surrogate, summed over tokens / tokens in this (micro-)batch.",
)
@_documented
def bnpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """BNPO (TRL): L = Σ_{i,t} ℓ_{i,t} / Σ_i |y_i| over this batch."""
    return to_output(*policy_loss(batch, aggregation="bnpo", **_given(locals())))


@register(
    "dapo",
    "group",
    paper="arXiv 2503.14476 (DAPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='dapo'",
    summary="Clip-higher (0.2/0.28), Σ ℓ_t / tokens of the whole optimisation batch.",
)
@_documented
def dapo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.28,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    dynamic_sampling: bool = False,
    mask_truncated: bool = False,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """DAPO: L = Σ_{i,t} ℓ_{i,t} / num_items_in_batch (tokens of this batch when not given).

    ``dynamic_sampling`` drops groups whose rewards are all equal: their tokens leave the sum
    and, when ``batch.num_items_in_batch`` is None, the token count. (Refilling the batch with
    new groups, as the paper does, is the sampler's job.) ``mask_truncated`` drops completions
    flagged in ``batch.truncated`` (overlong filtering). Both off by default, as in TRL.
    """
    return to_output(*policy_loss(batch, aggregation="dapo", **_given(locals())))


@register(
    "dr_grpo",
    "group",
    paper="arXiv 2503.20783 (Dr. GRPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='dr_grpo'",
    summary="Unscaled advantages, Σ ℓ_t / (completions × max completion length).",
)
@_documented
def dr_grpo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "none",
    adv_eps: float = 1e-4,
    max_completion_length: int | None = None,
    importance_sampling_level: str = "token",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """Dr. GRPO: L = Σ_{i,t} ℓ_{i,t} / (N · L_max), L_max = max_completion_length (None: batch T)."""
    return to_output(*policy_loss(batch, aggregation="dr_grpo", **_given(locals())))


@register(
    "gspo",
    "group",
    paper="arXiv 2507.18071 (GSPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='grpo', importance_sampling_level='sequence'",
    summary="Sequence-level ratio exp(mean_t(lp_t − old_t)), clipped at 3e-4/4e-4.",
)
@_documented
def gspo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "sequence",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """GSPO: L = mean_i −min(s_i·A_i, clip(s_i, 1−ε_low, 1+ε_high)·A_i), s_i = exp(mean_t(lp_t − old_t)).

    An empty completion contributes 0; the k3 term, when used, is per token as in grpo (its
    bias correction by s_i). ``importance_sampling_level="token"`` makes it grpo with GSPO's
    clip range.
    """
    return to_output(*policy_loss(batch, aggregation="grpo", **_given(locals())))


@register(
    "luspo",
    "group",
    paper="arXiv 2602.05261 (LUSPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='luspo'",
    summary="GSPO with each completion's loss scaled by its length: Σ_t ℓ_t, mean over completions.",
)
@_documented
def luspo(
    batch: GroupBatch,
    *,
    epsilon_low: float = 3e-4,
    epsilon_high: float = 4e-4,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "sequence",
    delta: float | None = None,
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """LUSPO: L = mean_i Σ_t ℓ_{i,t} with GSPO's sequence ratio: the GSPO loss of a completion
    times its length |y_i|. Defaults: sequence level and GSPO's clip range 3e-4/4e-4 (LUSPO
    modifies GSPO); TRL's own defaults are token level and ε = 0.2."""
    return to_output(*policy_loss(batch, aggregation="luspo", **_given(locals())))


@register(
    "cispo",
    "group",
    paper="arXiv 2506.13585 (MiniMax-M1); ε_max from arXiv 2510.13786 (ScaleRL)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='cispo'",
    summary="REINFORCE with clipped, detached IS weights: −sg[min(ρ, ε_max)]·A·lp, Σ / batch tokens.",
)
@_documented
def cispo(
    batch: GroupBatch,
    *,
    epsilon_high: float = 5.0,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "token",
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """CISPO: L = Σ_{i,t} −sg[min(ρ_t, ε_high)]·A_i·lp_t / num_items_in_batch (as dapo).

    Every token keeps its gradient A·w·∇lp (none is clipped away); ``epsilon_high`` is the
    upper bound ε_max of the weight itself, not of 1 + ε. Default 5.0, ScaleRL's
    recommendation (TRL's default is ``epsilon``, 0.2).
    """
    return to_output(
        *policy_loss(batch, aggregation="dapo", surrogate="cispo", **_given(locals()))
    )


@register(
    "sapo",
    "group",
    paper="arXiv 2511.20347 (SAPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='sapo'",
    summary="Soft gate σ(τ(ρ−1))·4/τ in place of the hard clip, averaged as grpo.",
)
@_documented
def sapo(
    batch: GroupBatch,
    *,
    sapo_temperature_pos: float = 1.0,
    sapo_temperature_neg: float = 1.05,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "token",
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """SAPO: ℓ_t = −σ(τ·(ρ_t − 1))·(4/τ)·A_i, τ = τ_pos for A_i > 0 else τ_neg; averaged as grpo.

    At ρ = 1 the gate's slope is 1, so on-policy the gradient is GRPO's; away from 1 it decays
    smoothly instead of dropping to zero.
    """
    return to_output(
        *policy_loss(batch, aggregation="grpo", surrogate="sapo", **_given(locals()))
    )


@register(
    "vespo",
    "group",
    paper="arXiv 2602.10693 (VESPO)",
    oracle="TRL GRPOTrainer._compute_loss, loss_type='vespo'",
    summary="Gamma-shaped weight of the sequence IS ratio: −sg[φ(w)]·A·lp, Σ / batch tokens.",
)
@_documented
def vespo(
    batch: GroupBatch,
    *,
    vespo_k_pos: float = 2.0,
    vespo_lambda_pos: float = 3.0,
    vespo_k_neg: float = 3.0,
    vespo_lambda_neg: float = 2.0,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    importance_sampling_level: str = "token",
    top_entropy_quantile: float = 1.0,
    entropy_threshold: float | torch.Tensor | None = None,
    entropy_coef: float = 0.0,
    off_policy_mask_threshold: float | None = None,
) -> ObjectiveOutput:
    """VESPO: L = Σ_{i,t} −sg[φ(w_i)]·A_i·lp_t / num_items_in_batch (as dapo).

    w_i = exp(Σ_t (lp_t − old_t)) (per-token log-ratios clamped to ±20, ln w to [ln 1e-8, 20]),
    φ(w) = exp(λ + k·ln w − λ·w), so φ(1) = 1; (k, λ) = (vespo_k_pos, vespo_lambda_pos) for
    A ≥ 0, else (vespo_k_neg, vespo_lambda_neg). φ has its own sequence-level weight:
    ``importance_sampling_level`` changes only the KL term's bias correction, as in TRL.
    """
    return to_output(
        *policy_loss(batch, aggregation="dapo", surrogate="vespo", **_given(locals()))
    )


def _given(params: dict) -> dict:
    """An objective's keyword parameters (its ``locals()``) as keywords of ``policy_loss``."""
    return {k: v for k, v in params.items() if k != "batch"}


BASES = {
    "grpo": grpo,
    "bnpo": bnpo,
    "dapo": dapo,
    "dr_grpo": dr_grpo,
    "gspo": gspo,
    "luspo": luspo,
    "cispo": cispo,
    "sapo": sapo,
    "vespo": vespo,
}



def _dapo_whole_groups(params: dict) -> str | None:
    if params.get("dynamic_sampling"):
        return ("dynamic_sampling drops the groups whose rewards are all equal, which part of a "
                "group cannot tell")
    return None


# Part of a group is enough (registry docstring): given batch.advantages every term is per
# completion, and the normalisers count the batch's tokens or completions, not a group's.
for _base in BASES.values():
    _base.whole_groups = None
dapo.whole_groups = _dapo_whole_groups

# TRL's loss_type of each base (gspo is TRL's grpo at importance_sampling_level='sequence').
TRL_LOSS_TYPES = {name: "grpo" if name == "gspo" else name for name in BASES}
