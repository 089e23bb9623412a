"""DisCO, BRAIn and DGPO: values against numpy references, gradients, degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dmpo import objectives
from dmpo.errors import DmpoError
from dmpo.objectives import GroupBatch
from dmpo.objectives.brain import brain
from dmpo.objectives.dgpo import dgpo, dgpo_token_weights
from dmpo.objectives.disco import disco

F64 = torch.float64

# Three groups: 0 mixed (1 pos, 2 neg), 1 mixed (2 pos, 1 neg), 2 all correct (dropped by DisCO).
LOGPS = np.array(
    [
        [-0.5, -1.2, -0.3],
        [-2.0, -0.1, 0.0],
        [-0.7, 0.0, 0.0],
        [-1.5, -0.4, -0.9],
        [-0.2, -0.6, 0.0],
        [-1.1, -0.8, -0.3],
        [-0.9, -0.2, 0.0],
        [-0.4, 0.0, 0.0],
    ]
)
MASK = np.array(
    [
        [1, 1, 1],
        [1, 1, 0],
        [1, 0, 0],
        [1, 1, 1],
        [1, 1, 0],
        [1, 1, 1],
        [1, 1, 0],
        [1, 0, 0],
    ],
    dtype=float,
)
OLD_SHIFT = np.array(
    [
        [0.05, -0.02, 0.03],
        [0.01, 0.04, 0.0],
        [-0.03, 0.0, 0.0],
        [0.02, 0.02, -0.01],
        [0.06, -0.04, 0.0],
        [0.0, 0.03, 0.02],
        [-0.01, 0.05, 0.0],
        [0.04, 0.0, 0.0],
    ]
)
REWARDS = np.array([1.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0])
GROUP_IDS = np.array([7, 7, 7, 3, 3, 3, 9, 9])


def make_batch(
    logps: np.ndarray | torch.Tensor = LOGPS,
    *,
    mask: np.ndarray = MASK,
    rewards: np.ndarray = REWARDS,
    group_ids: np.ndarray = GROUP_IDS,
    old: np.ndarray | None = None,
    ref: np.ndarray | None = None,
    dtype: torch.dtype = F64,
    **extra: np.ndarray,
) -> GroupBatch:
    def tensor(a: np.ndarray | None) -> torch.Tensor | None:
        return None if a is None else torch.as_tensor(a, dtype=dtype)

    if not isinstance(logps, torch.Tensor):
        logps = torch.tensor(logps, dtype=dtype, requires_grad=True)
    return GroupBatch(
        logps=logps,
        mask=torch.as_tensor(mask, dtype=dtype),
        rewards=torch.as_tensor(rewards, dtype=dtype),
        group_ids=torch.as_tensor(group_ids),
        old_logps=tensor(old),
        ref_logps=tensor(ref),
        **{k: tensor(v) for k, v in extra.items()},
    )


def groups_of(group_ids: np.ndarray) -> list[np.ndarray]:
    return [np.flatnonzero(group_ids == g) for g in np.unique(group_ids)]


def logsumexp(x: np.ndarray) -> float:
    m = x.max()
    return float(m + math.log(np.exp(x - m).sum()))


def softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


# ---------------------------------------------------------------------------------------------
# numpy references


def disco_ref(logps, mask, rewards, group_ids, old, *, score, tau, form, delta, beta):
    ratio = np.exp(logps - old)
    n_tok = mask.sum(1)
    s = (logps * mask).sum(1) / n_tok if score == "logL" else (ratio * mask).sum(1) / n_tok
    total = 0.0
    for idx in groups_of(group_ids):
        pos = [i for i in idx if rewards[i] > 0.5]
        neg = [i for i in idx if rewards[i] <= 0.5]
        if not pos or not neg:
            continue
        mean_pos = np.mean(s[pos])
        if form == "basic":
            total += mean_pos - np.mean(s[neg])
        else:
            total += mean_pos - tau * logsumexp(s[neg] / tau)
    j = total / len(np.unique(group_ids))
    kl = ((old - logps) * mask).sum() / mask.sum()
    return -j + 0.5 * beta * max(kl - delta, 0.0) ** 2, j, kl


def brain_targets(logps, mask, rewards, group_ids, old, ref, beta_r):
    lp = (logps * mask).sum(1)
    log_q = (old * mask).sum(1)
    prior = np.zeros_like(lp) if ref is None else (ref * mask).sum(1)
    alpha = np.zeros_like(lp)
    beta_hat = np.zeros_like(lp)
    for idx in groups_of(group_ids):
        alpha[idx] = softmax(prior[idx] + rewards[idx] / beta_r - log_q[idx])
        beta_hat[idx] = softmax(lp[idx] - log_q[idx])
    return alpha, beta_hat


def grpo_advantages_ref(rewards, group_ids, eps=1e-4):
    adv = np.zeros_like(rewards)
    for idx in groups_of(group_ids):
        r = rewards[idx]
        std = r.std(ddof=1) if len(r) > 1 else 0.0
        adv[idx] = (r - r.mean()) / (std + eps)
    return adv


def dgpo_ref(logps, mask, rewards, group_ids, old, ent, hel, *, kappa, tau, vocab, eps=0.2):
    adv = grpo_advantages_ref(rewards, group_ids)
    per_completion = []
    weights = np.zeros_like(logps)
    for i in range(len(logps)):
        real = np.flatnonzero(mask[i])
        if len(real) == 0:
            per_completion.append(0.0)
            continue
        gate = (ent[i, real] / math.log(vocab)) ** kappa
        w = len(real) * softmax(hel[i, real] * gate / tau)
        weights[i, real] = w
        rho = np.exp(logps[i, real] - old[i, real])
        a = adv[i] * w
        loss_t = -np.minimum(rho * a, np.clip(rho, 1 - eps, 1 + eps) * a)
        per_completion.append(loss_t.mean())
    return float(np.mean(per_completion)), weights


OLD = LOGPS + OLD_SHIFT
REF = LOGPS - 0.3 * OLD_SHIFT[::-1] - 0.1
ENT = np.abs(np.sin(np.arange(24.0))).reshape(8, 3) * 3.0 + 0.1
HEL = np.abs(np.cos(np.arange(24.0) * 0.7)).reshape(8, 3) * 0.4


# ---------------------------------------------------------------------------------------------
# DisCO


@pytest.mark.parametrize(
    ("score", "form", "beta"),
    [("logL", "dro", 1e3), ("Lratio", "dro", 1e3), ("logL", "basic", 1e3), ("Lratio", "dro", 0.0)],
)
def test_disco_value_matches_numpy(score, form, beta):
    tau = 10.0 if score == "logL" else 1.0
    want, want_j, want_kl = disco_ref(
        LOGPS, MASK, REWARDS, GROUP_IDS, OLD, score=score, tau=tau, form=form, delta=1e-4, beta=beta
    )
    assert want_kl > 1e-4  # the constraint is active in this example
    out = disco(make_batch(old=OLD), score=score, form=form, beta_constraint=beta)
    assert out.loss.item() == pytest.approx(want, rel=1e-12, abs=1e-12)
    assert out.metrics["j"] == pytest.approx(want_j, rel=1e-12)
    assert out.metrics["kl"] == pytest.approx(want_kl, rel=1e-12)
    assert out.metrics["dropped_fraction"] == pytest.approx(1 / 3)


def test_disco_lse_hand_value():
    # One group: s = (0, -1) with the first positive, a third completion negative with s = -2.
    batch = make_batch(
        np.array([[0.0], [-1.0], [-2.0]]),
        mask=np.ones((3, 1)),
        rewards=np.array([1.0, 0.0, 0.0]),
        group_ids=np.zeros(3),
    )
    want_j = 0.0 - 10.0 * math.log(math.exp(-0.1) + math.exp(-0.2))
    out = disco(batch)
    assert out.loss.item() == pytest.approx(-want_j, rel=1e-14)


def test_disco_basic_is_mean_pos_minus_mean_neg():
    out = disco(make_batch(), form="basic")
    s = (LOGPS * MASK).sum(1) / MASK.sum(1)
    j = ((s[0] - s[1:3].mean()) + (s[3:5].mean() - s[5])) / 3
    assert out.loss.item() == pytest.approx(-j, rel=1e-12)
    assert out.metrics["kl"] == 0.0


def test_disco_dropped_groups_count_in_denominator():
    mixed = dict(mask=MASK[:3], rewards=REWARDS[:3], group_ids=np.zeros(3))
    alone = disco(make_batch(LOGPS[:3], **mixed)).metrics["j"]
    for extra_rewards in ([1.0, 1.0], [0.0, 0.0]):
        batch = make_batch(
            LOGPS[:5],
            mask=MASK[:5],
            rewards=np.concatenate([REWARDS[:3], extra_rewards]),
            group_ids=np.array([0, 0, 0, 1, 1]),
        )
        out = disco(batch)
        assert out.metrics["j"] == pytest.approx(alone / 2, rel=1e-12)
        assert out.metrics["dropped_fraction"] == 0.5


def test_disco_threshold_decides_positives():
    # Rewards 0.3/0.7: with threshold 0.5 group 0 is mixed, with threshold 0.2 all-positive.
    batch = make_batch(
        LOGPS[:3], mask=MASK[:3], rewards=np.array([0.7, 0.3, 0.3]), group_ids=np.zeros(3)
    )
    assert disco(batch).metrics["dropped_fraction"] == 0.0
    assert disco(batch, threshold=0.2).metrics["dropped_fraction"] == 1.0


def _grad(loss: torch.Tensor, leaf: torch.Tensor) -> torch.Tensor:
    (g,) = torch.autograd.grad(loss, leaf)
    return g


def test_disco_constraint_inactive_when_kl_within_delta():
    old = LOGPS + 0.5e-4 * MASK  # KL̂ = 0.5e-4 < δ = 1e-4
    batch = make_batch(old=old)
    out = disco(batch)
    assert out.metrics["kl"] == pytest.approx(0.5e-4, rel=1e-9)
    free = disco(batch, beta_constraint=0.0)
    assert out.loss.item() == free.loss.item() == pytest.approx(-out.metrics["j"], rel=1e-14)
    assert torch.equal(_grad(out.loss, batch.logps), _grad(free.loss, batch.logps))


def test_disco_constraint_gradient_matches_squared_hinge_step():
    """∇L = −∇J + sg[β·max(KL̂ − δ, 0)]·∇KL̂ (the paper's form), with KL̂ > δ."""
    batch = make_batch(old=OLD)
    out = disco(batch, score="Lratio")
    j_only = disco(batch, score="Lratio", beta_constraint=0.0).loss  # = −J
    logps, mask, old = batch.logps, batch.mask, batch.old_logps
    kl = ((old - logps) * mask).sum() / mask.sum()
    spec_form = j_only + (1e3 * torch.clamp(kl - 1e-4, min=0)).detach() * kl
    assert kl.item() > 1e-4
    torch.testing.assert_close(
        _grad(out.loss, logps), _grad(spec_form, logps), rtol=1e-12, atol=1e-14
    )


def test_disco_gradient_matches_official_detach_trick():
    """Official code: τ·LSE written as Σ_neg sg[softmax(s/τ)]·s; equal gradients, other value."""
    batch = make_batch()
    logps, mask = batch.logps, batch.mask
    s = (logps * mask).sum(1) / mask.sum(1)
    tau = 10.0
    surrogate = logps.new_zeros(())
    for lo, hi in ((0, 3), (3, 6)):
        g_s = s[lo:hi]
        pos = torch.as_tensor(REWARDS[lo:hi] > 0.5)
        weights = torch.softmax(g_s[~pos].detach() / tau, dim=0)
        surrogate = surrogate - (g_s[pos].mean() - (weights * g_s[~pos]).sum())
    surrogate = surrogate / 3
    out = disco(batch)
    torch.testing.assert_close(
        _grad(out.loss, logps), _grad(surrogate, logps), rtol=1e-12, atol=1e-14
    )
    assert out.loss.item() != pytest.approx(surrogate.item())


@pytest.mark.parametrize(("score", "form"), [("logL", "dro"), ("Lratio", "dro"), ("logL", "basic")])
def test_disco_gradcheck(score, form):
    def fn(logps: torch.Tensor) -> torch.Tensor:
        return disco(make_batch(logps, old=OLD), score=score, form=form, beta_constraint=50.0).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (logps,), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# BRAIn


def test_brain_value_matches_numpy():
    beta_r = 0.5
    alpha, beta_hat = brain_targets(LOGPS, MASK, REWARDS, GROUP_IDS, OLD, REF, beta_r)
    want = -np.sum(alpha * np.log(beta_hat)) / 3
    out = brain(make_batch(old=OLD, ref=REF), beta_r=beta_r)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    kl = np.sum(alpha * (np.log(alpha) - np.log(beta_hat))) / 3
    assert out.metrics["kl_target_policy"] == pytest.approx(kl, rel=1e-10)


def test_brain_two_completion_hand_value():
    # Flat prior, on-policy: β̂ = (1/2, 1/2), α̂ ∝ exp(r − lp) = (e^{1+1}, e^{0+2}) → uniform.
    batch = make_batch(
        np.array([[-1.0], [-2.0]]), mask=np.ones((2, 1)), rewards=np.array([1.0, 0.0]),
        group_ids=np.zeros(2),
    )  # fmt: skip
    out = brain(batch)
    assert out.loss.item() == pytest.approx(math.log(2), rel=1e-14)
    assert out.metrics["target_ess"] == pytest.approx(1.0, rel=1e-14)


@pytest.mark.parametrize("old", [None, OLD])
def test_brain_gradient_identity(old):
    """Sampler proposal, flat prior: ∂L/∂lp_{i,t} = (β̂_i − α̂_i)/K on real tokens (dmpo-ce form)."""
    batch = make_batch(old=old)
    out = brain(batch, beta_r=0.7)
    sampler = LOGPS if old is None else old
    alpha, beta_hat = brain_targets(LOGPS, MASK, REWARDS, GROUP_IDS, sampler, None, 0.7)
    want = (beta_hat - alpha)[:, None] * MASK / 3
    torch.testing.assert_close(
        _grad(out.loss, batch.logps), torch.tensor(want), rtol=1e-12, atol=1e-14
    )


def test_brain_prior_proposal():
    # Proposal = prior: α̂ = softmax(r/β_r), β̂ = softmax(lp − ref).
    out = brain(make_batch(old=OLD, ref=REF), proposal="prior")
    lp, ref = (LOGPS * MASK).sum(1), (REF * MASK).sum(1)
    want = 0.0
    for idx in groups_of(GROUP_IDS):
        want -= np.sum(softmax(REWARDS[idx]) * np.log(softmax(lp[idx] - ref[idx])))
    assert out.loss.item() == pytest.approx(want / 3, rel=1e-12)
    with pytest.raises(DmpoError, match="ref_logps"):
        brain(make_batch(), proposal="prior")


def test_brain_gradcheck():
    def fn(logps: torch.Tensor) -> torch.Tensor:
        return brain(make_batch(logps, old=OLD, ref=REF), beta_r=0.5).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (logps,), eps=1e-6, atol=1e-7)


