"""dmpo: Distribution-Matching Policy Optimization and NP-Bench.

Layers, imports pointing one way (down this list; docs/architecture.md, checked by
tests/test_architecture.py):
- core: ``dmpo.objectives`` (the maths, pure PyTorch losses), ``dmpo.npbench`` (the problems:
  generators, exact solvers, validators, prompts, images, data splits), ``dmpo.models`` (the
  built-in tiny model, loading any causal LM);
- adapters: ``dmpo.engines`` (training engines: TRL) and ``dmpo.evaluation`` (sampling,
  metrics, reports, plots), each importing only the core;
- ``dmpo.pipeline``: settings, SFT warm start, training runs, evaluation runs, the demo;
- ``dmpo.cli``: the ``dmpo`` command.
"""

from dmpo.errors import DmpoError

__version__ = "0.1.0"
__all__ = ["DmpoError", "__version__"]
