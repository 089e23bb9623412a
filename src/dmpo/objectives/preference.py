"""Pair (preference) objectives: DPO and its relatives, on chosen (w) / rejected (l) pairs.

Notation: ``lp(y) = Σ_t lp_t`` (summed policy
log-probs), ``avg(y) = lp(y)/|y|``, ``Δ = lp(y) − ref(y)`` and ``h = β·(Δ_w − Δ_l)``. Every loss
is the mean over pairs. Metrics follow TRL's ``DPOTrainer``: ``rewards/chosen`` and
``rewards/rejected`` are the implicit rewards ``β·Δ`` (SimPO, ASFT: ``β·avg`` / ``avg``),
``rewards/accuracies`` the share of pairs whose chosen reward is larger, ``rewards/margins`` the
mean reward difference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from dmpo.errors import DmpoError
from dmpo.objectives.batch import PairBatch
from dmpo.objectives.common import masked_sum, mean_or_zero, num_tokens, require, sequence_logps
from dmpo.objectives.registry import ObjectiveOutput, register


def _logratios(
    batch: PairBatch,
    *,
    average: bool = False,
    chosen_mask: torch.Tensor | None = None,
    rejected_mask: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Δ_w, Δ_l: summed (or token-averaged) log-ratios policy/reference, per pair [N]."""
    chosen_mask = batch.chosen_mask if chosen_mask is None else chosen_mask
    rejected_mask = batch.rejected_mask if rejected_mask is None else rejected_mask
    chosen = sequence_logps(batch.chosen_logps, chosen_mask, average=average) - sequence_logps(
        batch.ref_chosen_logps, chosen_mask, average=average
    )
    rejected = sequence_logps(
        batch.rejected_logps, rejected_mask, average=average
    ) - sequence_logps(batch.ref_rejected_logps, rejected_mask, average=average)
    return chosen, rejected


def _reward_metrics(
    chosen_rewards: torch.Tensor, rejected_rewards: torch.Tensor
) -> dict[str, float]:
    chosen = chosen_rewards.detach().float()
    rejected = rejected_rewards.detach().float()
    return {
        "rewards/chosen": mean_or_zero(chosen).item(),
        "rewards/rejected": mean_or_zero(rejected).item(),
        "rewards/accuracies": mean_or_zero((chosen > rejected).float()).item(),
        "rewards/margins": mean_or_zero(chosen - rejected).item(),
    }


