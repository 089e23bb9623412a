"""NP-Bench: NP-hard optimisation problems with seeded generators, exact optima, strict
validators, Quality Ratio scoring, prompts for text models and images for vision models.

    from dmpo import npbench
    task = npbench.get_task("tsp")
    inst = task.generate(seed=0, difficulty="easy")
    v = task.evaluate(inst, "...Answer: [0, 2, 1, 3, 0]")
"""

from dmpo.npbench.base import DIFFICULTIES, Instance, Solution, Task, Verdict, quality_ratio
from dmpo.npbench.grid import decode_grid
from dmpo.npbench.io import load, load_predictions, reference_report, save_hf, save_jsonl
from dmpo.npbench.registry import TEXT_CATEGORIES, VISION_GROUPS, category_of, get_task, list_tasks
from dmpo.npbench.scoring import ItemScore, format_table, score_completions, score_item, summarize
from dmpo.npbench.splits import EVAL_SEED_START, SFT_SEED_START, TRAIN_SEED_START
from dmpo.npbench.vision import RENDERS, VisionPrompt
from dmpo.npbench.vlmevalkit import load_vlmevalkit, save_vlmevalkit

__all__ = [
    "DIFFICULTIES",
    "EVAL_SEED_START",
    "RENDERS",
    "SFT_SEED_START",
    "TEXT_CATEGORIES",
    "TRAIN_SEED_START",
    "VISION_GROUPS",
    "Instance",
    "ItemScore",
    "Solution",
    "Task",
    "Verdict",
    "VisionPrompt",
    "category_of",
    "decode_grid",
    "format_table",
    "get_task",
    "list_tasks",
    "load",
    "load_predictions",
    "load_vlmevalkit",
    "quality_ratio",
    "reference_report",
    "save_hf",
    "save_jsonl",
    "save_vlmevalkit",
    "score_completions",
    "score_item",
    "summarize",
]
