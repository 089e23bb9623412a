"""DMPOConfig: how GRPOConfig fields and objective_kwargs reach the objective, and the errors."""

from __future__ import annotations

import pytest

from dmpo.errors import DmpoError

pytest.importorskip("trl")
pytestmark = pytest.mark.trl

from dmpo.engines.trl.config import DMPOConfig, GroupObjectiveConfig  # noqa: E402


def config(**kwargs) -> GroupObjectiveConfig:
    base = {"output_dir": "unused", "num_generations": 4, "per_device_train_batch_size": 8}
    return DMPOConfig.for_cpu(**{**base, **kwargs})


def test_defaults_are_the_paper_dmpo_and_trl_fields_map_onto_the_objective():
    args = config()
    assert args.objective == "dmpo" and args.group_split == "whole"
    assert args.objective_kwargs == {}
    assert not args.bf16 and args.use_cpu and args.report_to == []
    params = args.objective_params()
    assert (params["lam"], params["alpha"], params["base"]) == (2.0, pytest.approx(1 / 15), "grpo")
    assert params["lam"] == 2.0 and params["target_from"] == "reward" and params["divergence"] == "mse"
    assert (params["epsilon_low"], params["epsilon_high"], params["beta_kl"]) == (0.2, 0.2, 0.0)
    assert params["scale_rewards"] == "group"
    # grpo, DMPO's base, has no max_completion_length or mask_truncated: they are not passed.
    assert "max_completion_length" not in params and "mask_truncated" not in params


def test_user_values_reach_the_objective():
    args = config(epsilon=0.1, beta=0.04, scale_rewards="batch",
                  objective_kwargs={"adv_eps": 1e-6, "lam": 0.5, "divergence": "ce"})
    params = args.objective_params()
    assert (params["epsilon_low"], params["epsilon_high"], params["beta_kl"]) == (0.1, 0.1, 0.04)
    assert params["scale_rewards"] == "batch" and params["adv_eps"] == 1e-6
    assert params["lam"] == 0.5 and params["divergence"] == "ce"


@pytest.mark.parametrize(
    ("objective", "fields"),
    [
        ("dapo", {"epsilon": 0.2, "epsilon_high": 0.28}),
        ("gspo", {"epsilon": 3e-4, "epsilon_high": 4e-4}),
        ("dr_grpo", {"scale_rewards": "none"}),
        ("dmpo-recipe", {"epsilon_high": 0.28}),
    ],
)
def test_fields_left_at_trl_defaults_take_the_objective_defaults(objective, fields):
    args = config(objective=objective)
    for name, value in fields.items():
        assert getattr(args, name) == value, name


def test_presets_reach_the_objective_under_their_own_names():
    params = config(objective="dmpo-recipe").objective_params()
    assert (params["target_from"], params["normalize"], params["skip_zero_signal_groups"]) == (
        "advantage", "sample", True)


def test_a_user_epsilon_sets_both_clip_bounds_as_in_trl():
    args = config(objective="dapo", epsilon=0.1)
    assert args.objective_params()["epsilon_high"] == 0.1
    assert config(objective="dapo", epsilon_high=0.3).objective_params()["epsilon_high"] == 0.3


