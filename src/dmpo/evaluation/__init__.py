"""Evaluation: k sampled answers per held-out instance, NP-Bench metrics, reports and plots.

    from dmpo.evaluation import heldout_instances, evaluate_model
    result = evaluate_model("runs/sft", heldout_instances(["knapsack"]), k=8)
"""

from dmpo.evaluation.sampling import (
    EvalResult,
    evaluate_completions,
    evaluate_model,
    heldout_instances,
    sample_completions,
)

__all__ = [
    "EvalResult",
    "evaluate_completions",
    "evaluate_model",
    "heldout_instances",
    "sample_completions",
]
