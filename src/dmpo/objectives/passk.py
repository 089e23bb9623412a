"""Pass@k training with the analytical advantage (Chen et al., arXiv 2508.10751).

Pass@k as the reward: a set of k completions is worth the best of its rewards. Over a group of
n completions, every k-subset S is a "sample" with reward max_{j∈S} r_j; completion i's
advantage is the mean, over the k-subsets that contain i, of the subset's normalised reward:

    μ   = mean_S max_{j∈S} r_j,   σ² = mean_S (max_{j∈S} r_j − μ)²        (all C(n, k) subsets)
    A_i = (mean_{S∋i} max_{j∈S} r_j − μ) / (σ + eps),   A_i = 0 when σ = 0

For 0/1 rewards with c correct completions this is the paper's closed form

    ρ = 1 − C(n−c, k)/C(n, k),   σ = √(ρ(1−ρ)),
    A_pos = (1 − ρ)/σ,   A_neg = (1 − ρ − C(n−c−1, k−1)/C(n−1, k−1))/σ.

For graded rewards the same expectations are computed exactly by sorting each group, without
enumerating subsets: with the group sorted by decreasing reward (positions q = 1..n, ties by
position), position q is the maximum of C(n−q, k−1) of the k-subsets, so

    μ = Σ_q r_q·C(n−q, k−1)/C(n, k),
    mean_{S∋q} max = [r_q·C(n−q, k−1) + Σ_{j<q} r_j·C(n−j−1, k−2)] / C(n−1, k−1)

(a subset holding q and a better j, and otherwise only completions after j). That is one sort
and a prefix sum per group, O(n log n); the binomial ratios are computed from log-binomials
(``lgamma``) in float64. The rewards enter as deficits from the group's best reward, so that
a group whose k-subsets all have the same maximum gets σ = 0 and advantage 0 exactly.

This is *not* verl's ``grpo_passk`` estimator (Tang et al., arXiv 2503.19595), which gives only
the best completion of a group an advantage, r_max − r_second.
"""

from __future__ import annotations

import dataclasses

import torch
import torch.nn.functional as F

from dmpo.errors import DmpoError
from dmpo.objectives.batch import GroupBatch
from dmpo.objectives.common import group_index, group_max, group_size, group_sum, to_output
from dmpo.objectives.policy_gradient import policy_loss
from dmpo.objectives.registry import ObjectiveOutput, register


