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
        ({"per_device_train_batch_size": 6}, r"per_device_train_batch_size \(6\) must be a multiple of num_generations \(4\)"),
        ({"objective": "disco", "beta": 0.1}, "has no 'beta_kl'"),
        ({"top_entropy_quantile": 0.5}, "top_entropy_quantile"),
        ({"importance_sampling_level": "sequence"}, "gspo"),
        ({"group_split": "rows"}, "group_split must be one of"),
        ({"objective": "grpo", "group_split": "coefficient"}, "distribution-matching term"),
        ({"group_split": "coefficient", "steps_per_generation": 2}, "exact only on-policy"),
        ({"objective": "dmpo-coef", "num_iterations": 2}, "exact only on-policy"),
    ],
)
def test_impossible_configurations_are_clear_errors(kwargs, match):
    with pytest.raises(DmpoError, match=match):
        config(**kwargs)


def test_coefficient_form_allows_groups_larger_than_the_device_batch():
    args = config(group_split="coefficient", per_device_train_batch_size=2, gradient_accumulation_steps=2)
    assert args.steps_per_generation == 2
