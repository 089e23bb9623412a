"""The distribution-matching (DM) term of DMPO, in one place (arXiv 2605.19461).

For each group g of completions of one prompt:

    p_i = softmax_i(z_i / α)        target, no gradient; z = reward (paper) or the advantage
    q_i = softmax_i(φ_i / τ)        the policy's distribution over its own group (τ = 1, paper)
    φ_i = avg(y_i) = lp(y_i)/|y_i|  (or lp(y_i) with length_normalize=False)

    L_DM per group:  mse  (1/G_g) Σ_i (p_i − q_i)²     (paper)
                     ce   −Σ_i p_i log q_i              (forward KL; ∂/∂φ_k = q_k − p_k)
                     js   JS(p‖q), probabilities clamped at 1e-10
    averaged over groups (normalize="group", paper) or weighted by group size
    (normalize="sample": Σ over completions / completions, the verl recipe's form).
    Which groups count: all (paper), those with a reward spread (skip_zero_signal_groups, the
    verl recipe) or only those without one (zero_signal_only: where the base term is silent).

L_DM depends on the tokens only through φ, so everything an engine needs is a function of the
[N] vector φ: the value, the diagnostics, and the coefficients ``c_k = ∂L_DM/∂φ_k``. The token
gradient is then ``Σ_k c_k·∂φ_k/∂lp_t``. :func:`dm_term` computes all three; the ``dmpo``
objective, the coefficient form (``dm_coefficients``, for engines that split groups) and the
engine adapters all call it, so there is one implementation of the maths.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch

from dmpo.errors import DmpoError
from dmpo.objectives.common import (
    ZERO_SIGNAL_TOL,
    check_choice,
    compute_dtype,
    group_advantages,
    group_index,
    group_log_softmax,
    group_max,
    group_min,
    group_size,
    group_sum,
    sequence_logps,
)

TARGETS = ("reward", "advantage")
DIVERGENCES = ("mse", "ce", "js")
NORMALIZATIONS = ("group", "sample")
JS_CLAMP = 1e-10
# The diagnostics :func:`dm_term` returns (functions of φ and z over whole groups: means over
# groups of max p, max q, the entropies of q and p, the within-group std of φ; the share of
# groups whose z spans ≤ 1e-5). An engine that computes the DM term where groups are whole
# (coefficient form) logs these there.
DM_TERM_DIAGNOSTICS = ("dm_loss", "max_p", "max_q", "entropy_q", "entropy_p", "phi_std", "zero_signal_frac")
# The diagnostics the ``dmpo`` objective adds per batch: the size of the DM term's part of the
# update against the base term's, both as gradients with respect to the sequence scores φ
# (:func:`gradient_diagnostics`), and the λ applied.
DM_GRADIENT_DIAGNOSTICS = ("dm_grad_norm", "base_grad_norm", "dm_grad_ratio", "dm_grad_share",
                           "dm_base_cos", "dm_lambda")
# Every DM diagnostic, logged by the engines every step.
DM_DIAGNOSTICS = DM_TERM_DIAGNOSTICS + DM_GRADIENT_DIAGNOSTICS
# dm_grad_ratio is capped here: with a silent base (every group zero-signal) it is unbounded.
RATIO_CAP = 1e3


@dataclass
class DMTerm:
    """L_DM at a (detached) φ: the value, diagnostics (means over all groups) and c = ∂L_DM/∂φ."""

    loss: torch.Tensor
    diagnostics: dict[str, torch.Tensor]
    coefficients: torch.Tensor


def dm_target(
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    advantages: torch.Tensor | None = None,
    target_from: str = "reward",
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """z: the raw reward, or the advantage (the batch's own, else z-scored within the group)."""
    check_choice("target_from", target_from, TARGETS)
    if target_from == "reward":
        return rewards.detach().to(dtype)
    if advantages is not None:
        return advantages.detach().to(dtype)
    return group_advantages(rewards.to(dtype), group_ids, scale_rewards=scale_rewards, eps=adv_eps)


def dm_term(
    phi: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    advantages: torch.Tensor | None = None,
    alpha: float = 1 / 15,
    target_from: str = "reward",
    divergence: str = "mse",
    skip_zero_signal_groups: bool = False,
    zero_signal_only: bool = False,
    q_temperature: float = 1.0,
    normalize: str = "group",
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> DMTerm:
    """L_DM, its diagnostics and ``c = ∂L_DM/∂φ`` for sequence scores ``phi`` [N] (no grad).

    With ``d_i = ∂D_g/∂q_i`` the softmax chain rule gives
    ``c_k = (w_g/τ)·q_k·(d_k − Σ_j q_j d_j)`` (w_g the group's normalisation weight, τ the
    temperature of q):
        mse  d = (2/G)(q − p)   →  c_k = (w_g/τ)·(2/G)·q_k·[(q_k − p_k) − Σ_j q_j (q_j − p_j)]
        ce   (Σ p = 1)          →  c_k = (w_g/τ)·(q_k − p_k)
        js   d = ½·log(q/m)
    At q uniform (q_k = 1/G) the mse coefficient is (2/G²)·(q_k − p_k): the ce direction scaled
    by 2/G², which is why the paper's mse term is weak where q stays near uniform.
    ``skip_zero_signal_groups`` drops groups whose z spans ≤ 1e-5; ``zero_signal_only`` keeps
    only those (there p is uniform: the term pulls q towards uniform where the policy-gradient
    term has no signal). ``q_temperature`` τ < 1 sharpens q = softmax(φ/τ), so that small
    differences of φ make q depart from uniform. The batch must hold whole groups: q is a
    softmax over the group.
    """
    check_choice("divergence", divergence, DIVERGENCES)
    check_choice("normalize", normalize, NORMALIZATIONS)
    if not alpha > 0:
        raise DmpoError(f"alpha must be positive, got {alpha}")
    if not q_temperature > 0:
        raise DmpoError(f"q_temperature must be positive, got {q_temperature}")
    if skip_zero_signal_groups and zero_signal_only:
        raise DmpoError("skip_zero_signal_groups and zero_signal_only exclude each other: "
                        "the first drops the groups the second keeps")
    dtype = compute_dtype(phi.dtype)
    phi = phi.detach().to(dtype)
    z = dm_target(rewards, group_ids, advantages=advantages, target_from=target_from,
                  scale_rewards=scale_rewards, adv_eps=adv_eps, dtype=dtype)
    index, num_groups = group_index(group_ids)

    log_p = group_log_softmax(z / alpha, index, num_groups)
    p = torch.exp(log_p)
    log_q = group_log_softmax(phi / q_temperature, index, num_groups)
    q = torch.exp(log_q)
    size = group_size(index, num_groups, dtype)

    def through_softmax(d: torch.Tensor) -> torch.Tensor:
        return q * (d - group_sum(q * d, index, num_groups)[index]) / q_temperature

    if divergence == "mse":
        per_group = group_sum((p - q) ** 2, index, num_groups) / size
        grad_phi = through_softmax(2 * (q - p) / size[index])
    elif divergence == "ce":
        per_group = -group_sum(p * log_q, index, num_groups)
        grad_phi = (q - p) / q_temperature
    else:
        log_m = torch.log(((p + q) / 2).clamp(min=JS_CLAMP))
        log_q_clamped = torch.log(q.clamp(min=JS_CLAMP))
        pointwise = p * (torch.log(p.clamp(min=JS_CLAMP)) - log_m) + q * (log_q_clamped - log_m)
        per_group = group_sum(pointwise, index, num_groups) / 2
        grad_phi = through_softmax((log_q_clamped - log_m) / 2)

    spread = group_max(z, index, num_groups) - group_min(z, index, num_groups)
    zero_signal = spread <= ZERO_SIGNAL_TOL
    if skip_zero_signal_groups:
        contributes = ~zero_signal
    elif zero_signal_only:
        contributes = zero_signal
    else:
        contributes = torch.ones_like(zero_signal)
    weight = contributes.to(dtype) * (1.0 if normalize == "group" else size)
    weight = weight / weight.sum().clamp(min=1)
    loss = (weight * per_group).sum()

    phi_mean = group_sum(phi, index, num_groups) / size
    phi_var = group_sum((phi - phi_mean[index]) ** 2, index, num_groups) / size
    values = (
        loss,
        group_max(p, index, num_groups).mean(),
        group_max(q, index, num_groups).mean(),
        -group_sum(q * log_q, index, num_groups).mean(),
        -group_sum(p * log_p, index, num_groups).mean(),
        phi_var.sqrt().mean(),
        zero_signal.to(dtype).mean(),
    )
    return DMTerm(loss, dict(zip(DM_TERM_DIAGNOSTICS, values)), weight[index] * grad_phi)


def gradient_diagnostics(dm_grad: torch.Tensor, base_grad: torch.Tensor, lam: float) -> dict[str, torch.Tensor]:
    """How much of the update the DM term makes, in the space of the sequence scores φ [N].

    ``dm_grad`` = λ·c (the DM term's ∂/∂φ as applied), ``base_grad`` = the base term's gradient
    projected on φ (:func:`~dmpo.objectives.dmpo.base_phi_gradient`; for a length-normalised φ
    the sum of a completion's token gradients). Returns ``dm_grad_norm`` ‖λ·c‖₂,
    ``base_grad_norm`` ‖g_base‖₂, ``dm_grad_ratio`` their ratio (capped at ``RATIO_CAP``; 0 when
    both vanish), ``dm_grad_share`` ‖λ·c‖/(‖λ·c‖ + ‖g_base‖) in [0, 1], ``dm_base_cos`` the
    cosine between the two (1: DM pushes the way the base does; 0 when either vanishes), and
    ``dm_lambda`` the λ applied.
    """
    dm_grad, base_grad = dm_grad.detach(), base_grad.detach().to(dm_grad.dtype)
    dm_norm, base_norm = dm_grad.norm(), base_grad.norm()
    both = dm_norm * base_norm
    zero = torch.zeros((), dtype=dm_grad.dtype, device=dm_grad.device)
    ratio = torch.where(base_norm > 0, dm_norm / base_norm.clamp(min=torch.finfo(dm_grad.dtype).tiny),
                        torch.where(dm_norm > 0, zero + RATIO_CAP, zero)).clamp(max=RATIO_CAP)
    total = dm_norm + base_norm
    share = torch.where(total > 0, dm_norm / total.clamp(min=torch.finfo(dm_grad.dtype).tiny), zero)
    cos = torch.where(both > 0, (dm_grad * base_grad).sum() / both.clamp(min=torch.finfo(dm_grad.dtype).tiny),
                      zero)
    values = (dm_norm, base_norm, ratio, share, cos, zero + lam)
    return dict(zip(DM_GRADIENT_DIAGNOSTICS, values))


# The parameters of the DM term (besides the tensors), e.g. to pick them from an objective's.
DM_TERM_PARAMS: tuple[str, ...] = tuple(
    name for name, p in inspect.signature(dm_term).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY and name != "advantages"
)


def dm_term_params(params: dict[str, Any]) -> dict[str, Any]:
    """The DM term's parameters among an objective's ``params`` (None values left out)."""
    return {name: params[name] for name in DM_TERM_PARAMS if params.get(name) is not None}


def dm_coefficients(
    logps: torch.Tensor,
    mask: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    advantages: torch.Tensor | None = None,
    length_normalize: bool = True,
    **params: Any,
) -> torch.Tensor:
    """c_k = ∂L_DM/∂φ_k at the current (no-grad) φ of per-token ``logps``: [N], detached.

    ``params`` are :func:`dm_term`'s (alpha, target_from, divergence, ...). Call it where whole
    groups are visible (at sampling time, on the whole generation batch) and pass each row's
    c_k to ``dmpo(..., dm_form="coefficient", coefficients=...)``. The normalisation
    (1/groups or 1/completions) is that of the batch given here, so the DM gradients of all
    micro-batches add up to λ·∇L_DM of the whole batch, exactly while the policy has not moved
    since. An engine that scales each micro-batch loss by 1/A (A accumulation steps) should
    pass A·c_k to keep that total.
    """
    unknown = sorted(set(params) - set(DM_TERM_PARAMS))
    if unknown:
        raise DmpoError(f"dm_coefficients has no parameter(s) {unknown}; valid: "
                        f"{sorted({*DM_TERM_PARAMS, 'advantages', 'length_normalize'})}")
    dtype = compute_dtype(logps.dtype)
    with torch.no_grad():
        phi = sequence_logps(logps.to(dtype), mask.to(dtype), average=length_normalize)
        return dm_term(phi, rewards, group_ids, advantages=advantages, **params).coefficients
