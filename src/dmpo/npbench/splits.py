"""Instance-seed ranges of the data splits. Instance ``(task, difficulty, seed)`` is the same on
every machine, so disjoint seed ranges make disjoint data:

- SFT warm-start data: seeds from ``SFT_SEED_START`` (0),
- RL training prompts: seeds from ``TRAIN_SEED_START`` (100,000),
- held-out evaluation: seeds from ``EVAL_SEED_START`` (1,000,000).

Every producer of data (the SFT builder, the training pipeline, evaluation) takes its seeds from
here, so no held-out instance is ever trained on.
"""

SFT_SEED_START = 0
TRAIN_SEED_START = 100_000
EVAL_SEED_START = 1_000_000

__all__ = ["EVAL_SEED_START", "SFT_SEED_START", "TRAIN_SEED_START"]
