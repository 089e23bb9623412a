"""dmpo: Distribution-Matching Policy Optimization and NP-Bench.

Packages, arrows pointing one way:
- ``dmpo.objectives``: the maths (pure PyTorch losses), imports no engine.
- ``dmpo.npbench``: the problems (generators, exact solvers, validators, prompts, images).
- ``dmpo.evaluation``: metrics over sampled answers (QR, success, diversity, pass@k).
- ``dmpo.engines``: adapters for training engines (TRL, verl); import the core.
- ``dmpo.cli``: the ``dmpo`` command.
"""

from dmpo.errors import DmpoError

__version__ = "0.1.0"
__all__ = ["DmpoError", "__version__"]