# ---------------------------------------------------------------------------------------------
# DGPO

# ρ = exp(lp − old): some tokens clip (1.3 with A > 0, 0.7 with A < 0), some lie outside the
# range on the unclipped side (1.25 with A < 0), none near a kink of the min/clip.
RATIOS = np.array(
    [
        [1.3, 0.9, 1.05],
        [0.7, 1.1, 1.0],
        [1.25, 1.0, 1.0],
        [0.95, 1.02, 0.75],
        [1.1, 0.85, 1.0],
        [1.35, 0.9, 0.97],
        [1.0, 1.4, 1.0],
        [0.6, 1.0, 1.0],
    ]
)
DGPO_OLD = LOGPS - np.log(RATIOS)


def test_dgpo_value_matches_numpy():
    kw = dict(kappa=1.5, tau=0.5, vocab=50)
    want, want_w = dgpo_ref(LOGPS, MASK, REWARDS, GROUP_IDS, DGPO_OLD, ENT, HEL, **kw)
    batch = make_batch(old=DGPO_OLD, entropies=ENT, hellinger=HEL)
    out = dgpo(batch, kappa=1.5, tau=0.5, vocab_size=50)
    assert out.loss.item() == pytest.approx(want, rel=1e-12)
    weights = dgpo_token_weights(
        batch.entropies, batch.hellinger, batch.mask, kappa=1.5, tau=0.5, vocab_size=50
    )
    torch.testing.assert_close(weights, torch.tensor(want_w), rtol=1e-12, atol=0)
    assert out.metrics["clip_ratio"] == pytest.approx(2 / 17)  # ρ = 1.3 (A > 0), 0.7 (A < 0)


