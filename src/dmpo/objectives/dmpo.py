"""DMPO: distribution-matching policy optimisation (arXiv 2605.19461, "Beyond Mode Collapse").

GRPO minimises a mode-seeking reverse KL; DMPO adds a mode-covering term that matches the
policy's own distribution over each sampled group to a reward-proportional target:

    L = L_base + λ·L_DM

L_base is a GRPO-family surrogate (``policy_gradient.py``), L_DM the distribution-matching term
(``dm_term.py``: p = softmax(z/α) over the group, q = softmax(φ), φ the average token log-prob).

Gradient. L_DM depends on the tokens only through φ, so its gradient is Σ_k c_k·∂φ_k/∂lp_t
with c_k = ∂L_DM/∂φ_k from :func:`~dmpo.objectives.dm_term.dm_term`, added to the token
gradients in the backward pass (``_AddTokenGradient``). This is the exact gradient of L_DM at
the current policy, cheaper than differentiating the [N, T] masked mean.

q is a softmax over the *whole* group, so the batch must hold whole groups. Where an engine
splits groups (TRL shuffles rows across micro-batches, verl across ranks), compute
``dm_coefficients`` once where groups are whole, carry them with the rows, and train with
``dm_form="coefficient"`` (the ``dmpo-coef`` preset), which uses those c_k instead of the
batch's own: the gradient of L_DM while the policy has not moved since they were computed. An
engine that takes several optimiser steps per generation batch recomputes them (φ by a no-grad
forward pass over the generation batch) after each step; the TRL engine does.

Numerics: φ, p and q are computed in float32 for half-precision inputs (float64 stays
float64) and the loss is returned in that dtype. An empty completion has φ = 0.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Any

import torch

from dmpo.errors import DmpoError
from dmpo.objectives import registry
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import (
    check_choice,
    compute_dtype,
    masked_sum,
    num_tokens,
    sequence_logps,
    to_output,
)
from dmpo.objectives.dm_term import dm_coefficients, dm_term, gradient_diagnostics
from dmpo.objectives.policy_gradient import BASES
from dmpo.objectives.registry import ObjectiveOutput

__all__ = ["DM_FORMS", "base_phi_gradient", "dm_coefficients", "dmpo"]

DM_FORMS = ("group", "coefficient")
_PAPER = "arXiv 2605.19461 (Beyond Mode Collapse, ICML 2026)"
_ORACLE = "closed-form gradients (no peer implementation); λ=0 reduces to the base's TRL oracle"
# Every parameter of any base surrogate; None means "the chosen base's own default".
_BASE_PARAMS: dict[str, Any] = {
    name: None
    for fn in BASES.values()
    for name, p in inspect.signature(fn).parameters.items()
    if p.kind is inspect.Parameter.KEYWORD_ONLY
}


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
    zero_signal_only: bool = False,
    q_temperature: float = 1.0,
    dm_share: float | None = None,
    normalize: str = "group",
    base: str = "grpo",
    dm_form: str = "group",
    coefficients: torch.Tensor | None = None,
    **base_params: Any,
) -> ObjectiveOutput:
    """L = L_base + λ·L_DM.

    base: any of ``policy_gradient.BASES`` (grpo, bnpo, dapo, dr_grpo, gspo, luspo, cispo, sapo,
        vespo), or none (pure DM). ``base_params`` go to the base
        (epsilon_low, epsilon_high, beta_kl, ...; None or absent = the base's own default, e.g.
        ε_high = 0.28 for dapo); a parameter the base lacks is an error.
    L_DM: α, target_from, divergence, length_normalize, skip_zero_signal_groups,
        zero_signal_only, q_temperature (τ of q = softmax(φ/τ)), normalize as
        in :func:`~dmpo.objectives.dm_term.dm_term`; target_from="advantage" uses
        ``batch.advantages`` when given, else the group z-score with the base's
        ``scale_rewards`` (default "group") and ``adv_eps`` (default 1e-4).
    dm_form: "group" takes c = ∂L_DM/∂φ from the groups in this batch (they must be whole);
        "coefficient" takes the given ``coefficients`` (from ``dm_coefficients``), so the
        gradient is λ·Σ_k sg[c_k]·∂φ_k whatever the split of the rows.
    dm_share: ρ ≥ 0 replaces λ, batch by batch, by λ_eff = ρ·‖g_base‖/‖c‖ (norms over the
        batch's completions, detached): the DM term's gradient with respect to φ is then ρ times
        as large as the base term's, whatever the scale of q (``lam`` is ignored). g_base is the
        base term's gradient projected on φ (:func:`base_phi_gradient`). Needs a base.
    The loss value is L_base + λ·L_DM with L_DM over the groups as they appear in this batch
    (with split groups and dm_form="coefficient", that part is a diagnostic only). Metrics:
    the base's, plus :data:`~dmpo.objectives.dm_term.DM_DIAGNOSTICS`: dm_loss and, over all
    groups in the batch, the means of max_p, max_q, entropy_q, entropy_p and phi_std (the
    within-group std of φ), zero_signal_frac (groups whose z spans ≤ 1e-5); and the share of
    the DM term in the update: dm_grad_norm ‖λ·c‖, base_grad_norm ‖g_base‖, dm_grad_ratio,
    dm_grad_share, dm_base_cos, dm_lambda (``gradient_diagnostics``). These last six come from
    the base's token gradient, which the backward pass sees for free: they enter ``metrics``
    when the loss is backpropagated (with dm_share, and with base "none", at once).
    """
    check_choice("dm_form", dm_form, DM_FORMS)
    if dm_form == "coefficient" and coefficients is None:
        raise DmpoError(
            "dm_form='coefficient' needs coefficients=dm_coefficients(...) computed where the "
            "groups were whole (e.g. on the generation batch)"
        )
    if dm_form == "group" and coefficients is not None:
        raise DmpoError("coefficients are used only with dm_form='coefficient'")
    base_params = _check_base(base, base_params)
    if dm_share is not None:
        if not (dm_share >= 0 and dm_share < float("inf")):
            raise DmpoError(f"dm_share must be a finite number ≥ 0, got {dm_share}")
        if base == "none":
            raise DmpoError("dm_share sets the DM gradient relative to the base term's: it needs a base")

    dtype = compute_dtype(batch.logps.dtype)
    logps, mask = batch.logps.to(dtype), batch.mask.to(dtype)
    with torch.no_grad():
        phi = sequence_logps(logps, mask, average=length_normalize)
    dm = dm_term(
        phi,
        batch.rewards,
        batch.group_ids,
        advantages=batch.advantages,
        alpha=alpha,
        target_from=target_from,
        divergence=divergence,
        skip_zero_signal_groups=skip_zero_signal_groups,
        zero_signal_only=zero_signal_only,
        q_temperature=q_temperature,
        normalize=normalize,
        scale_rewards=base_params.get("scale_rewards", "group"),
        adv_eps=base_params.get("adv_eps", 1e-4),
    )
    if coefficients is None:
        coefficients = dm.coefficients
    elif coefficients.shape != phi.shape:
        raise DmpoError(
            f"coefficients must have shape {tuple(phi.shape)}, got {tuple(coefficients.shape)}"
        )
    coefficients = coefficients.detach().to(dtype)
    # ∂(λ·L_DM)/∂lp_t = λ·c_k·∂φ_k/∂lp_t = λ·c_k·mask_t / |y_k| (without the 1/|y_k| for sums).
    token_scale = coefficients
    if length_normalize:
        token_scale = token_scale / num_tokens(mask).clamp(min=1)

    if base == "none":
        # Σ_k token_scale_k·(Σ_t mask·lp − sg[·]): value 0, gradient the DM term's.
        weighted = masked_sum(torch.where(mask.bool(), logps, 0.0), mask) * lam * token_scale
        loss = lam * dm.loss + (weighted - weighted.detach()).sum()
        grads = gradient_diagnostics(lam * coefficients, torch.zeros_like(coefficients), lam)
        return to_output(loss, {**dm.diagnostics, **grads})

    upstream: list[torch.Tensor] = []
    scale_box: list[torch.Tensor] = []  # filled below, read in the backward pass
    sink: list[dict[str, float]] = []  # the metrics the backward pass completes
    # Without dm_share the gradient diagnostics come free from the backward pass, which sees the
    # base's token gradient; dm_share needs that gradient now, so it pays one autograd.grad.
    probe = None if dm_share is not None else _Probe(lam * coefficients, lam, length_normalize, sink)
    logps = _AddTokenGradient.apply(logps, mask, scale_box, upstream, probe)
    base_out = BASES[base](dataclasses.replace(batch, logps=logps), **base_params)
    grads: dict[str, torch.Tensor] = {}
    if dm_share is not None:
        base_grad = base_phi_gradient(base_out.loss, logps, mask, length_normalize=length_normalize)
        c_norm = coefficients.norm()
        lam = float(dm_share * base_grad.norm() / c_norm) if c_norm > 0 else 0.0
        grads = gradient_diagnostics(lam * coefficients, base_grad, lam)
    scale_box.append(lam * token_scale)
    loss = base_out.loss + lam * dm.loss
    if loss.requires_grad:
        loss.register_hook(functools.partial(_record, upstream))
    out = to_output(loss, {**dm.diagnostics, **grads})
    out.metrics = {**base_out.metrics, **out.metrics}
    sink.append(out.metrics)
    return out


@dataclasses.dataclass
class _Probe:
    """What the backward pass needs to add the gradient diagnostics to the output's metrics."""

    dm_grad: torch.Tensor  # λ·c [N]
    lam: float
    length_normalize: bool
    sink: list  # [the output's metrics dict], once the objective has returned

    def record(self, grad: torch.Tensor, mask: torch.Tensor, loss_grad: torch.Tensor) -> None:
        """``grad``: the base's token gradient times ``loss_grad`` (what the backward pass sees)."""
        per_row = (grad * mask).sum(-1) / loss_grad
        if not self.length_normalize:
            per_row = per_row / num_tokens(mask).clamp(min=1)
        values = gradient_diagnostics(self.dm_grad, per_row, self.lam)
        if self.sink:
            self.sink[0].update(zip(values, torch.stack(list(values.values())).double().tolist()))


def base_phi_gradient(
    base_loss: torch.Tensor, logps: torch.Tensor, mask: torch.Tensor, *, length_normalize: bool = True
) -> torch.Tensor:
    """The base term's gradient with respect to the sequence scores φ [N], detached.

    The base is a function of the token log-probs, not of φ; its φ-component is its derivative
    along the direction that moves φ_k alone by one, spread evenly over the completion's tokens:
    lp_t += 1 for a length-normalised φ (Σ_t ∂L/∂lp_t) and lp_t += 1/|y_k| for a sum
    ((1/|y_k|)·Σ_t ∂L/∂lp_t). For GRPO on policy this is −A_k/N, the DM term's counterpart of
    c_k. ``logps`` must be the tensor the base was computed from; when the loss has no graph
    (evaluation) it is zero.
    """
    mask = mask.to(logps.dtype)
    if not (base_loss.requires_grad and logps.requires_grad):
        return torch.zeros(logps.shape[0], dtype=logps.dtype, device=logps.device)
    (grad,) = torch.autograd.grad(base_loss, logps, retain_graph=True, allow_unused=True)
    if grad is None:
        return torch.zeros(logps.shape[0], dtype=logps.dtype, device=logps.device)
    per_row = (grad.detach() * mask).sum(-1)
    return per_row if length_normalize else per_row / num_tokens(mask).clamp(min=1)


# The registry lists (and validates) the base's parameters as dmpo's own.
dmpo.forwarded_params = _BASE_PARAMS


def _dmpo_whole_groups(params: dict[str, Any]) -> str | None:
    """Part of a group is enough in the coefficient form, when the base allows it."""
    if params.get("dm_form", "group") != "coefficient":
        return ("its DM term is a softmax over each whole group (dm_form='coefficient', with "
                "coefficients computed over whole groups, lifts this)")
    base = params.get("base", "grpo")
    if base == "none":
        return None
    given = {k: v for k, v in params.items() if v is not None}
    reason = registry.whole_groups_reason(BASES[base], given, base)
    return None if reason is None else f"its base {base!r}: {reason}"


dmpo.whole_groups = _dmpo_whole_groups


def _check_base(base: str, params: dict[str, Any]) -> dict[str, Any]:
    """The parameters set for the base surrogate ``base`` (None = its default), checked."""
    check_choice("base", base, (*BASES, "none"))
    given = {name: value for name, value in params.items() if value is not None}
    if base == "none":
        stray = sorted(set(given) - {"scale_rewards", "adv_eps"})
        if stray:
            raise DmpoError(f"base='none' has no surrogate; drop the parameter(s) {stray}")
        return given
    accepted = inspect.signature(BASES[base]).parameters
    stray = sorted(set(given) - set(accepted))
    if stray:
        valid = sorted(set(accepted) - {"batch"})
        raise DmpoError(f"base {base!r} has no parameter(s) {stray}; its parameters: {valid}")
    return given


class _AddTokenGradient(torch.autograd.Function):
    """Identity on the log-probs; the backward pass adds ``g · scale_k · mask_t`` to their gradient.

    ``g`` is the gradient the DMPO loss itself receives (1 for ``loss.backward()``, 1/k when an
    engine scales the loss for accumulation), recorded by a hook on the loss into ``upstream``:
    the hook runs before this node, which lies upstream of the loss. This way the DM term's
    gradient Σ_k c_k·∂φ_k/∂lp_t costs one fused multiply-add on the gradient the base
    surrogate sends back (and the gradient diagnostics one masked row sum of it, written into
    the objective's metrics: they appear there once the loss has been backpropagated); differentiating φ by autograd instead (a second [N, T] branch, a
    broadcast multiply and a gradient accumulation) costs about a quarter of a GRPO step on a
    CPU. First-order only.
    """

    @staticmethod
    def forward(
        ctx, logps: torch.Tensor, mask: torch.Tensor, scale_box: list, upstream: list, probe: _Probe | None
    ) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale_box = scale_box  # the scale is set after the base (dm_share needs its gradient)
        ctx.upstream = upstream
        ctx.probe = probe
        return logps.view_as(logps)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (mask,) = ctx.saved_tensors
        (scale,) = ctx.scale_box
        (loss_grad,) = ctx.upstream
        if loss_grad is None:  # an undefined gradient stands for zero
            return grad, None, None, None, None
        if ctx.probe is not None and bool(loss_grad != 0):
            # ``grad`` is the base's gradient alone (the DM term adds its own here), times loss_grad.
            with torch.no_grad():
                ctx.probe.record(grad, mask.to(grad.dtype), loss_grad)
        return torch.addcmul(grad, mask, (loss_grad * scale).unsqueeze(-1)), None, None, None, None


def _record(box: list, grad: torch.Tensor) -> None:
    box[:] = [grad]


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

# ---- variants from the diagnosis (issue 14) -------------------------------------------------------
# The paper's mse term is weak at small scale: φ (the length-normalised log-likelihood) barely
# differs within a group, so q = softmax(φ) stays ≈ uniform, and the mse gradient carries the
# factor q_k ≈ 1/G twice over: c_k ≈ (2/G²)(q_k − p_k) (``dm_term``). Each variant removes one
# link of that chain; see README "Distribution-matching variants".
registry.add(
    "dmpo-tau",
    "group",
    dmpo,
    paper=_PAPER + "; temperature on q (this library)",
    oracle=_ORACLE,
    summary="DMPO with q = softmax(φ/τ), τ = 0.1: small φ differences make q leave uniform.",
    q_temperature=0.1,
)
registry.add(
    "dmpo-sum",
    "group",
    dmpo,
    paper=_PAPER + "; sequence-sum φ (this library)",
    oracle=_ORACLE,
    summary="DMPO with φ = Σ_t log π (not the per-token mean): φ spreads with the length, q leaves uniform.",
    length_normalize=False,
)
registry.add(
    "dmpo-share",
    "group",
    dmpo,
    paper=_PAPER + "; DM gradient as a fixed share of the base's (this library)",
    oracle=_ORACLE,
    summary="DMPO with λ set per batch so that ‖λ·∂L_DM/∂φ‖ = 0.5·‖∂L_base/∂φ‖ (dm_share).",
    dm_share=0.5,
)
registry.add(
    "dmpo-silent",
    "group",
    dmpo,
    paper=_PAPER + "; DM only where the base is silent (this library)",
    oracle=_ORACLE,
    summary="GRPO + λ·ce(uniform, q) on zero-signal groups only: spreads q where GRPO has no gradient.",
    divergence="ce",
    zero_signal_only=True,
    lam=1.0,
)