def test_dr_grpo_gets_max_completion_length_and_dmpo_base_decides_which_fields_pass():
    assert config(objective="dr_grpo", max_completion_length=24).objective_params()["max_completion_length"] == 24
    params = config(objective_kwargs={"base": "dapo"}, mask_truncated_completions=True).objective_params()
    assert params["mask_truncated"] is True and params["base"] == "dapo"
    assert "beta_kl" not in config(objective="dmpo-pure").objective_params()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "nope"}, r"unknown objective 'nope'; valid objectives: \[.*'dmpo'"),
        ({"objective": "dpo"}, "pair objective"),
        ({"objective": "dgpo"}, "full-vocabulary logits"),
        ({"objective": "passk", "objective_kwargs": {"k": 5}}, r"k \(5\) must not exceed the group size"),
        ({"objective_kwargs": {"lam": float("nan")}}, "lam must be finite"),
        ({"objective_kwargs": {"temperature": 1.0}}, r"no parameter\(s\) \['temperature'\]; parameters settable"),
        ({"objective": "grpo", "objective_kwargs": {"lam": 1.0}}, r"objective 'grpo' has no parameter\(s\) \['lam'\]"),
        ({"objective_kwargs": {"epsilon_low": 0.1}}, "config field 'epsilon'"),
        ({"objective_kwargs": {"coefficients": None}}, "the trainer sets it"),
        ({"group_split": "whole", "per_device_train_batch_size": 6},
         r"per_device_train_batch_size \(6\) must be a multiple of num_generations \(4\)"),
        ({"per_device_train_batch_size": 6},
         r"generation_batch_size \(6\) must be divisible by num_generations \(4\)\. A generation batch"),
        ({"objective": "disco", "beta": 0.1}, "has no 'beta_kl'"),
        ({"objective": "disco", "top_entropy_quantile": 0.5}, "has no 'top_entropy_quantile'"),
        ({"importance_sampling_level": "seq"}, "importance_sampling_level must be one of"),
        ({"group_split": "groups"}, "group_split must be one of"),
        ({"objective": "grpo", "group_split": "coefficient"}, "distribution-matching term"),
    ],
)
def test_impossible_configurations_are_clear_errors(kwargs, match):
    with pytest.raises(DmpoError, match=match):
        config(**kwargs)


def test_coefficient_form_allows_groups_larger_than_the_device_batch():
    args = config(group_split="coefficient", per_device_train_batch_size=2, gradient_accumulation_steps=2)
    assert args.steps_per_generation == 2


# ---- groups split over micro-batches ------------------------------------------------------------
SPLIT = {"per_device_train_batch_size": 2, "gradient_accumulation_steps": 2}


@pytest.mark.parametrize(
    "objective",
    ["dmpo", "dmpo-recipe", "dmpo-ce", "dmpo-pure", "dmpo-coef", "grpo", "bnpo", "dapo", "dr_grpo",
     "gspo", "luspo", "cispo", "sapo", "vespo", "clip_cov", "kl_cov", "flowrl"],
)  # fmt: skip
def test_auto_splits_groups_for_the_objectives_that_allow_it(objective):
    assert config(objective=objective).group_split == "whole"  # a multiple of the group size
    assert config(objective=objective, **SPLIT).group_split == "rows"
    assert config(objective=objective, group_split="rows").group_split == "rows"


def test_split_groups_allow_several_iterations_and_steps_per_generation():
    # The DM coefficients are recomputed whenever the policy moved (no longer refused off-policy).
    assert config(objective="dmpo-coef", num_iterations=2).num_iterations == 2
    args = config(group_split="coefficient", steps_per_generation=2)
    assert args.steps_per_generation == 2 and args.group_split == "coefficient"
    assert config(num_iterations=3, steps_per_generation=4, **{**SPLIT, "gradient_accumulation_steps": 1})
    assert config(objective="gpg", objective_kwargs={"alpha_scaling": False}, **SPLIT).group_split == "rows"


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "disco"}, "'disco', which needs whole groups in every micro-batch: its J_g"),
        ({"objective": "brain"}, "'brain', which needs whole groups .*softmaxes over each whole group"),
        ({"objective": "passk", "objective_kwargs": {"k": 2}}, "'passk', which needs whole groups .*k-subsets"),
        ({"objective": "gpg"}, r"'gpg', which needs whole groups .*α = B/\(B − M\).*alpha_scaling=False"),
        ({"objective": "dapo", "objective_kwargs": {"dynamic_sampling": True}}, "'dapo', which .*dynamic_sampling"),
        ({"objective_kwargs": {"base": "dapo", "dynamic_sampling": True}},
         "'dmpo', which needs whole groups .*its base 'dapo': dynamic_sampling drops the groups"),
    ],
)  # fmt: skip
def test_objectives_that_need_whole_groups_are_refused_on_split_groups(kwargs, match):
    with pytest.raises(DmpoError, match=r"per_device_train_batch_size \(2\) must be a multiple of "
                                        r"num_generations \(4\) for objective " + match):
        config(**kwargs, **SPLIT)
    with pytest.raises(DmpoError, match="objective " + match + ".*cannot train with group_split='rows', which "
                                        "lets a group straddle micro-batches"):
        config(**kwargs, group_split="rows")
    assert config(**kwargs).group_split == "whole"  # whole groups: fine