def test_dgpo_weights_hand_value():
    # Two real tokens, |V| = 4, H = (log 4, 0): the gate (H/log|V|)^κ is (1, 0).
    ent = torch.tensor([[math.log(4.0), 0.0, 5.0]], dtype=F64)
    hel = torch.tensor([[0.5, 0.3, 9.0]], dtype=F64)
    mask = torch.tensor([[1.0, 1.0, 0.0]], dtype=F64)
    w = dgpo_token_weights(ent, hel, mask, kappa=1.0, tau=0.5, vocab_size=4)
    # logits (0.5·1/0.5, 0.3·0/0.5) = (1, 0): w = 2·(e, 1)/(e + 1); padding 0.
    e = math.e
    torch.testing.assert_close(w, torch.tensor([[2 * e / (e + 1), 2 / (e + 1), 0.0]], dtype=F64))


def test_dgpo_uniform_gate_is_grpo():
    """d_t·H_t constant within each completion → w_t = 1 and the loss is GRPO's."""
    ent = np.ones_like(LOGPS) * 2.0
    hel = np.repeat(np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8])[:, None], 3, axis=1)
    batch = make_batch(old=DGPO_OLD, entropies=ent, hellinger=hel)
    weights = dgpo_token_weights(
        batch.entropies, batch.hellinger, batch.mask, kappa=1.0, tau=0.5, vocab_size=1000
    )
    torch.testing.assert_close(weights, batch.mask, rtol=1e-14, atol=0)

    adv = grpo_advantages_ref(REWARDS, GROUP_IDS)
    rho = np.exp(LOGPS - DGPO_OLD)
    a = adv[:, None]
    per_token = -np.minimum(rho * a, np.clip(rho, 0.8, 1.2) * a)
    grpo = np.mean((per_token * MASK).sum(1) / MASK.sum(1))
    out = dgpo(batch, vocab_size=1000)
    assert out.loss.item() == pytest.approx(grpo, rel=1e-12)