def _sigmoid_loss(h: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """−(1−ε)·log σ(h) − ε·log σ(−h), per pair."""
    if not 0.0 <= label_smoothing < 1.0:
        raise DmpoError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
    return -(1 - label_smoothing) * F.logsigmoid(h) - label_smoothing * F.logsigmoid(-h)


@register(
    "dpo",
    "pair",
    paper="Direct Preference Optimization (arXiv 2305.18290); label smoothing as cDPO",
    oracle="TRL DPOTrainer loss_type='sigmoid'",
    summary="−(1−ε)·log σ(h) − ε·log σ(−h), h = β·(Δ_w − Δ_l)",
)
def dpo(batch: PairBatch, *, beta: float = 0.1, label_smoothing: float = 0.0) -> ObjectiveOutput:
    """DPO: ``L = −(1−ε)·log σ(h) − ε·log σ(−h)``, ``h = β·[(lp(y_w) − ref(y_w)) − (lp(y_l) − ref(y_l))]``.

    ``label_smoothing`` ε is the probability that a label is flipped (conservative DPO).
    """
    require(batch, "dpo", "ref_chosen_logps", "ref_rejected_logps")
    chosen_logratio, rejected_logratio = _logratios(batch)
    h = beta * (chosen_logratio - rejected_logratio)
    loss = mean_or_zero(_sigmoid_loss(h, label_smoothing))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


@register(
    "ipo",
    "pair",
    paper="IPO, A General Theoretical Paradigm to Understand Learning from Human Preferences (arXiv 2310.12036)",
    oracle="TRL DPOTrainer loss_type='ipo'",
    summary="(avgΔ_w − avgΔ_l − 1/(2β))², log-ratios averaged over tokens",
)
def ipo(batch: PairBatch, *, beta: float = 0.1) -> ObjectiveOutput:
    """IPO: ``L = (Δ̄_w − Δ̄_l − 1/(2β))²`` with ``Δ̄ = Δ/|y|`` (log-ratios averaged over tokens).

    β is the regulariser τ of the paper; the token average follows TRL (confirmed there with
    the IPO authors). Reported rewards are TRL's summed ``β·Δ``.
    """
    require(batch, "ipo", "ref_chosen_logps", "ref_rejected_logps")
    chosen_avg, rejected_avg = _logratios(batch, average=True)
    loss = mean_or_zero((chosen_avg - rejected_avg - 1 / (2 * beta)) ** 2)
    chosen_logratio, rejected_logratio = _logratios(batch)
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


@register(
    "hinge",
    "pair",
    paper="SLiC-HF (arXiv 2305.10425)",
    oracle="TRL DPOTrainer loss_type='hinge'",
    summary="relu(1 − h)",
)
def hinge(batch: PairBatch, *, beta: float = 0.1) -> ObjectiveOutput:
    """Hinge (SLiC): ``L = max(0, 1 − h)``, ``h = β·(Δ_w − Δ_l)``."""
    require(batch, "hinge", "ref_chosen_logps", "ref_rejected_logps")
    chosen_logratio, rejected_logratio = _logratios(batch)
    h = beta * (chosen_logratio - rejected_logratio)
    loss = mean_or_zero(torch.relu(1 - h))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


@register(
    "simpo",
    "pair",
    paper="SimPO: Simple Preference Optimization with a Reference-Free Reward (arXiv 2405.14734)",
    oracle="TRL experimental CPOTrainer loss_type='simpo', cpo_alpha=0, simpo_gamma=γ",
    summary="−log σ(β·(avg(y_w) − avg(y_l)) − γ), no reference",
)
def simpo(
    batch: PairBatch, *, beta: float = 2.0, gamma_beta_ratio: float = 0.25
) -> ObjectiveOutput:
    """SimPO: ``L = −log σ(β·(avg(y_w) − avg(y_l)) − γ)``, ``γ = gamma_beta_ratio·β``; no reference."""
    gamma = gamma_beta_ratio * beta
    chosen_avg = sequence_logps(batch.chosen_logps, batch.chosen_mask, average=True)
    rejected_avg = sequence_logps(batch.rejected_logps, batch.rejected_mask, average=True)
    loss = mean_or_zero(-F.logsigmoid(beta * (chosen_avg - rejected_avg) - gamma))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_avg, beta * rejected_avg))


RPO_NLL_FORMS = ("token_mean", "sum_beta")


@register(
    "rpo",
    "pair",
    paper="RPO, Provably Mitigating Overoptimization in RLHF: Your SFT Loss is Implicitly an "
    "Adversarial Regularizer (arXiv 2405.16436)",
    oracle="TRL DPOTrainer loss_type=['sigmoid', 'sft'], loss_weights=[1, η] (nll_form='token_mean')",
    summary="dpo + η·NLL(y_w)",
)
def rpo(
    batch: PairBatch, *, beta: float = 0.1, eta: float = 1.0, nll_form: str = "token_mean"
) -> ObjectiveOutput:
    """RPO: ``L = dpo + η·NLL(y_w)``.

    ``nll_form``:
    - ``token_mean`` (TRL): ``NLL = −Σ_{pairs,t} lp_t(y_w) / Σ_{pairs} |y_w|``, the mean over
      every chosen token of the batch;
    - ``sum_beta`` (paper): ``NLL = −β·mean_pairs lp(y_w)``, summed log-probs scaled by β.
    """
    if nll_form not in RPO_NLL_FORMS:
        raise DmpoError(f"nll_form must be one of {list(RPO_NLL_FORMS)}, got {nll_form!r}")
    out = dpo(batch, beta=beta)
    if nll_form == "token_mean":
        tokens = batch.chosen_mask.sum().clamp(min=1)
        nll = -masked_sum(batch.chosen_logps, batch.chosen_mask).sum() / tokens
    else:
        nll = -beta * mean_or_zero(sequence_logps(batch.chosen_logps, batch.chosen_mask))
    out.metrics["nll_loss"] = nll.detach().float().item()
    return ObjectiveOutput(out.loss + eta * nll, out.metrics)


