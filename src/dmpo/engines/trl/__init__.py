"""The TRL engine: train any group objective of ``dmpo.objectives`` with TRL's ``GRPOTrainer``.

    from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset, npbench_reward

    args = DMPOConfig.for_cpu(output_dir="runs/dmpo", objective="dmpo", num_generations=8,
                              per_device_train_batch_size=8, max_completion_length=32, max_steps=50)
    trainer = DMPOTrainer(model_path, reward_funcs=npbench_reward, args=args,
                          train_dataset=build_npbench_dataset(["knapsack"], difficulty="tiny"))
    trainer.train()

Other task sources (math files and ``math:synthetic`` judged by math-verify, reasoning-gym tasks;
``dmpo.sources``): ``build_source_dataset(sources)`` and ``make_source_reward(sources)``, with the
same failure policy as the NP-Bench reward. ``chat=True`` makes the prompts conversations, which
TRL renders with the tokenizer's chat template.

Runs unchanged under ``accelerate launch`` (several processes, DeepSpeed, FSDP), with PEFT
(``peft_config=LoraConfig(...)``) and with TRL's vLLM options (``use_vllm=True``, when vLLM is
installed). Needs the ``trl`` extra: ``pip install 'dmpo[trl]'``.
"""

from dmpo.engines.trl.config import DMPOConfig, GroupObjectiveConfig
from dmpo.engines.trl.data import (
    build_npbench_dataset,
    build_npbench_vision_dataset,
    build_source_dataset,
)
from dmpo.engines.trl.rewards import (
    FAILURE_REWARD,
    RewardTimeout,
    call_with_timeout,
    make_npbench_reward,
    make_source_reward,
    npbench_reward,
    safe_reward,
)
from dmpo.engines.trl.trainer import (
    DMPOTrainer,
    GroupObjectiveTrainer,
    shuffle_whole_groups,
    split_generation_batch,
)

__all__ = [
    "FAILURE_REWARD",
    "DMPOConfig",
    "DMPOTrainer",
    "GroupObjectiveConfig",
    "GroupObjectiveTrainer",
    "RewardTimeout",
    "build_npbench_dataset",
    "build_npbench_vision_dataset",
    "build_source_dataset",
    "call_with_timeout",
    "make_npbench_reward",
    "make_source_reward",
    "npbench_reward",
    "safe_reward",
    "shuffle_whole_groups",
    "split_generation_batch",
]