# ---- objective and loss_type -------------------------------------------------------------------
def generic(**kwargs) -> GroupObjectiveConfig:
    base = {"output_dir": "unused", "num_generations": 4, "per_device_train_batch_size": 8}
    return GroupObjectiveConfig.for_cpu(**{**base, **kwargs})


def test_without_objective_it_is_trls_default_loss_with_trls_values():
    args = generic()
    assert args.objective is None and args.objective_name == "dapo" and args.loss_type == "dapo"
    assert args.epsilon_high is None  # TRL's "same as epsilon", not dapo's own 0.28
    params = args.objective_params()
    assert (params["epsilon_low"], params["epsilon_high"]) == (0.2, 0.2)
    assert params["kl_bias_correction"] is True and params["scale_rewards"] == "group"
    assert params["importance_sampling_level"] == "token"


@pytest.mark.parametrize("loss_type", ["grpo", "bnpo", "dapo", "dr_grpo", "cispo", "sapo", "luspo", "vespo"])
def test_loss_type_names_the_objective_with_trls_values(loss_type):
    # epsilon does nothing in sapo and vespo (no clip): set there, it is an error (below).
    args = generic(loss_type=loss_type, **({} if loss_type in ("sapo", "vespo") else {"epsilon": 0.3}))
    assert args.objective is None and args.objective_name == loss_type == args.loss_type
    params = args.objective_params()
    assert params["scale_rewards"] == "group" and params["kl_bias_correction"] is True
    assert params.get("epsilon_high", 0.3) == 0.3  # TRL: epsilon_high=None follows epsilon
    if "importance_sampling_level" in params:
        assert params["importance_sampling_level"] == "token"
    if loss_type == "dr_grpo":
        assert params["max_completion_length"] == args.max_completion_length


def test_dmpo_config_loss_type_picks_dmpos_base():
    args = config(loss_type="dapo")
    assert args.objective == "dmpo" and args.objective_kwargs == {"base": "dapo"}
    params = args.objective_params()
    assert params["base"] == "dapo" and params["epsilon_high"] == 0.28  # the base's own default
    assert config(loss_type="grpo").objective_kwargs == {}  # DMPO's base already
    assert config(loss_type="dapo", objective_kwargs={"base": "dapo"}).loss_type == "dapo"
    assert config(loss_type="sapo").objective_params()["sapo_temperature_neg"] == 1.05


