"""DMPO and the group objectives on verl (Ray + FSDP/Megatron, vLLM/SGLang rollouts).

- ``plugin``: what dmpo registers in verl's registries (the ``dmpo`` advantage estimator, the
  ``dmpo_vespo`` policy loss); loaded on ``import verl`` through the ``verl.plugins`` entry point.
- ``fold``: the DM term in the coefficient form, folded into per-token advantages (no verl import).
- ``reward``: NP-Bench's reward as a verl custom reward function ``compute_score``.
- ``data``: NP-Bench instances in verl's RL parquet layout.
- ``python -m dmpo.engines.verl ARGS``: verl's ``main_ppo`` with dmpo's defaults (``launch``).

Importing this package imports nothing of verl: import ``plugin`` (or ``verl``) for that.
"""