def _length_desensitized_weights(
    chosen_mask: torch.Tensor, rejected_mask: torch.Tensor, alpha: float, dtype: torch.dtype
) -> tuple[torch.Tensor, torch.Tensor]:
    """Token weights: 1 up to the shorter completion's length, α past it, 0 on padding."""
    shared = torch.minimum(num_tokens(chosen_mask), num_tokens(rejected_mask)).unsqueeze(-1)

    def weights(mask: torch.Tensor) -> torch.Tensor:
        position = mask.cumsum(dim=-1)  # 1-based index among the real tokens
        return mask.to(dtype) * torch.where(position <= shared, 1.0, alpha).to(dtype)

    return weights(chosen_mask), weights(rejected_mask)


@register(
    "ld_dpo",
    "pair",
    paper="LD-DPO, Length Desensitization in Direct Preference Optimization (arXiv 2409.06411)",
    oracle="TRL DPOTrainer loss_type='sigmoid', ld_alpha=α",
    summary="dpo with tokens past min(|y_w|, |y_l|) weighted by α in every log-prob sum",
)
def ld_dpo(batch: PairBatch, *, beta: float = 0.1, alpha: float = 0.5) -> ObjectiveOutput:
    """LD-DPO: DPO where every log-prob sum (policy and reference) is
    ``Σ_{t ≤ m} lp_t + α·Σ_{t > m} lp_t``, ``m = min(|y_w|, |y_l|)`` counted in real tokens.

    α = 1 is DPO; α = 0 drops the longer completion's tail.
    """
    require(batch, "ld_dpo", "ref_chosen_logps", "ref_rejected_logps")
    chosen_weights, rejected_weights = _length_desensitized_weights(
        batch.chosen_mask, batch.rejected_mask, alpha, batch.chosen_logps.dtype
    )
    chosen_logratio, rejected_logratio = _logratios(
        batch, chosen_mask=chosen_weights, rejected_mask=rejected_weights
    )
    h = beta * (chosen_logratio - rejected_logratio)
    loss = mean_or_zero(-F.logsigmoid(h))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


