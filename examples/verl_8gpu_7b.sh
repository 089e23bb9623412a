#!/usr/bin/env bash
# DMPO on NP-Bench with verl: one node, 8 GPUs, a 7B model, the paper's settings
# (λ = 2, α = 1/15, G = 8 completions per prompt, lr 1e-6).
#
# Needs a GPU machine with verl's rollout engine:
#   pip install "verl[vllm]==0.9.1" "dmpo[verl]"        (dmpo[verl] alone has no vLLM/SGLang)
# Untested here (no GPU with vLLM on our machines); every piece runs on CPU in tests/engines/verl.
#
# Environment: MODEL (HF id or path), DATA_DIR, and anything below given as KEY=VALUE arguments
# (Hydra overrides, appended last, so they win). LAUNCH replaces the launcher (tests print the
# overrides with it).
set -euo pipefail

MODEL=${MODEL:-Qwen/Qwen2.5-7B-Instruct}
DATA_DIR=${DATA_DIR:-$HOME/data/npbench}
LAUNCH=${LAUNCH:-python3 -m dmpo.engines.verl}

mkdir -p "$DATA_DIR"
# Training (seeds from 100000) and held-out validation (from 1000000) instances with exact
# optima, in verl's layout.
[ -f "$DATA_DIR/train.parquet" ] || dmpo bench generate --tasks all --difficulty easy \
    --count 200 --seed 100000 --format verl -o "$DATA_DIR/train.parquet"
[ -f "$DATA_DIR/val.parquet" ] || dmpo bench generate --tasks all --difficulty easy \
    --count 10 --seed 1000000 --format verl -o "$DATA_DIR/val.parquet"

# The DM term is folded into the advantages on the driver (algorithm.adv_estimator=dmpo): one
# optimiser step per batch (ppo_mini_batch_size = train_batch_size, ppo_epochs = 1) keeps it the
# exact gradient of L_GRPO + λ·L_DM for any micro-batching, balance_batch and dynamic batch size.
$LAUNCH \
    data.train_files="$DATA_DIR/train.parquet" \
    data.val_files="$DATA_DIR/val.parquet" \
    data.train_batch_size=128 \
    data.max_prompt_length=2048 \
    data.max_response_length=4096 \
    data.filter_overlong_prompts=True \
    data.truncation=error \
    actor_rollout_ref.model.path="$MODEL" \
    actor_rollout_ref.model.use_remove_padding=True \
    actor_rollout_ref.model.enable_gradient_checkpointing=True \
    actor_rollout_ref.actor.optim.lr=1e-6 \
    actor_rollout_ref.actor.ppo_mini_batch_size=128 \
    actor_rollout_ref.actor.ppo_epochs=1 \
    actor_rollout_ref.actor.loss_agg_mode=seq-mean-token-mean \
    actor_rollout_ref.actor.use_dynamic_bsz=True \
    actor_rollout_ref.actor.ppo_max_token_len_per_gpu=24576 \
    actor_rollout_ref.actor.use_kl_loss=False \
    actor_rollout_ref.rollout.name=vllm \
    actor_rollout_ref.rollout.n=8 \
    actor_rollout_ref.rollout.tensor_model_parallel_size=2 \
    actor_rollout_ref.rollout.gpu_memory_utilization=0.6 \
    algorithm.adv_estimator=dmpo \
    algorithm.use_kl_in_reward=False \
    algorithm.dmpo.lam=2.0 \
    algorithm.dmpo.alpha=0.0666666666666667 \
    algorithm.dmpo.loss_agg_mode=seq-mean-token-mean \
    trainer.balance_batch=True \
    trainer.n_gpus_per_node=8 \
    trainer.nnodes=1 \
    trainer.total_epochs=1 \
    trainer.save_freq=50 \
    trainer.test_freq=10 \
    trainer.logger='["console"]' \
    trainer.project_name=dmpo \
    trainer.experiment_name=dmpo-npbench-7b \
    "$@"