def test_dgpo_uses_given_advantages():
    adv = np.linspace(-1.0, 1.0, 8)
    batch = make_batch(entropies=ENT, hellinger=HEL, advantages=adv)
    out = dgpo(batch, vocab_size=50)
    # On-policy: ρ = 1, so L = −mean_i A_i·mean_t w_t = −mean_i A_i.
    assert out.loss.item() == pytest.approx(-adv.mean(), abs=1e-14)
    _, weights = dgpo_ref(
        LOGPS, MASK, REWARDS, GROUP_IDS, LOGPS, ENT, HEL, kappa=1.0, tau=0.5, vocab=50
    )
    want = -adv[:, None] * weights / MASK.sum(1, keepdims=True) / len(adv)
    torch.testing.assert_close(
        _grad(out.loss, batch.logps), torch.tensor(want), rtol=1e-12, atol=1e-15
    )


def test_dgpo_gradcheck():
    def fn(logps: torch.Tensor) -> torch.Tensor:
        batch = make_batch(logps, old=DGPO_OLD, entropies=ENT, hellinger=HEL)
        return dgpo(batch, vocab_size=50).loss

    logps = torch.tensor(LOGPS, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(fn, (logps,), eps=1e-6, atol=1e-7)


def test_dgpo_weights_carry_no_gradient():
    ent = torch.tensor(ENT, requires_grad=True)
    hel = torch.tensor(HEL, requires_grad=True)
    batch = make_batch(old=DGPO_OLD)
    batch.entropies, batch.hellinger = ent, hel
    dgpo(batch, vocab_size=50).loss.backward()
    assert ent.grad is None and hel.grad is None


@pytest.mark.parametrize("missing", ["entropies", "hellinger", "both"])
def test_dgpo_missing_inputs_raise(missing):
    extra = {"entropies": ENT, "hellinger": HEL}
    for name in ("entropies", "hellinger") if missing == "both" else (missing,):
        del extra[name]
    with pytest.raises(DmpoError, match="entropies" if missing != "hellinger" else "hellinger"):
        dgpo(make_batch(**extra), vocab_size=50)


def test_dgpo_needs_vocab_size():
    with pytest.raises(DmpoError, match="vocab_size"):
        dgpo(make_batch(entropies=ENT, hellinger=HEL))


# ---------------------------------------------------------------------------------------------
# all three: registry, bad parameters, degenerate inputs


def test_registered_as_group_objectives():
    group = objectives.names(kind="group")
    for name in ("disco", "brain", "dgpo"):
        assert name in group
        assert objectives.get(name).paper
    assert objectives.get("disco").params["delta"] == 1e-4


@pytest.mark.parametrize(
    ("fn", "params"),
    [
        (disco, {"score": "ratio"}),
        (disco, {"form": "dpo"}),
        (disco, {"tau": 0.0}),
        (brain, {"proposal": "policy"}),
        (brain, {"beta_r": 0.0}),
        (dgpo, {"vocab_size": 1}),
        (dgpo, {"vocab_size": 50, "tau": -1.0}),
    ],
)
def test_bad_parameters_raise(fn, params):
    with pytest.raises(DmpoError):
        fn(make_batch(entropies=ENT, hellinger=HEL), **params)


# Group of one (id 0), equal rewards (id 1), empty and one-token completions (id 2).
DEGENERATE = dict(
    mask=np.array([[1, 1, 0], [1, 0, 0], [1, 1, 1], [0, 0, 0], [1, 0, 0], [0, 0, 0]], dtype=float),
    rewards=np.array([1.0, 0.5, 0.5, 1.0, 0.0, 0.0]),
    group_ids=np.array([0, 1, 1, 2, 2, 2]),
)
DEGENERATE_CASES = [
    ("disco", lambda b: disco(b)),
    ("disco-lratio", lambda b: disco(b, score="Lratio")),
    ("disco-basic", lambda b: disco(b, form="basic")),
    ("brain", lambda b: brain(b)),
    ("brain-ref", lambda b: brain(b, proposal="prior")),
    ("dgpo", lambda b: dgpo(b, vocab_size=32000)),
]


def _degenerate_batch(scale: float, dtype: torch.dtype, *, on_policy: bool) -> GroupBatch:
    rng = np.random.default_rng(0)
    logps = scale * rng.uniform(0.5, 1.0, size=(6, 3))
    pad = DEGENERATE["mask"] == 0
    logps[pad] = -1e30  # garbage in padding must not leak
    old = None if on_policy else logps + rng.uniform(-0.05, 0.05, size=(6, 3))
    return make_batch(
        logps, old=old, ref=logps - 0.1, dtype=dtype,
        entropies=rng.uniform(0, 5, size=(6, 3)), hellinger=rng.uniform(0, 1, size=(6, 3)),
        **DEGENERATE,
    )  # fmt: skip


@pytest.mark.parametrize(("name", "fn"), DEGENERATE_CASES, ids=[c[0] for c in DEGENERATE_CASES])
@pytest.mark.parametrize(
    ("scale", "dtype", "on_policy"),
    [(-1.0, F64, False), (-1e4, F64, False), (-1e4, torch.float32, True), (-1.0, torch.bfloat16, False), (-1e4, torch.bfloat16, True)],
    ids=["f64", "f64-1e4", "f32-1e4", "bf16", "bf16-1e4"],
)  # fmt: skip
def test_degenerate_inputs_finite(name, fn, scale, dtype, on_policy):
    batch = _degenerate_batch(scale, dtype, on_policy=on_policy)
    out = fn(batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    grad = batch.logps.grad
    assert grad is not None and grad.dtype == dtype
    assert torch.isfinite(grad).all()
    assert (grad[DEGENERATE["mask"] == 0] == 0).all()
    assert all(math.isfinite(v) for v in out.metrics.values())


def test_degenerate_groups_give_zero_signal():
    """A group of one and an equal-reward group: DisCO drops them and DGPO's advantage is 0;
    BRAIn gives the group of one no gradient (α̂ = β̂ = 1)."""
    batch = _degenerate_batch(-1.0, F64, on_policy=True)
    assert disco(batch).metrics["dropped_fraction"] == pytest.approx(2 / 3)
    for out in (disco(batch), dgpo(batch, vocab_size=32000)):
        assert (_grad(out.loss, batch.logps)[:3] == 0).all()
    assert (_grad(brain(batch).loss, batch.logps)[0] == 0).all()