# avg(y_l) is clamped below 0 so that log(1 − π(y_l)) stays finite for a rejected completion of
# probability one (or without tokens, whose average log-prob is 0).
ASFT_MAX_AVG_LOGP = -1e-6


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, accurate on both sides of −log 2.

    Each branch sees a safe stand-in (−1) where it is not used, so that its gradient, masked by
    ``where``, is never 0·∞ (with bf16, exp(x) rounds to 1 already for x ≈ −1e-3).
    """
    near_zero = x > -math.log(2)
    near = torch.log(-torch.expm1(torch.where(near_zero, x, -1.0)))
    far = torch.log1p(-torch.exp(torch.where(near_zero, -1.0, x)))
    return torch.where(near_zero, near, far)


@register(
    "asft",
    "pair",
    paper="ASFT: Aligned Supervised Fine-Tuning through Absolute Likelihood (arXiv 2409.10571)",
    oracle="identity with the odds form −log π_w − λ·(log σ(odds_w) + log σ(−odds_l))",
    summary="−(1+λ)·log π(y_w) − λ·log(1 − π(y_l)), π = exp(avg), no reference",
)
def asft(batch: PairBatch, *, lam: float = 1.0) -> ObjectiveOutput:
    """ASFT: ``L = −(1+λ)·log π(y_w) − λ·log(1 − π(y_l))`` with ``π(y) = exp(avg(y))``.

    Equal to SFT on y_w plus λ times the odds-ratio term ``−log σ(o_w) − log σ(−o_l)``,
    ``o = log(π/(1−π))``. No reference. ``avg(y_l)`` is clamped at −1e-6 (see
    ``ASFT_MAX_AVG_LOGP``). Rewards in the metrics are the average log-probs.
    """
    chosen_avg = sequence_logps(batch.chosen_logps, batch.chosen_mask, average=True)
    rejected_avg = sequence_logps(batch.rejected_logps, batch.rejected_mask, average=True)
    log_one_minus_rejected = _log1mexp(rejected_avg.clamp(max=ASFT_MAX_AVG_LOGP))
    loss = mean_or_zero(-(1 + lam) * chosen_avg - lam * log_one_minus_rejected)
    return ObjectiveOutput(loss, _reward_metrics(chosen_avg, rejected_avg))


def madpo_weight(
    reward_margin: torch.Tensor, *, c_max: float, c_min: float, lam: float, tau: float
) -> torch.Tensor:
    """MADPO instance weight ``w = σ(c(|Δr|)·Δr) / σ(Δr)`` (``w = 1`` where ``Δr ≤ −τ``), with
    ``c(m) = c_min + (c_max − c_min) / (1 + (c_max − 1)/(1 − c_min)·exp(λ(m − τ)))``.

    ``c(τ) = 1``: small margins (hard pairs) are amplified (c → c_max), large ones damped (c → c_min).
    """
    if not c_min < 1.0 <= c_max:
        raise DmpoError(f"MADPO needs c_min < 1 <= c_max, got c_min={c_min}, c_max={c_max}")
    margin = reward_margin.detach()
    ratio = (c_max - 1) / (1 - c_min)
    if ratio == 0:
        scale = torch.ones_like(margin)
    else:
        # 1 / (1 + ratio·exp(x)) = σ(−x − log ratio), which cannot overflow.
        squash = torch.sigmoid(-(lam * (margin.abs() - tau) + math.log(ratio)))
        scale = c_min + (c_max - c_min) * squash
    weight = torch.exp(F.logsigmoid(scale * margin) - F.logsigmoid(margin))
    return torch.where(margin <= -tau, torch.ones_like(weight), weight)


@register(
    "madpo",
    "pair",
    paper="MADPO, Margin Adaptive DPO: Leveraging Reward Model for Granular Control in "
    "Preference Optimization (2025)",
    oracle="TRL DPOTrainer loss_type='sigmoid' when w = 1",
    summary="w(Δr)·dpo, w from the reward-model margin",
)
def madpo(
    batch: PairBatch,
    *,
    beta: float = 0.1,
    c_max: float = 2.0,
    c_min: float = 0.5,
    lam: float = 1.0,
    tau: float = 2.0,
) -> ObjectiveOutput:
    """MADPO: ``L = w·(−log σ(h))`` per pair, ``w = madpo_weight(Δr)`` from ``batch.reward_margin``."""
    require(batch, "madpo", "ref_chosen_logps", "ref_rejected_logps", "reward_margin")
    weight = madpo_weight(batch.reward_margin, c_max=c_max, c_min=c_min, lam=lam, tau=tau)
    chosen_logratio, rejected_logratio = _logratios(batch)
    h = beta * (chosen_logratio - rejected_logratio)
    loss = mean_or_zero(weight * -F.logsigmoid(h))
    metrics = _reward_metrics(beta * chosen_logratio, beta * rejected_logratio)
    metrics["madpo/weight"] = mean_or_zero(weight.float()).item()
    return ObjectiveOutput(loss, metrics)


@register(
    "tgdpo",
    "pair",
    paper="TGDPO: Harnessing Token-Level Reward Guidance for Enhancing Direct Preference "
    "Optimization (arXiv 2506.14574)",
    oracle="TRL DPOTrainer loss_type='sigmoid' when α = 0",
    summary="−log σ(Σ_t β(1+αβĝ_t)δ_t(y_w) − Σ_t β(1−αβĝ_t)δ_t(y_l))",
)
def tgdpo(batch: PairBatch, *, beta: float = 0.1, alpha: float = 0.5) -> ObjectiveOutput:
    """TGDPO: ``L = −log σ(Σ_t β(1+αβ·ĝ_t(y_w))·δ_t(y_w) − Σ_t β(1−αβ·ĝ_t(y_l))·δ_t(y_l))``,
    ``δ_t = lp_t − ref_t``, ``ĝ_t = guide_t − ref_t`` the guidance model's token log-ratio (no gradient).
    """
    require(
        batch,
        "tgdpo",
        "ref_chosen_logps",
        "ref_rejected_logps",
        "guide_chosen_logps",
        "guide_rejected_logps",
    )
    guide_chosen = (batch.guide_chosen_logps - batch.ref_chosen_logps).detach()
    guide_rejected = (batch.guide_rejected_logps - batch.ref_rejected_logps).detach()
    delta_chosen = batch.chosen_logps - batch.ref_chosen_logps
    delta_rejected = batch.rejected_logps - batch.ref_rejected_logps
    chosen_reward = masked_sum(
        beta * (1 + alpha * beta * guide_chosen) * delta_chosen, batch.chosen_mask
    )
    rejected_reward = masked_sum(
        beta * (1 - alpha * beta * guide_rejected) * delta_rejected, batch.rejected_mask
    )
    loss = mean_or_zero(-F.logsigmoid(chosen_reward - rejected_reward))
    return ObjectiveOutput(loss, _reward_metrics(chosen_reward, rejected_reward))


@register(
    "focal_dpo",
    "pair",
    paper="φ-DPO: Fairness Direct Preference Optimization Approach to Continual Learning in "
    "Large Multimodal Models (2026)",
    oracle="TRL DPOTrainer loss_type='sigmoid' when γ = 0",
    summary="−(1 − σ(h))^γ·log σ(h)",
)
def focal_dpo(batch: PairBatch, *, beta: float = 0.1, gamma: float = 2.0) -> ObjectiveOutput:
    """Focal DPO (φ-DPO): ``L = −(1 − σ(h))^γ·log σ(h)``; the factor keeps its gradient.

    ``(1 − σ(h))^γ`` is computed as ``exp(γ·log σ(−h))``, finite for any h.
    """
    require(batch, "focal_dpo", "ref_chosen_logps", "ref_rejected_logps")
    chosen_logratio, rejected_logratio = _logratios(batch)
    h = beta * (chosen_logratio - rejected_logratio)
    focus = torch.exp(gamma * F.logsigmoid(-h))
    loss = mean_or_zero(-focus * F.logsigmoid(h))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


@register(
    "weighted_dpo",
    "pair",
    paper="DA-DPO: Cost-efficient Difficulty-aware Preference Optimization for Reducing MLLM "
    "Hallucinations (2026)",
    oracle="TRL DPOTrainer loss_type='sigmoid' when w = 1",
    summary="w·(−log σ(h)), w a per-pair (difficulty) weight",
)
def weighted_dpo(batch: PairBatch, *, beta: float = 0.1) -> ObjectiveOutput:
    """Weighted DPO (DA-DPO): ``L = mean_pairs w·(−log σ(h))`` with ``w = batch.weight`` (no gradient)."""
    require(batch, "weighted_dpo", "ref_chosen_logps", "ref_rejected_logps", "weight")
    chosen_logratio, rejected_logratio = _logratios(batch)
    h = beta * (chosen_logratio - rejected_logratio)
    loss = mean_or_zero(batch.weight.detach() * -F.logsigmoid(h))
    return ObjectiveOutput(loss, _reward_metrics(beta * chosen_logratio, beta * rejected_logratio))


@register(
    "flex_dpo",
    "pair",
    paper="3D-Properties: Identifying Challenges in DPO and Charting a Path Forward (arXiv 2406.07327)",
    oracle="TRL DPOTrainer loss_type='sigmoid' when β_w = β_l",
    summary="−log σ(β_w·Δ_w − β_l·Δ_l)",
)
def flex_dpo(
    batch: PairBatch,
    *,
    beta: float = 0.1,
    beta_chosen: float | None = None,
    beta_rejected: float | None = None,
) -> ObjectiveOutput:
    """DPO with separate β for chosen and rejected: ``L = −log σ(β_w·Δ_w − β_l·Δ_l)``.

    ``beta_chosen`` / ``beta_rejected`` default to ``beta``.
    """
    require(batch, "flex_dpo", "ref_chosen_logps", "ref_rejected_logps")
    beta_w = beta if beta_chosen is None else beta_chosen
    beta_l = beta if beta_rejected is None else beta_rejected
    chosen_logratio, rejected_logratio = _logratios(batch)
    loss = mean_or_zero(-F.logsigmoid(beta_w * chosen_logratio - beta_l * rejected_logratio))
    return ObjectiveOutput(
        loss, _reward_metrics(beta_w * chosen_logratio, beta_l * rejected_logratio)
    )
