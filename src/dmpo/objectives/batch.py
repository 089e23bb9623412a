"""Batch types the objectives consume. Plain dataclasses of tensors; no engine knows them.

Shapes: ``N`` completions (or pairs), ``T`` tokens. Per-token tensors are ``[N, T]`` and
padded; ``mask`` marks real tokens (a completion may have none); padding may hold anything
(−inf, NaN): the objectives never let it contribute. Per-completion inputs (rewards,
advantages, weights, margins) and forget log-probs must be finite: a NaN there is a clear error,
not a NaN model. Groups are given by
``group_ids`` (any integers; completions sharing an id share a prompt) and may differ in size.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from dmpo.errors import DmpoError


def _check_finite(name: str, value: torch.Tensor | None, mask: torch.Tensor | None = None) -> None:
    """A clear error for NaN or ±inf in ``value`` (at real tokens only, when ``mask`` is given):
    such a value would turn the loss, then the model, into NaN."""
    if value is None:
        return
    values = value.detach()
    if mask is not None:
        values = values[mask.detach() != 0]
    if not bool(torch.isfinite(values).all()):
        where = " at real tokens" if mask is not None else ""
        raise DmpoError(f"{name} holds NaN or ±inf{where}; non-finite values must not reach an objective")


def _check_tokens(name: str, value: torch.Tensor | None, shape: torch.Size) -> None:
    if value is not None and value.shape != shape:
        raise DmpoError(f"{name} has shape {tuple(value.shape)}, expected {tuple(shape)} like logps")


@dataclass
class GroupBatch:
    """On-policy RL batch: G completions per prompt, scored by a scalar reward each.

    logps:      [N, T] log π_θ(y_t | x, y_<t), with gradient.
    mask:       [N, T] 1 for completion tokens, 0 for padding.
    rewards:    [N] scalar reward per completion (raw, not normalised).
    group_ids:  [N] integer id of the prompt each completion answers.
    old_logps:  [N, T] log-probs under the sampling policy (no grad); None = on-policy (logps detached).
    ref_logps:  [N, T] log-probs under the frozen reference; needed only for a KL term.
    advantages: [N] precomputed advantages (e.g. normalised over a whole generation batch by
                the engine); None = computed from rewards within each group.
    entropies:  [N, T] policy entropy per token (DGPO; the GRPO family's entropy mask and, with
                gradient, its entropy bonus).
    hellinger:  [N, T] squared Hellinger distance policy↔reference per token (DGPO).
    truncated:  [N] bool, completion hit the length limit (DAPO overlong masking).
    num_items_in_batch: tokens in the whole optimisation batch across accumulation steps and
                processes (DAPO normalisation); None = tokens in this batch.
    log_z:      [N] learned log-partition estimate log Z_φ(x) of each completion's prompt, with
                gradient (FlowRL); the same value for every completion of a prompt.
    sampling_logps: [N, T] log-probs the sampler itself reported (e.g. vLLM), for the
                off-policy sequence mask; None = old_logps. NaN marks a token it could not score.
    """

    logps: torch.Tensor
    mask: torch.Tensor
    rewards: torch.Tensor
    group_ids: torch.Tensor
    old_logps: torch.Tensor | None = None
    ref_logps: torch.Tensor | None = None
    advantages: torch.Tensor | None = None
    entropies: torch.Tensor | None = None
    hellinger: torch.Tensor | None = None
    truncated: torch.Tensor | None = None
    num_items_in_batch: float | None = None
    log_z: torch.Tensor | None = None
    sampling_logps: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.logps.dim() != 2:
            raise DmpoError(f"logps must be [N, T], got shape {tuple(self.logps.shape)}")
        n = self.logps.shape[0]
        _check_tokens("mask", self.mask, self.logps.shape)
        for name in ("old_logps", "ref_logps", "entropies", "hellinger", "sampling_logps"):
            _check_tokens(name, getattr(self, name), self.logps.shape)
        for name in ("rewards", "group_ids", "advantages", "truncated", "log_z"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise DmpoError(f"{name} must have shape [{n}], got {tuple(value.shape)}")
        if n == 0:
            raise DmpoError("the batch holds no completions")
        _check_finite("rewards", self.rewards)
        _check_finite("advantages", self.advantages)

    @property
    def num_completions(self) -> int:
        return self.logps.shape[0]


@dataclass
class PairBatch:
    """Preference pairs: chosen (w) and rejected (l) completions of the same prompt.

    chosen_logps / rejected_logps:         [N, T] per-token policy log-probs, with gradient.
    chosen_mask / rejected_mask:           [N, T] real-token masks (chosen and rejected may
                                           have different T).
    ref_chosen_logps / ref_rejected_logps: [N, T] reference log-probs; None for reference-free
                                           losses (SimPO, ASFT).
    weight:         [N] per-pair weight (weighted DPO).
    reward_margin:  [N] reward-model margin r_w − r_l (MADPO).
    guide_chosen_logps / guide_rejected_logps: [N, T] guidance-model log-probs (TGDPO).
    """

    chosen_logps: torch.Tensor
    chosen_mask: torch.Tensor
    rejected_logps: torch.Tensor
    rejected_mask: torch.Tensor
    ref_chosen_logps: torch.Tensor | None = None
    ref_rejected_logps: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    reward_margin: torch.Tensor | None = None
    guide_chosen_logps: torch.Tensor | None = None
    guide_rejected_logps: torch.Tensor | None = None

    def __post_init__(self) -> None:
        for side in ("chosen", "rejected"):
            lp = getattr(self, f"{side}_logps")
            if lp.dim() != 2:
                raise DmpoError(f"{side}_logps must be [N, T], got shape {tuple(lp.shape)}")
            _check_tokens(f"{side}_mask", getattr(self, f"{side}_mask"), lp.shape)
            _check_tokens(f"ref_{side}_logps", getattr(self, f"ref_{side}_logps"), lp.shape)
            _check_tokens(f"guide_{side}_logps", getattr(self, f"guide_{side}_logps"), lp.shape)
        n = self.chosen_logps.shape[0]
        if self.rejected_logps.shape[0] != n:
            raise DmpoError(f"{n} chosen but {self.rejected_logps.shape[0]} rejected completions")
        for name in ("weight", "reward_margin"):
            value = getattr(self, name)
            if value is not None and value.shape != (n,):
                raise DmpoError(f"{name} must have shape [{n}], got {tuple(value.shape)}")
            _check_finite(name, value)

    @property
    def num_pairs(self) -> int:
        return self.chosen_logps.shape[0]


@dataclass
class ForgetBatch:
    """Unlearning: sequences to forget, and optionally sequences to retain.

    forget_logps / forget_mask: [N, T] policy log-probs (with gradient) and mask.
    ref_forget_logps:           [N, T] reference log-probs (NPO).
    retain_logps / retain_mask: [M, S] policy log-probs on retain data (NPO+GD, NPO+KL).
    ref_retain_logps:           [M, S] reference log-probs on retain data (NPO+KL).
    """

    forget_logps: torch.Tensor
    forget_mask: torch.Tensor
    ref_forget_logps: torch.Tensor | None = None
    retain_logps: torch.Tensor | None = None
    retain_mask: torch.Tensor | None = None
    ref_retain_logps: torch.Tensor | None = None

    def __post_init__(self) -> None:
        _check_tokens("forget_mask", self.forget_mask, self.forget_logps.shape)
        _check_tokens("ref_forget_logps", self.ref_forget_logps, self.forget_logps.shape)
        _check_finite("forget_logps", self.forget_logps, self.forget_mask)
        _check_finite("ref_forget_logps", self.ref_forget_logps, self.forget_mask)
        if self.retain_logps is not None:
            if self.retain_mask is None:
                raise DmpoError("retain_logps given without retain_mask")
            _check_tokens("retain_mask", self.retain_mask, self.retain_logps.shape)
            _check_tokens("ref_retain_logps", self.ref_retain_logps, self.retain_logps.shape)
