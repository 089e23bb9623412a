"""Adapters that train the objectives on engines people already use.

- ``dmpo.engines.trl``: TRL's ``GRPOTrainer`` with any group objective (``DMPOTrainer``).

Adapters only: they import the core (``objectives``, ``npbench``, ``models``, ``errors``) and
nothing of evaluation, the pipeline or the CLI. Only this package imports an engine;
``dmpo.objectives`` and ``dmpo.npbench`` import none.
Importing ``dmpo.engines`` itself imports nothing heavy: import the engine's subpackage.
"""
