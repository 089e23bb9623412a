"""TRL 1.16's other losses (cispo, sapo, vespo, luspo) and the surrogate's options
(importance_sampling_level, delta, top_entropy_quantile, entropy_coef, off_policy_mask_threshold):
numpy references, hand values, gradients, edge cases, errors. TRL itself is the oracle in
``test_trl_oracle_group.py``."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives.policy_gradient import BASES, cispo, grpo, gspo, luspo, sapo, vespo
from tests.objectives.test_policy_gradient import (
    A_HAND,
    F64,
    GROUP_IDS,
    HAND_LOGPS,
    LOGPS,
    MASK,
    OLD,
    REF,
    REWARDS,
    advantages_ref,
    degenerate_batch,
    hand_batch,
    make_batch,
)

NEW = {"cispo": cispo, "sapo": sapo, "vespo": vespo, "luspo": luspo}
# Distinct per-token entropies (padding holds junk that must never matter).
ENT = np.array(
    [
        [2.1, 0.4, 1.7, 3.0],
        [0.9, 2.6, 1.1, 9.9],
        [1.4, 9.9, 9.9, 9.9],
        [0.2, 2.9, 0.7, 1.9],
        [2.4, 1.2, 9.9, 9.9],
        [0.6, 1.6, 2.2, 9.9],
        [1.0, 0.3, 2.8, 1.3],
    ]
)
SAMPLING = OLD + 0.4 * np.sin(np.arange(OLD.size).reshape(OLD.shape))


def sigmoid(x):
    return 1 / (1 + math.exp(-x))


def loss_ref(
    logps=LOGPS,
    mask=MASK,
    old=OLD,
    adv=None,
    *,
    surrogate="clip",
    aggregation="grpo",
    eps_low=0.2,
    eps_high=0.2,
    sequence=False,
    delta=None,
    q=1.0,
    ent_coef=0.0,
    opm=None,
    sampling=None,
    ref=None,
    beta=0.0,
    temps=(1.0, 1.05),
    vespo_kl=(2.0, 3.0, 3.0, 2.0),
    num_items=None,
):
    """The loss written from the module docstring with explicit loops, float64."""
    adv = advantages_ref(REWARDS, GROUP_IDS) if adv is None else adv
    ent = ENT
    thr = np.quantile(ent[mask > 0], 1 - q) if q < 1 else -np.inf
    per_completion, sums, total, tokens = [], [], 0.0, 0.0
    ent_sum, ent_count = 0.0, 0.0
    for i in range(len(logps)):
        real = np.flatnonzero(mask[i])
        a = adv[i]
        lr = logps[i, real] - old[i, real]
        rho = np.full(len(real), math.exp(lr.mean())) if sequence and len(real) else np.exp(lr)
        if surrogate == "clip":
            r1 = np.minimum(rho, delta) if delta is not None else rho
            loss_t = -np.minimum(r1 * a, np.clip(rho, 1 - eps_low, 1 + eps_high) * a)
        elif surrogate == "cispo":
            loss_t = -np.minimum(rho, eps_high) * a * logps[i, real]
        elif surrogate == "sapo":
            t = temps[0] if a > 0 else temps[1]
            loss_t = -np.array([sigmoid(t * (r - 1)) for r in rho]) * 4 / t * a
        else:
            k_pos, l_pos, k_neg, l_neg = vespo_kl
            k, lam = (k_pos, l_pos) if a >= 0 else (k_neg, l_neg)
            log_w = min(max(np.clip(lr, -20, 20).sum(), math.log(1e-8)), 20.0)
            phi = math.exp(lam + k * log_w - lam * math.exp(log_w))
            loss_t = -phi * a * logps[i, real]
        if opm is not None:
            s = old if sampling is None else sampling
            kl = (s[i, real] - logps[i, real]).mean() if len(real) else 0.0
            if not (a >= 0 or kl <= opm):
                loss_t = 0 * loss_t
        acting = ent[i, real] >= thr
        loss_t = loss_t * acting
        ent_sum += ent[i, real][acting].sum()
        ent_count += acting.sum()
        if beta:
            d = ref[i, real] - logps[i, real]
            loss_t = loss_t + beta * (np.exp(d) - d - 1) * rho  # bias-corrected
        per_completion.append(loss_t.mean() if len(real) else 0.0)
        sums.append(loss_t.sum())
        total += loss_t.sum()
        tokens += len(real)
    if aggregation == "grpo":
        loss = float(np.mean(per_completion))
    elif aggregation == "luspo":
        loss = float(np.mean(sums))
    elif aggregation == "bnpo":
        loss = total / tokens
    else:  # dapo
        loss = total / (tokens if num_items is None else num_items)
    return loss - ent_coef * ent_sum / max(ent_count, 1)


def batch(**fields):
    return make_batch(entropies=torch.tensor(ENT, dtype=F64), **fields)


# ---- numpy references ------------------------------------------------------------------------
REF_CASES = [
    ("cispo", {}, {"surrogate": "cispo", "aggregation": "dapo", "eps_high": 5.0}),
    ("cispo", {"epsilon_high": 1.1}, {"surrogate": "cispo", "aggregation": "dapo", "eps_high": 1.1}),
    ("sapo", {}, {"surrogate": "sapo"}),
    ("sapo", {"sapo_temperature_pos": 3.0, "sapo_temperature_neg": 0.4},
     {"surrogate": "sapo", "temps": (3.0, 0.4)}),
    ("vespo", {}, {"surrogate": "vespo", "aggregation": "dapo"}),
    ("vespo", {"vespo_k_pos": 1.0, "vespo_lambda_pos": 0.5, "vespo_k_neg": 2.0, "vespo_lambda_neg": 4.0},
     {"surrogate": "vespo", "aggregation": "dapo", "vespo_kl": (1.0, 0.5, 2.0, 4.0)}),
    ("luspo", {}, {"aggregation": "luspo", "sequence": True, "eps_low": 3e-4, "eps_high": 4e-4}),
    ("luspo", {"importance_sampling_level": "token"}, {"aggregation": "luspo", "eps_low": 3e-4, "eps_high": 4e-4}),
    # options
    ("grpo", {"delta": 1.1}, {"delta": 1.1}),
    ("dapo", {"delta": 1.05, "importance_sampling_level": "sequence"},
     {"aggregation": "dapo", "eps_high": 0.28, "delta": 1.05, "sequence": True}),
    ("grpo", {"importance_sampling_level": "sequence"}, {"sequence": True}),
    ("cispo", {"epsilon_high": 1.05, "importance_sampling_level": "sequence"},
     {"surrogate": "cispo", "aggregation": "dapo", "eps_high": 1.05, "sequence": True}),
    ("sapo", {"importance_sampling_level": "sequence"}, {"surrogate": "sapo", "sequence": True}),
    ("gspo", {"importance_sampling_level": "token"}, {"eps_low": 3e-4, "eps_high": 4e-4}),
    # 21 real tokens: q = 0.43 puts the threshold between two entropies (no tie to break).
    ("grpo", {"top_entropy_quantile": 0.43}, {"q": 0.43}),
    ("grpo", {"top_entropy_quantile": 0.0}, {"q": 0.0}),
    ("vespo", {"top_entropy_quantile": 0.66}, {"surrogate": "vespo", "aggregation": "dapo", "q": 0.66}),
    ("grpo", {"entropy_coef": 0.3}, {"ent_coef": 0.3}),
    ("dapo", {"entropy_coef": 0.3, "top_entropy_quantile": 0.57},
     {"aggregation": "dapo", "eps_high": 0.28, "ent_coef": 0.3, "q": 0.57}),
    ("grpo", {"off_policy_mask_threshold": 0.0}, {"opm": 0.0}),
    ("sapo", {"off_policy_mask_threshold": -0.05}, {"surrogate": "sapo", "opm": -0.05}),
    ("cispo", {"off_policy_mask_threshold": 0.0, "epsilon_high": 1.1},
     {"surrogate": "cispo", "aggregation": "dapo", "eps_high": 1.1, "opm": 0.0}),
]  # fmt: skip


@pytest.mark.parametrize(("name", "params", "kwargs"), REF_CASES)
def test_matches_numpy_reference(name, params, kwargs):
    out = objectives.get(name)(batch(), **params)
    assert out.loss.dtype == F64
    assert out.loss.item() == pytest.approx(loss_ref(**kwargs), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("name", ["grpo", "cispo", "sapo", "vespo", "luspo"])
def test_kl_term_with_bias_correction_matches_numpy_reference(name):
    kwargs = {} if name == "grpo" else next(k for n, p, k in REF_CASES if n == name and not p)
    out = objectives.get(name)(batch(ref=REF), beta_kl=0.07, kl_bias_correction=True)
    want = loss_ref(ref=REF, beta=0.07, **kwargs)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)


def test_options_each_change_the_loss():
    plain = grpo(batch()).loss.item()
    for params in ({"delta": 1.1}, {"importance_sampling_level": "sequence"},
                   {"top_entropy_quantile": 0.5}, {"entropy_coef": 0.1},
                   {"off_policy_mask_threshold": 0.0}):  # fmt: skip
        assert grpo(batch(), **params).loss.item() != pytest.approx(plain, rel=1e-9), params


def test_sampling_logps_drive_the_off_policy_mask():
    out = grpo(batch(sampling_logps=torch.tensor(SAMPLING)), off_policy_mask_threshold=0.0)
    want = loss_ref(opm=0.0, sampling=SAMPLING)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    assert want != pytest.approx(loss_ref(opm=0.0), rel=1e-9)


def test_dapo_normaliser_for_cispo_and_vespo():
    for name, surrogate in (("cispo", "cispo"), ("vespo", "vespo")):
        out = objectives.get(name)(batch(num_items_in_batch=57.0))
        kwargs = {"eps_high": 5.0} if name == "cispo" else {}
        want = loss_ref(surrogate=surrogate, aggregation="dapo", num_items=57.0, **kwargs)
        assert out.loss.item() == pytest.approx(want, rel=1e-12)


# ---- hand values -----------------------------------------------------------------------------
# hand_batch: one group, rewards (1, 0), A = ±a; completion 0: ρ = (1.5, 1), lp = (−0.5, −1);
# completion 1: ρ = 0.5, lp = −2, then padding whose lp − old = +1e4.
a = A_HAND


def test_hand_cispo_value_and_gradient():
    b = hand_batch()
    out = cispo(b, epsilon_high=1.2)
    # ℓ = −w·A·lp: w = (1.2, 1) and 0.5 → 0.6a + a − a, over 3 tokens.
    assert out.loss.item() == pytest.approx(0.6 * a / 3, rel=1e-12)
    out.loss.backward()
    want = torch.tensor([[-1.2 * a / 3, -a / 3], [0.5 * a / 3, 0.0]], dtype=F64)
    torch.testing.assert_close(b.logps.grad, want, rtol=1e-12, atol=1e-15)
    assert out.metrics["cispo_clip_ratio"] == pytest.approx(1 / 3)


def test_hand_sapo_value_and_on_policy_gradient_is_grpos():
    s0 = -(4 * sigmoid(0.5) * a + 2 * a) / 2
    s1 = 4 * sigmoid(1.05 * -0.5) / 1.05 * a
    assert sapo(hand_batch()).loss.item() == pytest.approx((s0 + s1) / 2, rel=1e-12)
    on_sapo = make_batch(LOGPS, old=None)
    on_grpo = make_batch(LOGPS, old=None)
    sapo(on_sapo).loss.backward()
    grpo(on_grpo).loss.backward()
    torch.testing.assert_close(on_sapo.logps.grad, on_grpo.logps.grad, rtol=1e-12, atol=1e-15)


def test_hand_vespo_value_and_gradient():
    phi0 = math.exp(3 + 2 * math.log(1.5) - 3 * 1.5)  # A ≥ 0: k = 2, λ = 3
    phi1 = math.exp(2 + 3 * math.log(0.5) - 2 * 0.5)  # A < 0: k = 3, λ = 2
    b = hand_batch()
    out = vespo(b)
    total = phi0 * a * 0.5 + phi0 * a * 1.0 - phi1 * a * 2.0
    assert out.loss.item() == pytest.approx(total / 3, rel=1e-12)
    assert out.metrics["vespo/phi_seq_mean"] == pytest.approx((phi0 + phi1) / 2, rel=1e-12)
    out.loss.backward()  # φ is a constant weight: ∂ℓ/∂lp = −φ·A
    want = torch.tensor([[-phi0 * a / 3, -phi0 * a / 3], [phi1 * a / 3, 0.0]], dtype=F64)
    torch.testing.assert_close(b.logps.grad, want, rtol=1e-12, atol=1e-15)


def test_hand_luspo_is_gspo_times_length():
    # s_0 = sqrt(1.5) → 1.0004 on 2 tokens, s_1 = 0.5 → 0.9997 (A < 0) on 1 token.
    assert luspo(hand_batch()).loss.item() == pytest.approx((-2 * 1.0004 + 0.9997) / 2 * a, rel=1e-12)
    assert gspo(hand_batch()).loss.item() == pytest.approx((-1.0004 + 0.9997) / 2 * a, rel=1e-12)


def two_tokens(**fields):
    """One group (1, 0), one token each: ρ = 2 (A = +a) and ρ = 3 (A = −a)."""
    return make_batch(
        np.array([[-1.0], [-1.0]]),
        mask=np.ones((2, 1)),
        rewards=np.array([1.0, 0.0]),
        group_ids=np.array([0, 0]),
        old=np.array([[-1.0 - math.log(2.0)], [-1.0 - math.log(3.0)]]),
        **fields,
    )


def test_hand_delta_bounds_the_unclipped_term():
    assert grpo(two_tokens()).loss.item() == pytest.approx((-1.2 + 3.0) / 2 * a, rel=1e-12)
    b = two_tokens()
    out = grpo(b, delta=2.5)
    assert out.loss.item() == pytest.approx((-1.2 + 2.5) / 2 * a, rel=1e-12)
    out.loss.backward()
    assert torch.all(b.logps.grad == 0)  # one token clipped by ε, the other by δ
    with pytest.raises(DmpoError, match=r"no parameter\(s\) \['delta'\]"):
        objectives.get("cispo")(two_tokens(), delta=2.5)


HAND_ENT = np.array([[1.0, 3.0], [2.0, 7.0]])  # the 7.0 is padding


def test_hand_top_entropy_quantile():
    # Real entropies (1, 3, 2): the median 2 keeps tokens (0, 1) and (1, 0).
    out = grpo(hand_batch(entropies=torch.tensor(HAND_ENT)), top_entropy_quantile=0.5)
    assert out.loss.item() == pytest.approx((-a / 2 + 0.8 * a) / 2, rel=1e-12)
    # q = 0 keeps only the highest-entropy token; a given threshold overrides the batch's own.
    only_top = grpo(hand_batch(entropies=torch.tensor(HAND_ENT)), top_entropy_quantile=0.0)
    assert only_top.loss.item() == pytest.approx(-a / 2 / 2, rel=1e-12)
    given = grpo(hand_batch(entropies=torch.tensor(HAND_ENT)), top_entropy_quantile=0.5,
                 entropy_threshold=torch.tensor(2.5))  # fmt: skip
    assert given.loss.item() == only_top.loss.item()


def test_hand_entropy_bonus_value_and_gradient():
    entropies = torch.tensor(HAND_ENT, requires_grad=True)
    out = grpo(hand_batch(entropies=entropies), entropy_coef=0.3)
    policy = grpo(hand_batch()).loss.item()
    assert out.loss.item() == pytest.approx(policy - 0.3 * 2.0, rel=1e-12)
    assert out.metrics["policy_loss"] == pytest.approx(policy, rel=1e-12)
    out.loss.backward()
    torch.testing.assert_close(entropies.grad, torch.tensor([[-0.1, -0.1], [-0.1, 0.0]], dtype=F64))
    # With the quantile mask, the bonus averages over the tokens the policy term acts on.
    entropies.grad = None
    masked = grpo(hand_batch(entropies=entropies), entropy_coef=0.3, top_entropy_quantile=0.5)
    masked.loss.backward()
    torch.testing.assert_close(entropies.grad, torch.tensor([[0.0, -0.15], [-0.15, 0.0]], dtype=F64))


def test_hand_off_policy_mask():
    # Completion 1 (A < 0) has mean log(π_old/π) = −ln 0.5 ≈ 0.69: dropped at 0.5, kept at 1.
    dropped = grpo(hand_batch(), off_policy_mask_threshold=0.5)
    assert dropped.loss.item() == pytest.approx((-2.2 / 2 + 0) / 2 * a, rel=1e-12)
    kept = grpo(hand_batch(), off_policy_mask_threshold=1.0)
    assert kept.loss.item() == grpo(hand_batch()).loss.item()
    # A = 0 counts as non-negative (kept); NaN sampler log-probs are no evidence.
    sampling = torch.tensor(HAND_LOGPS) + torch.tensor([[0.0, 0.0], [float("nan"), 0.0]])
    nan_out = grpo(hand_batch(sampling_logps=sampling), off_policy_mask_threshold=0.5)
    assert nan_out.loss.item() == grpo(hand_batch()).loss.item()


def test_hand_sequence_level_option_is_gspo():
    seq = grpo(hand_batch(), importance_sampling_level="sequence", epsilon_low=3e-4,
               epsilon_high=4e-4)  # fmt: skip
    assert seq.loss.item() == gspo(hand_batch()).loss.item()
    token = gspo(hand_batch(), importance_sampling_level="token")
    assert token.loss.item() == grpo(hand_batch(), epsilon_low=3e-4, epsilon_high=4e-4).loss.item()


# ---- gradients -------------------------------------------------------------------------------
GRADCHECK_CASES = [
    ("sapo", {}),
    ("sapo", {"importance_sampling_level": "sequence", "off_policy_mask_threshold": 0.0}),
    ("luspo", {"epsilon_low": 0.05, "epsilon_high": 0.08}),
    ("grpo", {"delta": 1.1}),
    ("dapo", {"importance_sampling_level": "sequence", "epsilon_low": 0.05, "epsilon_high": 0.08}),
    ("grpo", {"top_entropy_quantile": 0.43, "entropy_coef": 0.2}),
    ("grpo", {"off_policy_mask_threshold": 0.0}),
]


@pytest.mark.parametrize(("name", "params"), GRADCHECK_CASES)
@pytest.mark.parametrize("with_kl", [False, True])
def test_gradcheck(name, params, with_kl):
    def loss(logps: torch.Tensor, entropies: torch.Tensor) -> torch.Tensor:
        b = make_batch(logps, ref=REF if with_kl else None, entropies=entropies)
        extra = {"beta_kl": 0.1, "kl_bias_correction": True} if with_kl else {}
        return objectives.get(name)(b, **params, **extra).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    entropies = torch.tensor(ENT, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(loss, (logps, entropies), eps=1e-6, atol=1e-8, rtol=1e-6)


@pytest.mark.parametrize("name", ["cispo", "vespo"])
def test_detached_weight_gradient(name):
    # cispo and vespo weight lp by a constant (sg[·]) weight: ∂L/∂lp_t = −w_t·A·mask / tokens.
    b = batch()
    params = {"epsilon_high": 1.1} if name == "cispo" else {}
    objectives.get(name)(b, **params).loss.backward()
    adv = advantages_ref(REWARDS, GROUP_IDS)
    lr = (LOGPS - OLD) * MASK
    if name == "cispo":
        w = np.minimum(np.exp(lr), 1.1)
    else:
        log_w = np.clip(lr.sum(1, keepdims=True), math.log(1e-8), 20)
        k = np.where(adv[:, None] >= 0, 2.0, 3.0)
        lam = np.where(adv[:, None] >= 0, 3.0, 2.0)
        w = np.exp(lam + k * log_w - lam * np.exp(log_w))
    want = -w * adv[:, None] * MASK / MASK.sum()
    np.testing.assert_allclose(b.logps.grad.numpy(), want, rtol=1e-12, atol=1e-15)


# ---- degenerate inputs, registry, errors -----------------------------------------------------
ALL_OPTIONS = {"top_entropy_quantile": 0.5, "entropy_coef": 0.1, "off_policy_mask_threshold": 0.0}


@pytest.mark.parametrize("name", [*NEW, "grpo-options"])
@pytest.mark.parametrize(
    ("dtype", "fill"),
    [(F64, -0.5), (torch.float32, -1e4), (torch.bfloat16, -0.5), (torch.bfloat16, -1e4)],
)
def test_degenerate_inputs_give_finite_loss_and_gradient(name, dtype, fill):
    b = degenerate_batch(dtype, fill)
    entropies = torch.rand(b.logps.shape, generator=torch.Generator().manual_seed(0)).to(dtype)
    entropies[1] = float("nan")  # padding of the empty completion
    b = dataclasses.replace(b, entropies=entropies.requires_grad_())
    if name == "grpo-options":
        out = grpo(b, beta_kl=0.01, delta=1.5, importance_sampling_level="sequence", **ALL_OPTIONS)
    else:
        out = NEW[name](b, beta_kl=0.01, **ALL_OPTIONS)
    out.loss.backward()
    assert out.loss.dtype == (F64 if dtype == F64 else torch.float32)
    assert torch.isfinite(out.loss)
    assert torch.isfinite(b.logps.grad).all() and torch.all(b.logps.grad[1] == 0)
    assert torch.isfinite(b.entropies.grad).all()
    assert all(math.isfinite(v) for v in out.metrics.values())


def test_registered_as_bases_with_defaults():
    assert set(NEW) <= set(objectives.names("group")) and set(NEW) <= set(BASES)
    assert objectives.get("cispo").params["epsilon_high"] == 5.0
    assert "epsilon_low" not in objectives.get("cispo").params
    luspo_params = objectives.get("luspo").params
    assert (luspo_params["epsilon_low"], luspo_params["epsilon_high"]) == (3e-4, 4e-4)
    assert luspo_params["importance_sampling_level"] == "sequence"
    assert objectives.get("gspo").params["importance_sampling_level"] == "sequence"
    for name in NEW:
        spec = objectives.get(name)
        assert spec.kind == "group" and spec.paper and spec.oracle and spec.summary
    for name in BASES:  # DMPO takes each as its base; λ = 0 is the base itself
        dm = objectives.get("dmpo")(batch(), base=name, lam=0.0).loss.item()
        assert dm == objectives.get(name)(batch()).loss.item(), name


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: grpo(batch(), importance_sampling_level="seq"), "importance_sampling_level"),
        (lambda: grpo(batch(), top_entropy_quantile=1.5), r"top_entropy_quantile must be in \[0, 1\]"),
        (lambda: grpo(make_batch(), top_entropy_quantile=0.5), r"batch\.entropies"),
        (lambda: grpo(make_batch(), entropy_coef=0.1), r"batch\.entropies"),
        (lambda: sapo(batch(), sapo_temperature_neg=0.0), "temperatures must be positive"),
        (lambda: vespo(batch(), delta=2.0), "no parameter|unexpected keyword"),
        (lambda: objectives.get("vespo")(batch(), delta=2.0), r"no parameter\(s\) \['delta'\]"),
        (lambda: objectives.get("dmpo")(batch(), base="sapo", epsilon_low=0.1), "no parameter"),
    ],
)
def test_user_errors(call, message):
    with pytest.raises((DmpoError, TypeError), match=message):
        call()