@pytest.mark.parametrize(
    ("objective", "loss_type"),
    [("dapo", "dapo"), ("gspo", "grpo"), ("luspo", "luspo"), ("dmpo", "grpo"), ("dmpo-recipe", "grpo"),
     ("dmpo-pure", None), ("disco", None), ("gpg", None)],
)  # fmt: skip
def test_an_explicit_objective_shows_its_trl_loss_type(objective, loss_type):
    args = config(objective=objective)
    assert args.loss_type == loss_type and args.objective_name == objective
    again = config(objective=objective, loss_type=args.loss_type)  # consistent with itself
    assert again.objective_params() == args.objective_params()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"objective": "grpo", "loss_type": "dr_grpo"},
         r"loss_type='dr_grpo' contradicts objective='grpo': objective 'grpo' is TRL's 'grpo'"),
        ({"objective": "gspo", "loss_type": "bnpo"}, "contradicts objective='gspo'"),
        ({"loss_type": "dapo", "objective_kwargs": {"base": "bnpo"}},
         r"contradicts objective='dmpo': objective_kwargs base='bnpo'"),
        ({"objective": "dmpo-pure", "loss_type": "grpo"}, "has no base surrogate"),
        ({"objective": "disco", "loss_type": "dapo"}, "has its own loss"),
        ({"loss_type": "ppo"}, r"loss_type must be one of TRL's \['grpo'"),
        ({"objective": "sapo", "delta": 1.5}, "delta=1.5 has no effect"),
        ({"loss_type": "vespo", "epsilon": 0.3}, "epsilon=0.3 has no effect"),
        ({"objective": "grpo", "sapo_temperature_pos": 2.0}, "has no 'sapo_temperature_pos'"),
        ({"objective": "dapo", "vespo_k_pos": 1.0}, "has no 'vespo_k_pos'"),
        ({"objective": "cispo", "epsilon": 0.1, "epsilon_high": 4.0}, "epsilon=0.1 has no effect"),
        ({"objective": "disco", "entropy_coef": 0.1}, "has no 'entropy_coef'"),
        ({"objective": "disco", "use_adaptive_entropy": True}, "use_adaptive_entropy=True has no effect"),
        ({"top_entropy_quantile": 1.5}, r"top_entropy_quantile must be in \[0, 1\]"),
        ({"delta": "abc"}, "delta must be a finite number or None, got 'abc'"),
        ({"off_policy_mask_threshold": float("nan")}, "off_policy_mask_threshold must be a finite"),
        ({"objective_kwargs": {"entropy_threshold": 1.0}}, "the trainer sets it"),
        ({"objective_kwargs": {"delta": 1.0}}, "config field 'delta'"),
    ],
)  # fmt: skip
def test_contradictions_and_unused_loss_options_are_clear_errors(kwargs, match):
    with pytest.raises(DmpoError, match=match):
        config(**kwargs)
    if "objective" in kwargs or "objective_kwargs" in kwargs:
        return
    with pytest.raises(DmpoError, match=match):
        generic(**kwargs)


def test_trl_loss_options_reach_the_objective():
    args = config(delta=1.5, importance_sampling_level="sequence", top_entropy_quantile=0.2,
                  entropy_coef=0.01, off_policy_mask_threshold=0.5)  # fmt: skip
    params = args.objective_params()
    assert (params["delta"], params["importance_sampling_level"], params["top_entropy_quantile"]) == (
        1.5, "sequence", 0.2)
    assert (params["entropy_coef"], params["off_policy_mask_threshold"]) == (0.01, 0.5)
    sapo = config(objective="sapo", sapo_temperature_pos=2.0).objective_params()
    assert (sapo["sapo_temperature_pos"], sapo["sapo_temperature_neg"]) == (2.0, 1.05)
    vespo = generic(loss_type="vespo", vespo_lambda_neg=1.5).objective_params()
    assert vespo["vespo_lambda_neg"] == 1.5 and vespo["vespo_k_pos"] == 2.0
    assert "delta" not in vespo  # vespo has no clipped term
    adaptive = generic(use_adaptive_entropy=True, entropy_coef=0.01)
    assert adaptive.objective_params()["entropy_coef"] == 0.01


def test_cispo_epsilon_high_is_its_weight_cap_and_follows_epsilon_as_in_trl():
    assert config(objective="cispo").epsilon_high == 5.0
    assert config(objective="cispo", epsilon=4.0).objective_params()["epsilon_high"] == 4.0
    assert generic(loss_type="cispo").objective_params()["epsilon_high"] == 0.2
    assert generic(loss_type="cispo", epsilon_high=5.0).objective_params()["epsilon_high"] == 5.0


def test_sequence_level_objectives_show_their_level():
    assert config(objective="gspo").importance_sampling_level == "sequence"
    luspo = config(objective="luspo")
    assert (luspo.importance_sampling_level, luspo.epsilon, luspo.epsilon_high) == ("sequence", 3e-4, 4e-4)
    assert generic(loss_type="luspo").importance_sampling_level == "token"  # TRL's default


def test_dmpo_config_is_a_group_objective_config_defaulting_to_dmpo():
    assert issubclass(DMPOConfig, GroupObjectiveConfig)
    assert DMPOConfig.for_cpu(output_dir="unused").objective == "dmpo"
    assert generic(objective="dmpo").objective_params() == config().objective_params()
