"""The pipeline: the steps a user runs, composed from the core, the engines and evaluation.

- ``settings``: every run setting, declared once with its help (the CLI's flags, YAML keys).
- ``sft``: the built-in tiny model's supervised warm start (solver answers → TRL SFT), cached.
- ``train``: one RL run on NP-Bench with a group objective (TRL engine), history and model out.
- ``evaluate``: one evaluation from :class:`~dmpo.pipeline.settings.EvalSettings`.
- ``demo``: SFT → objectives → evaluation → report.

Import the submodules; importing ``dmpo.pipeline`` itself loads nothing heavy.
"""