def _log_binomial(n: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """log C(n, k) elementwise (float64); −inf where k < 0 or k > n (C = 0)."""
    valid = (k >= 0) & (k <= n)
    n_safe = torch.where(valid, n, 0.0)
    k_safe = torch.where(valid, k, 0.0)
    value = torch.lgamma(n_safe + 1) - torch.lgamma(k_safe + 1) - torch.lgamma(n_safe - k_safe + 1)
    return torch.where(valid, value, float("-inf"))


def _check_k(k: int, sizes: torch.Tensor) -> None:
    if isinstance(k, bool) or not isinstance(k, int):
        raise DmpoError(f"k must be an integer >= 1, got {k!r}")
    if k < 1:
        raise DmpoError(f"k must be >= 1, got k={k}")
    smallest = int(sizes.min().item()) if sizes.numel() else k
    if k > smallest:
        raise DmpoError(
            f"k={k} is larger than a group: pass@k needs k <= group size, and the smallest group "
            f"in this batch has {smallest} completion(s); lower k or sample more per prompt"
        )


def passk_advantages_and_means(
    rewards: torch.Tensor, group_ids: torch.Tensor, k: int, *, eps: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """(advantage per completion [N], pass@k estimate μ per group [K]), float64, no gradient."""
    index, num_groups = group_index(group_ids)
    r = rewards.detach().to(torch.float64)
    sizes = group_size(index, num_groups, torch.float64)
    _check_k(k, sizes)

    best = group_max(r, index, num_groups)
    deficit = best[index] - r  # ≥ 0; the subset maximum is best − the subset's minimum deficit
    # Sort by group, then by deficit (reward descending); both sorts stable.
    by_deficit = torch.sort(deficit, stable=True).indices
    order = by_deficit[torch.sort(index[by_deficit], stable=True).indices]
    g = index[order]
    d = deficit[order]
    starts = (torch.cumsum(sizes, 0) - sizes).long()
    position = torch.arange(r.numel(), device=r.device) - starts[g]  # q − 1
    q = position.to(torch.float64) + 1
    n = sizes[g]
    kk = torch.full_like(n, float(k))

    log_all = _log_binomial(n, kk)
    log_with = _log_binomial(n - 1, kk - 1)
    log_max_at = _log_binomial(n - q, kk - 1)  # subsets where q is the maximum
    weight = torch.exp(log_max_at - log_all)  # P(q is the max of a random k-subset)
    own = torch.exp(log_max_at - log_with)  # among subsets holding q, share where q is the max
    # Share of the subsets holding a later completion i in which q is the maximum (same for all i).
    later = torch.exp(_log_binomial(n - q - 1, kk - 2) - log_with)

    mean_deficit = group_sum(weight * d, index=g, num_groups=num_groups)
    centred = d - mean_deficit[g]
    sigma = group_sum(weight * centred * centred, g, num_groups).clamp(min=0).sqrt()

    # Exclusive prefix sum of later·d within each group, in a [K, max n] layout.
    width = int(sizes.max().item()) if num_groups else 0
    table = torch.zeros(num_groups, width, dtype=torch.float64, device=r.device)
    table[g, position] = later * d
    before = torch.cumsum(F.pad(table[:, :-1], (1, 0)), dim=1)[g, position]
    mean_with = own * d + before  # mean deficit of the subsets holding this completion

    s = sigma[g]
    advantage = torch.where(s > 0, -(mean_with - mean_deficit[g]) / (s + eps), 0.0)
    out = torch.empty_like(advantage)
    out[order] = advantage
    return out, best - mean_deficit


def passk_advantages(
    rewards: torch.Tensor, group_ids: torch.Tensor, k: int, *, eps: float = 1e-6
) -> torch.Tensor:
    """Pass@k advantage of each completion (module docstring), float64: [N] → [N]."""
    return passk_advantages_and_means(rewards, group_ids, k, eps=eps)[0]


@register(
    "passk",
    "group",
    paper="arXiv 2508.10751 (Pass@k Training, analytical derivation)",
    oracle="brute-force enumeration of all k-subsets; the paper's 0/1 closed form (authors' "
    "passk_adv.py); grpo's clipped surrogate",
    summary="GRPO's clipped surrogate with the analytical pass@k advantage (expected normalised "
    "best-of-k reward over the k-subsets holding each completion).",
)
def passk(
    batch: GroupBatch,
    *,
    k: int = 4,
    adv_eps: float = 1e-6,
    epsilon_low: float = 0.2,
    epsilon_high: float = 0.2,
    beta_kl: float = 0.0,
    kl_bias_correction: bool = False,
    aggregation: str = "grpo",
) -> ObjectiveOutput:
    """Pass@k training: L = grpo's clipped surrogate with A_i = pass@k advantage (see module).

        ℓ_t = −min(ρ_t·A_i, clip(ρ_t, 1−ε_low, 1+ε_high)·A_i) + β_kl·k3_t,   ρ_t = exp(lp_t − old_t)
        A_i = (mean_{S∋i} max_{j∈S} r_j − μ_g) / (σ_g + adv_eps),  0 when σ_g = 0

    averaged as ``aggregation`` says (``grpo`` by default: mean over each completion's tokens,
    then over completions; ``bnpo``, ``dapo``, ``dr_grpo`` as in those objectives). The
    advantages always come from ``batch.rewards``; ``batch.advantages`` is ignored.

    ``k``: subset size, 1 <= k <= the smallest group size (else DmpoError). k = 1 gives the
    group-normalised reward with the population std; k = group size gives 0 (one subset).
    Default k = 4 is this library's choice (the paper trains with several k and reports
    training robust to k; set k to match a given run). ``adv_eps`` = 1e-6 as the authors'
    ``passk_adv.py``. Rewards may be graded; for 0/1 rewards the advantage is the paper's
    closed form.
    """
    advantages, means = passk_advantages_and_means(batch.rewards, batch.group_ids, k, eps=adv_eps)
    with_advantages = dataclasses.replace(batch, advantages=advantages)
    loss, metrics = policy_loss(
        with_advantages,
        aggregation=aggregation,
        epsilon_low=epsilon_low,
        epsilon_high=epsilon_high,
        beta_kl=beta_kl,
        kl_bias_correction=kl_bias_correction,
        scale_rewards="none",  # unused: the batch carries the advantages
        adv_eps=adv_eps,
    )
    metrics["pass_at_k_mean"] = means.mean()
    return to_output(loss, metrics)


passk.whole_groups = (
    "its advantages come from each whole group's rewards (the best of k over the group's "
    "k-subsets); batch.advantages are not used"
)
