"""DMPO: distribution-matching policy optimisation (arXiv 2605.19461, "Beyond Mode Collapse").

GRPO minimises a mode-seeking reverse KL; DMPO adds a mode-covering term that matches the
policy's own distribution over each sampled group to a reward-proportional target:

    p_i = softmax_i(z_i / α)        target, no gradient; z = reward (paper) or z-scored advantage
    φ_i = avg(y_i) = lp(y_i)/|y_i|  (or lp(y_i) with length_normalize=False)
    q_i = softmax_i(φ_i)            the policy's distribution over its group
    L   = L_base + λ·L_DM

    L_DM per group g:  mse  (1/G_g) Σ_i (p_i − q_i)²       (paper)
                       ce   −Σ_i p_i log q_i                 (∂/∂φ_k = q_k − p_k)
                       js   JS(p‖q), probabilities clamped at 1e-10
    averaged over groups (normalize="group", paper) or weighted by group size
    (normalize="sample": Σ over completions / completions, the verl recipe's form).

Gradient. L_DM depends on the tokens only through φ, so its gradient is Σ_k c_k·∂φ_k/∂lp_t
with c_k = ∂L_DM/∂φ_k, computed in closed form on the [N] vector (``_dm_terms``) and added to
the token gradients in the backward pass (``_AddTokenGradient``). This is the exact gradient
of L_DM at the current policy, cheaper than differentiating the [N, T] masked mean.

q is a softmax over the *whole* group, so the batch must hold whole groups. Where an engine
splits groups (TRL shuffles rows across micro-batches, verl across ranks), compute
``dm_coefficients`` once where groups are whole, carry them with the rows, and train with
``dm_form="coefficient"`` (the ``dmpo-coef`` preset), which uses those c_k instead of the
batch's own: the gradient of L_DM while the policy has not moved since they were computed
(one optimiser step per generation).

Numerics: φ, p and q are computed in float32 for half-precision inputs (float64 stays
float64) and the loss is returned in that dtype. An empty completion has φ = 0.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable

import torch

from dmpo.errors import DmpoError
from dmpo.objectives import registry
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    group_advantages,
    group_index,
    group_log_softmax,
    group_max,
    group_min,
    group_size,
    group_softmax,
    group_sum,
    masked_sum,
    num_tokens,
    sequence_logps,
)
from dmpo.objectives.group import BASES, ZERO_SIGNAL_TOL, compute_dtype, to_output
from dmpo.objectives.registry import ObjectiveOutput

TARGETS = ("reward", "advantage")
DIVERGENCES = ("mse", "ce", "js")
NORMALIZATIONS = ("group", "sample")
DM_FORMS = ("group", "coefficient")
JS_CLAMP = 1e-10
_PAPER = "arXiv 2605.19461 (Beyond Mode Collapse, ICML 2026)"
_ORACLE = "closed-form gradients (no peer implementation); λ=0 reduces to the base's TRL oracle"


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise DmpoError(f"{name} must be one of {list(choices)}, got {value!r}")


def _target_source(
    rewards: torch.Tensor,
    advantages: torch.Tensor | None,
    group_ids: torch.Tensor,
    *,
    target_from: str,
    scale_rewards: str,
    adv_eps: float,
    dtype: torch.dtype,
) -> torch.Tensor:
    """z: the raw reward, or the advantage (the batch's own, else z-scored within the group)."""
    _check_choice("target_from", target_from, TARGETS)
    if target_from == "reward":
        return rewards.detach().to(dtype)
    if advantages is not None:
        return advantages.detach().to(dtype)
    return group_advantages(rewards.to(dtype), group_ids, scale_rewards=scale_rewards, eps=adv_eps)


def _dm_terms(
    phi: torch.Tensor,
    z: torch.Tensor,
    index: torch.Tensor,
    num_groups: int,
    *,
    alpha: float,
    divergence: str,
    skip_zero_signal_groups: bool,
    normalize: str,
) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
    """(L_DM, diagnostics, c = ∂L_DM/∂φ) at a detached φ; diagnostics are means over all groups.

    With ``d_i = ∂D_g/∂q_i``, the softmax chain rule gives ``c_k = w_g·q_k·(d_k − Σ_j q_j d_j)``
    (w_g the group's normalisation weight):
        mse  d = (2/G)(q − p)   →  c_k = w_g·(2/G)·q_k·[(q_k − p_k) − Σ_j q_j (q_j − p_j)]
        ce   (Σ p = 1)          →  c_k = w_g·(q_k − p_k)
        js   d = ½·log(q/m)
    """
    _check_choice("divergence", divergence, DIVERGENCES)
    _check_choice("normalize", normalize, NORMALIZATIONS)
    if alpha <= 0:
        raise DmpoError(f"alpha must be positive, got {alpha}")

    p = group_softmax(z / alpha, index, num_groups)
    log_q = group_log_softmax(phi, index, num_groups)
    q = torch.exp(log_q)
    size = group_size(index, num_groups, phi.dtype)

    def through_softmax(d: torch.Tensor) -> torch.Tensor:
        return q * (d - group_sum(q * d, index, num_groups)[index])

    if divergence == "mse":
        per_group = group_sum((p - q) ** 2, index, num_groups) / size
        grad_phi = through_softmax(2 * (q - p) / size[index])
    elif divergence == "ce":
        per_group = -group_sum(p * log_q, index, num_groups)
        grad_phi = q - p
    else:
        log_m = torch.log(((p + q) / 2).clamp(min=JS_CLAMP))
        log_q_clamped = torch.log(q.clamp(min=JS_CLAMP))
        pointwise = p * (torch.log(p.clamp(min=JS_CLAMP)) - log_m) + q * (log_q_clamped - log_m)
        per_group = group_sum(pointwise, index, num_groups) / 2
        grad_phi = through_softmax((log_q_clamped - log_m) / 2)

    spread = group_max(z, index, num_groups) - group_min(z, index, num_groups)
    zero_signal = spread <= ZERO_SIGNAL_TOL
    contributes = (~zero_signal) if skip_zero_signal_groups else torch.ones_like(zero_signal)
    weight = contributes.to(phi.dtype) * (1.0 if normalize == "group" else size)
    weight = weight / weight.sum().clamp(min=1)
    loss = (weight * per_group).sum()

    diagnostics = {
        "dm_loss": loss,
        "max_p": group_max(p, index, num_groups).mean(),
        "max_q": group_max(q, index, num_groups).mean(),
        "entropy_q": -group_sum(q * log_q, index, num_groups).mean(),
        "zero_signal_frac": zero_signal.to(phi.dtype).mean(),
    }
    return loss, diagnostics, weight[index] * grad_phi


class _AddTokenGradient(torch.autograd.Function):
    """Identity on the log-probs; the backward pass adds ``g · scale_k · mask_t`` to their gradient.

    ``g`` is the gradient the DMPO loss itself receives (1 for ``loss.backward()``, 1/k when an
    engine scales the loss for accumulation), recorded by a hook on the loss into ``upstream``:
    the hook runs before this node, which lies upstream of the loss. This way the DM term's
    gradient Σ_k c_k·∂φ_k/∂lp_t costs one fused multiply-add on the gradient the base
    surrogate sends back; differentiating φ by autograd instead (a second [N, T] branch, a
    broadcast multiply and a gradient accumulation) costs about a quarter of a GRPO step on a
    CPU. First-order only.
    """

    @staticmethod
    def forward(
        ctx, logps: torch.Tensor, mask: torch.Tensor, scale: torch.Tensor, upstream: list
    ) -> torch.Tensor:
        ctx.save_for_backward(mask, scale)
        ctx.upstream = upstream
        return logps.view_as(logps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        mask, scale = ctx.saved_tensors
        (loss_grad,) = ctx.upstream
        if loss_grad is None:  # an undefined gradient stands for zero
            return grad, None, None, None
        return torch.addcmul(grad, mask, (loss_grad * scale).unsqueeze(-1)), None, None, None


def _record(box: list, grad: torch.Tensor) -> None:
    box[:] = [grad]


def dm_coefficients(
    logps: torch.Tensor,
    mask: torch.Tensor,
    rewards: torch.Tensor,
    group_ids: torch.Tensor,
    *,
    advantages: torch.Tensor | None = None,
    alpha: float = 1 / 15,
    target_from: str = "reward",
    divergence: str = "mse",
    length_normalize: bool = True,
    skip_zero_signal_groups: bool = False,
    normalize: str = "group",
    scale_rewards: str = "group",
    adv_eps: float = 1e-4,
) -> torch.Tensor:
    """c_k = ∂L_DM/∂φ_k at the current (no-grad) φ: [N], detached.

    Call it where whole groups are visible (at sampling time, on the whole generation batch)
    and pass each row's c_k to ``dmpo(..., dm_form="coefficient", coefficients=...)``. The
    normalisation (1/groups or 1/completions) is that of the batch given here, so the DM
    gradients of all micro-batches add up to λ·∇L_DM of the whole batch, exactly while the
    policy has not moved since. An engine that scales each micro-batch loss by 1/A (A
    accumulation steps) should pass A·c_k to keep that total.
    """
    dtype = compute_dtype(logps.dtype)
    index, k = group_index(group_ids)
    z = _target_source(
        rewards,
        advantages,
        group_ids,
        target_from=target_from,
        scale_rewards=scale_rewards,
        adv_eps=adv_eps,
        dtype=dtype,
    )
    with torch.no_grad():
        phi = sequence_logps(logps.to(dtype), mask.to(dtype), average=length_normalize)
        _, _, coefficients = _dm_terms(
            phi,
            z,
            index,
            k,
            alpha=alpha,
            divergence=divergence,
            skip_zero_signal_groups=skip_zero_signal_groups,
            normalize=normalize,
        )
    return coefficients


def _resolve_base(base: str, params: dict) -> tuple[Callable[..., ObjectiveOutput] | None, dict]:
    """The §2.1 surrogate named ``base`` and the parameters set for it (None = its default)."""
    _check_choice("base", base, (*BASES, "none"))
    given = {name: value for name, value in params.items() if value is not None}
    if base == "none":
        stray = sorted(set(given) - {"scale_rewards", "adv_eps"})
        if stray:
            raise DmpoError(f"base='none' has no surrogate; drop the parameter(s) {stray}")
        return None, {}
    accepted = inspect.signature(BASES[base]).parameters
    stray = sorted(set(given) - set(accepted))
    if stray:
        valid = sorted(set(accepted) - {"batch"})
        raise DmpoError(f"base {base!r} has no parameter(s) {stray}; its parameters: {valid}")
    return BASES[base], given


@registry.register(
    "dmpo",
    "group",
    paper=_PAPER,
    oracle=_ORACLE,
    summary="GRPO + λ·mse(softmax(r/α), softmax(avg logp)) per group (paper defaults).",
)
def dmpo(
    batch: GroupBatch,
    *,
    lam: float = 2.0,
    alpha: float = 1 / 15,
    target_from: str = "reward",
    divergence: str = "mse",
    length_normalize: bool = True,
    skip_zero_signal_groups: bool = False,
    normalize: str = "group",
    base: str = "grpo",
    dm_form: str = "group",
    coefficients: torch.Tensor | None = None,
    epsilon_low: float | None = None,
    epsilon_high: float | None = None,
    beta_kl: float | None = None,
    kl_bias_correction: bool | None = None,
    scale_rewards: str | None = None,
    adv_eps: float | None = None,
    max_completion_length: int | None = None,
    dynamic_sampling: bool | None = None,
    mask_truncated: bool | None = None,
) -> ObjectiveOutput:
    """L = L_base + λ·L_DM (module docstring has the formulas).

    base: grpo, bnpo, dapo, dr_grpo, gspo, or none (pure DM). The base parameters
        (epsilon_low … mask_truncated) default to None, meaning the base's own default
        (e.g. ε_high = 0.28 for dapo, 4e-4 for gspo); setting one the base lacks is an error.
    target_from="advantage" uses ``batch.advantages`` when given, else the group z-score with
        ``scale_rewards`` (default "group") and ``adv_eps`` (default 1e-4).
    skip_zero_signal_groups: drop groups whose z spans ≤ 1e-5 from L_DM.
    dm_form: "group" takes c = ∂L_DM/∂φ from the groups in this batch (they must be whole);
        "coefficient" takes the given ``coefficients`` (from ``dm_coefficients``), so the
        gradient is λ·Σ_k sg[c_k]·∂φ_k whatever the split of the rows.
    The loss value is L_base + λ·L_DM with L_DM over the groups as they appear in this batch
    (with split groups and dm_form="coefficient", that part is a diagnostic only). Metrics:
    the base's, plus dm_loss and, over all groups in the batch, the means of max_p, max_q and
    entropy_q, and zero_signal_frac (groups whose z spans ≤ 1e-5).
    """
    _check_choice("dm_form", dm_form, DM_FORMS)
    if dm_form == "coefficient" and coefficients is None:
        raise DmpoError(
            "dm_form='coefficient' needs coefficients=dm_coefficients(...) computed where the "
            "groups were whole (e.g. on the generation batch)"
        )
    if dm_form == "group" and coefficients is not None:
        raise DmpoError("coefficients are used only with dm_form='coefficient'")
    base_fn, base_params = _resolve_base(
        base,
        {
            "epsilon_low": epsilon_low,
            "epsilon_high": epsilon_high,
            "beta_kl": beta_kl,
            "kl_bias_correction": kl_bias_correction,
            "scale_rewards": scale_rewards,
            "adv_eps": adv_eps,
            "max_completion_length": max_completion_length,
            "dynamic_sampling": dynamic_sampling,
            "mask_truncated": mask_truncated,
        },
    )

    dtype = compute_dtype(batch.logps.dtype)
    logps, mask = batch.logps.to(dtype), batch.mask.to(dtype)
    index, k = group_index(batch.group_ids)
    z = _target_source(
        batch.rewards,
        batch.advantages,
        batch.group_ids,
        target_from=target_from,
        scale_rewards="group" if scale_rewards is None else scale_rewards,
        adv_eps=1e-4 if adv_eps is None else adv_eps,
        dtype=dtype,
    )
    with torch.no_grad():
        phi = sequence_logps(logps, mask, average=length_normalize)
        dm_loss, diagnostics, own = _dm_terms(
            phi,
            z,
            index,
            k,
            alpha=alpha,
            divergence=divergence,
            skip_zero_signal_groups=skip_zero_signal_groups,
            normalize=normalize,
        )
    if coefficients is None:
        coefficients = own
    elif coefficients.shape != phi.shape:
        raise DmpoError(
            f"coefficients must have shape {tuple(phi.shape)}, got {tuple(coefficients.shape)}"
        )
    # ∂(λ·L_DM)/∂lp_t = λ·c_k·∂φ_k/∂lp_t = λ·c_k·mask_t / |y_k| (without the 1/|y_k| for sums).
    token_scale = lam * coefficients.detach().to(dtype)
    if length_normalize:
        token_scale = token_scale / num_tokens(mask).clamp(min=1)

    if base_fn is None:
        # Σ_k token_scale_k·(Σ_t mask·lp − sg[·]): value 0, gradient the DM term's.
        weighted = masked_sum(logps, mask) * token_scale
        loss = lam * dm_loss + (weighted - weighted.detach()).sum()
        return to_output(loss, diagnostics)

    upstream: list[torch.Tensor] = []
    logps = _AddTokenGradient.apply(logps, mask, token_scale, upstream)
    base_out = base_fn(dataclasses.replace(batch, logps=logps), **base_params)
    loss = base_out.loss + lam * dm_loss
    if loss.requires_grad:
        loss.register_hook(functools.partial(_record, upstream))
    out = to_output(loss, diagnostics)
    out.metrics = {**base_out.metrics, **out.metrics}
    return out


registry.add(
    "dmpo-recipe",
    "group",
    dmpo,
    paper=_PAPER + "; verl community recipe",
    oracle=_ORACLE,
    summary="verl recipe: advantage target, per-sample mse, zero-signal groups skipped, clip 0.2/0.28.",
    target_from="advantage",
    normalize="sample",
    skip_zero_signal_groups=True,
    epsilon_low=0.2,
    epsilon_high=0.28,
)
registry.add(
    "dmpo-ce",
    "group",
    dmpo,
    paper=_PAPER,
    oracle=_ORACLE,
    summary="DMPO with the cross-entropy (group forward KL) term: ∂/∂φ = q − p.",
    divergence="ce",
)
registry.add(
    "dmpo-pure",
    "group",
    dmpo,
    paper=_PAPER,
    oracle=_ORACLE,
    summary="λ·L_DM alone, no policy-gradient surrogate.",
    base="none",
)
registry.add(
    "dmpo-coef",
    "group",
    dmpo,
    paper=_PAPER,
    oracle=_ORACLE,
    summary="DMPO with the DM term as Σ sg[c_k]·φ_k: survives groups split across micro-batches.",
    dm_form="coefficient",
)
