"""``GroupObjectiveTrainer`` and ``DMPOTrainer``: TRL's ``GRPOTrainer`` trained with any group
objective of ``dmpo.objectives``, the way TRL's own ``GMPOTrainer`` swaps the loss.

Defaults: without ``args``, ``GroupObjectiveTrainer`` builds a ``GroupObjectiveConfig`` (TRL's
behaviour: the objective named by TRL's default ``loss_type``, ``"dapo"``, with TRL's field
values; output directory ``<model>-GRPO``, as ``GRPOTrainer``) and ``DMPOTrainer`` a
``DMPOConfig`` (DMPO; ``<model>-DMPO``). Either trains whatever objective its ``args`` name.

What TRL does and we keep: sampling (transformers ``generate`` or vLLM), reward functions,
advantages, reference model, PEFT, accelerate/DeepSpeed/FSDP, checkpoints, logging.
What changes:

- ``_compute_loss`` builds a :class:`~dmpo.objectives.GroupBatch` (per-token log-probs and
  entropies from TRL's own forward pass, old and reference log-probs when TRL has them, vLLM's
  own log-probs when it reports them, the completion mask, *raw* rewards, group ids, TRL's
  advantages, the token count of the optimisation batch) and calls the objective named in the
  config. TRL's loss options are the objective's (``top_entropy_quantile``, ``entropy_coef``,
  ``delta``, ...); the trainer adds what needs more than one micro-batch: the entropy quantile
  over all processes (``entropy_threshold``) and TRL's adaptive entropy coefficient
  (``use_adaptive_entropy``), whose state it keeps, updates and checkpoints as TRL does.
- Raw rewards and group ids are attached to each generation batch
  (``_calculate_rewards`` keeps the gathered rewards, ``_generate_and_score_completions`` slices
  this process's rows, which are still in group order there).
- Groups and micro-batches (``group_split``; the config resolves ``"auto"``). TRL's
  ``RepeatSampler`` emits a prompt's G completions consecutively, and accelerate hands each
  process a contiguous block of ``per_device_train_batch_size × steps_per_generation`` rows.
  ``"whole"`` (per-device batch a multiple of G): every block holds whole groups, so no group
  straddles processes; TRL would shuffle rows and cut the block into ``steps_per_generation``
  micro-batches, scattering groups, so ``_prepare_inputs`` here shuffles whole groups instead
  and every micro-batch holds whole groups.
  ``"rows"`` (per-device batch smaller than, or not a multiple of, G): rows are shuffled and
  split as in TRL and groups straddle micro-batches and processes. The objectives allowed there
  need no group inside the loss: they train from TRL's advantages (computed over the whole
  generation batch, where groups are whole), which is TRL's own computation for its loss types.
- The DM term on split groups (and always with ``dm_form="coefficient"``, the dmpo-coef preset):
  per-completion coefficients c_k = ∂L_DM/∂φ_k over the whole generation batch of all
  processes (φ gathered; ``dm_term``) enter the loss as Σ sg[c_k]·φ_k, scaled so that the
  micro-batches' DM gradients add up to ∇L_DM of the generation batch. They are computed at
  sampling time (from TRL's old log-probs when it has them, else one no-grad forward pass) and
  recomputed at the first micro-batch after every optimiser step that did not generate
  (``num_iterations > 1``; ``steps_per_generation`` > ``gradient_accumulation_steps``): one
  no-grad forward pass over this process's rows of the generation batch, gathered, ``dm_term``
  again. So the coefficients always hold the policy being trained: with
  ``gradient_accumulation_steps`` a multiple of ``steps_per_generation`` (each optimiser step
  covers whole generation batches; TRL's default is equality) the DM gradient of every step is
  exactly that of whole groups, at any ``num_iterations``; with more micro-batches per generation
  than per step, each step gets its rows' share of the exact
  gradient at its own policy, scaled by steps_per_generation / gradient_accumulation_steps (an
  unbiased estimate, the same subsampling TRL applies to its loss; equal to the whole-group form
  when a step's rows are whole groups). Cost: one extra no-grad forward pass over the
  generation batch per recomputation, none with ``num_iterations=1`` and
  ``steps_per_generation = gradient_accumulation_steps`` (TRL's default).
- Generation (``generation_backend``): TRL's ``model.generate`` as TRL sets it up, transformers'
  continuous batching (TRL's option; the model's training dtype is restored after each
  generation), or a static KV cache with the decoding step compiled (TRL disables compilation;
  the trainer enables it after TRL's set-up and sizes the cache in 64-token steps).
- Every reward function is wrapped by :func:`~dmpo.engines.trl.rewards.safe_reward`: one that
  raises or runs past ``reward_timeout`` costs the completions concerned their reward.

Logged every step (TRL's ``_metrics``, so they reach every ``report_to`` backend): TRL's own
(reward, reward_std, frac_reward_zero_std, entropy, completions/…), the objective's
diagnostics (DMPO: ``dm_term.DM_DIAGNOSTICS`` — dm_loss, max_p, max_q, entropy_q, entropy_p,
phi_std, zero_signal_frac, and the DM term's share of the update with respect to the sequence
scores φ: dm_grad_norm, base_grad_norm, dm_grad_ratio, dm_grad_share, dm_base_cos, dm_lambda;
clip ratios, kl, advantage_abs_mean), ``group/zero_std_frac`` (groups whose raw rewards span ≤ 1e-5) and the
reward functions' own metrics (``npbench/distinct_valid_answers`` and others from the NP-Bench
reward, ``reward_failures/<name>``) and ``timing/rewards`` (wall seconds spent in the reward
functions for the step's batch; against TRL's ``step_time``, the share of a step spent scoring).
"""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any, ClassVar

import torch
from torch import nn
from transformers import TrainerCallback
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR
from trl import GRPOTrainer
from trl.extras.profiling import profiling_decorator
from trl.trainer.utils import (
    get_callable_name,
    is_async_callable,
    shuffle_sequence_dict,
    split_pixel_values_by_grid,
    split_tensor_dict,
    unsplit_pixel_values_by_grid,
)

from dmpo import objectives
from dmpo.engines.trl.config import DMPOConfig, GroupObjectiveConfig
from dmpo.engines.trl.log_partition import HEAD_NAME, LastPromptHiddenState, LogPartitionHead
from dmpo.engines.trl.rewards import FAILURE_REWARD, safe_reward
from dmpo.errors import DmpoError
from dmpo.models.loading import resolve_model_source
from dmpo.objectives.common import ZERO_SIGNAL_TOL, sequence_logps
from dmpo.objectives.dm_term import (
    DM_GRADIENT_DIAGNOSTICS,
    DM_TERM_DIAGNOSTICS,
    dm_term,
    dm_term_params,
)
from dmpo.objectives.policy_gradient import high_entropy_mask

# Forward-pass inputs TRL passes for multimodal models; forwarded untouched.
_MULTIMODAL_KEYS = (
    "pixel_values",
    "image_grid_thw",
    "num_images",
    "pixel_attention_mask",
    "spatial_shapes",
    "num_tiles",
    "image_sizes",
    "token_type_ids",
    "mm_token_type_ids",
    "image_position_ids",
)


def shuffle_whole_groups(batch: dict[str, Any], group_ids: torch.Tensor) -> dict[str, Any]:
    """Permute the rows of ``batch`` group by group: groups in random order, each kept contiguous
    (rows of a group in their original order). Values are tensors with rows first, 0-dim
    tensors (kept), lists (permuted) or None, as in TRL's ``shuffle_sequence_dict``."""
    _, index = torch.unique(group_ids.cpu(), return_inverse=True)
    rank = torch.randperm(int(index.max()) + 1 if index.numel() else 0)[index]
    order = torch.argsort(rank, stable=True)

    def permute(value: Any) -> Any:
        if value is None or (isinstance(value, torch.Tensor) and value.ndim == 0):
            return value
        if isinstance(value, torch.Tensor):
            return value[order.to(value.device)]
        return [value[i] for i in order.tolist()]

    return {key: permute(value) for key, value in batch.items()}


# Prompt tokens assumed per row when sizing the continuous-batching cache on a CPU (a longer
# prompt only makes requests wait for room), and the static cache's size step.
_CPU_PROMPT_ALLOWANCE = 512
_STATIC_CACHE_STEP = 64


@contextlib.contextmanager
def keep_training_dtype(model: nn.Module):
    """Undo, on exit, any dtype change of ``model``'s floating-point parameters and buffers made
    inside (e.g. ``model.to(torch.bfloat16)``): the original tensors are put back, bit for bit."""
    params = [(p, p.data) for p in model.parameters() if p.is_floating_point()]
    buffers = [(module, name, buf) for module in model.modules() for name, buf in module._buffers.items()
               if buf is not None and buf.is_floating_point()]
    try:
        yield model
    finally:
        for param, data in params:
            if param.data.dtype != data.dtype:
                param.data = data
        for module, name, buf in buffers:
            current = module._buffers.get(name)
            if current is not None and current.dtype != buf.dtype:
                module._buffers[name] = buf


@contextlib.contextmanager
def _without_mixed_precision_wrapper(model: nn.Module):
    """Inside, ``model.forward`` is the forward accelerate wrapped for mixed precision (autocast
    and outputs cast to fp32), when it did; the wrapper is put back on exit."""
    wrapped, original = model.__dict__.get("forward"), model.__dict__.get("_original_forward")
    if wrapped is None or original is None:
        yield model
        return
    model.forward = original
    try:
        yield model
    finally:
        model.forward = wrapped


def split_generation_batch(batch: dict[str, Any], num_chunks: int, *, whole_groups: bool) -> list[dict[str, Any]]:
    """Shuffle a generation batch and cut it into ``num_chunks`` micro-batches of equal rows: by
    whole groups (``batch["group_ids"]``) when ``whole_groups``, else row by row as TRL does.

    Multimodal inputs follow their rows: Qwen2-VL's ``pixel_values`` concatenate the patches of
    every image of every row, so they are first cut per row (rows of patches per image from
    ``image_grid_thw``, images per row from ``num_images``), permuted and split with the rows, and
    concatenated again per micro-batch (TRL's ``split_pixel_values_by_grid`` and its inverse)."""
    batch = split_pixel_values_by_grid(batch)
    batch = shuffle_whole_groups(batch, batch["group_ids"]) if whole_groups else shuffle_sequence_dict(batch)
    return [unsplit_pixel_values_by_grid(b) for b in split_tensor_dict(batch, num_chunks)]


class GroupObjectiveTrainer(GRPOTrainer):
    """Train with a group objective from ``dmpo.objectives`` on TRL's GRPO machinery.

    Same arguments as ``trl.GRPOTrainer``; ``args`` must be a :class:`GroupObjectiveConfig`
    (``DMPOConfig`` is one). Without ``args``: ``GroupObjectiveConfig()``, TRL's own default
    loss (``loss_type="dapo"`` with TRL's values). Example::

        from dmpo.engines.trl import DMPOConfig, DMPOTrainer, build_npbench_dataset, npbench_reward
        args = DMPOConfig.for_cpu(output_dir="runs/dmpo", num_generations=8,
                                  per_device_train_batch_size=8, max_completion_length=32)
        trainer = DMPOTrainer("path/to/model", reward_funcs=npbench_reward, args=args,
                              train_dataset=build_npbench_dataset("knapsack"))
        trainer.train()
    """

    _tag_names: ClassVar[list[str]] = ["trl", "dmpo"]
    _name = "GRPO"
    # The config built when no ``args`` are given.
    _default_config: ClassVar[type[GroupObjectiveConfig]] = GroupObjectiveConfig

    def __init__(
        self,
        model: Any,
        reward_funcs: Any = None,
        args: GroupObjectiveConfig | None = None,
        train_dataset: Any = None,
        eval_dataset: Any = None,
        **kwargs: Any,
    ) -> None:
        if args is None:
            name = os.fspath(model) if isinstance(model, (str, os.PathLike)) else type(model).__name__
            args = self._default_config(output_dir=f"{os.path.basename(name.rstrip('/'))}-{self._name}")
        if not isinstance(args, GroupObjectiveConfig):
            raise DmpoError(
                f"args must be a GroupObjectiveConfig (DMPOConfig), got {type(args).__name__}; "
                "every GRPOConfig field is accepted by DMPOConfig"
            )
        if isinstance(model, (str, os.PathLike)):
            model = resolve_model_source(model)[0]
        _check_dataset(train_dataset, "train_dataset", needs_prompt=kwargs.get("environment_factory") is None)
        if eval_dataset is not None and not isinstance(eval_dataset, dict):
            _check_dataset(eval_dataset, "eval_dataset", needs_prompt=True)
        super().__init__(
            model,
            reward_funcs=_guard_reward_funcs(reward_funcs, args.reward_timeout),
            args=args,
            train_dataset=train_dataset,
            eval_dataset=eval_dataset,
            **kwargs,
        )
        self.group_objective = objectives.get(args.objective_name)
        self.group_objective_params = args.objective_params()
        # Objectives with random token selection (clip_cov) draw anew each step, reproducibly:
        # seed = args.seed·1,000,003 + global step, unless the user fixed one.
        self._step_seed = "seed" in self.group_objective.params and "seed" not in args.objective_kwargs
        # Whole groups per micro-batch, unless the config lets rows split anywhere.
        self._whole_groups = args.group_split == "whole"
        # DM coefficients over the whole generation batch: needed when groups split, or asked for
        # by the objective itself (the dmpo-coef preset); only for objectives with a DM term.
        self._coefficient_form = "dm_form" in self.group_objective.params and (
            not self._whole_groups or self.group_objective.params["dm_form"] == "coefficient"
        )
        # The global step at which the buffered coefficients were computed (the policy they hold).
        self._dm_coefficients_step: int | None = None
        # Objectives with a DM term report its gradient diagnostics in their metrics during the
        # backward pass: the metrics of the micro-batch in training, logged after its backward.
        self._has_dm_term = "dm_form" in self.group_objective.params
        self._pending_dm_metrics: dict[str, float] | None = None
        self._gathered_rewards_per_func: torch.Tensor | None = None
        self._nonfinite_in_a_row = 0
        self.nonfinite_skipped = 0
        self.add_callback(_NonFiniteGuard(self))
        self._log_z_capture: LastPromptHiddenState | None = None
        if "log_z" in getattr(self.group_objective.fn, "needs", ()):
            self._attach_log_partition_head()
        if self.group_objective_params.get("use_ref") and self.beta == 0.0:
            self._build_reference_model()
        self._setup_generation_backend()

    # ---- generation backends ----------------------------------------------------------------
    def _setup_generation_backend(self) -> None:
        """Adjust TRL's generation set-up for ``args.generation_backend`` (see the config).

        'static_compiled': TRL builds its ``GenerationConfig`` with ``disable_compile=True``; here
        compilation is switched back on (static cache, ``CompileConfig``: inductor with CUDA graphs
        on CUDA, inductor's default mode elsewhere). 'continuous' on a CPU: transformers sizes the
        continuous-batching KV cache from half the machine's memory unless told otherwise, so,
        without a user setting, it gets room for this process's generation batch instead."""
        backend = self.args.generation_backend
        if backend == "static_compiled":
            from transformers import CompileConfig

            on_cuda = self.accelerator.device.type == "cuda"
            compile_config = CompileConfig() if on_cuda else CompileConfig(mode="default")
            compile_config._compile_all_devices = True  # transformers compiles on CUDA-like devices only
            self.generation_config.cache_implementation = "static"
            self.generation_config.disable_compile = False
            self.generation_config.compile_config = compile_config
            self.generation_kwargs["cache_implementation"] = "static"
        elif backend == "continuous":
            self._check_continuous_batching_sampling()
        if backend == "continuous" and self.accelerator.device.type == "cpu":
            given = self.args.transformers_continuous_batching_config or {}
            if not any(key in given for key in ("num_blocks", "max_batch_tokens", "max_memory_percent")):
                config = self.continuous_batching_config
                rows = self.args.per_device_train_batch_size * self.args.steps_per_generation
                tokens = self.max_completion_length + _CPU_PROMPT_ALLOWANCE
                config.num_blocks = rows * -(-tokens // config.page_size)
                config.max_batch_tokens = min(rows * tokens, 4096)

    def _check_continuous_batching_sampling(self) -> None:
        """Continuous batching drops the logits processors it does not support (a repetition
        penalty, for one) and has no minimum length: sampling would silently change. Refuse."""
        config = self.generation_config
        ignored = [type(p).__name__ for p in self.model._get_logits_processor(config)
                   if getattr(p, "supports_continuous_batching", None) is False]
        ignored += [f"{name}={getattr(config, name)}" for name in ("min_new_tokens", "min_length")
                    if getattr(config, name, None)]
        if ignored:
            raise DmpoError(f"generation_backend='continuous' would ignore {', '.join(ignored)} (transformers' "
                            "continuous batching does not support it), so completions would be sampled "
                            "differently; use generation_backend='default' or 'static_compiled'")

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        backend = self.args.generation_backend
        if backend == "static_compiled":
            # One cache size for many calls (a new size means a new compiled graph): the longest
            # prompt plus the completion budget, rounded up to a multiple of 64 tokens; transformers
            # keeps the largest size seen so far.
            longest = max((len(ids) for ids in prompt_ids), default=0) + self.max_completion_length
            self.generation_config.max_cache_len = -(-longest // _STATIC_CACHE_STEP) * _STATIC_CACHE_STEP
        if backend != "continuous":
            return super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images=has_tool_images)
        # TRL casts the model to bf16/fp16 for continuous batching and leaves it there, which would
        # turn mixed-precision training into pure half-precision training: restore what it was.
        # accelerate's mixed-precision forward wrapper would try to cast the paged cache in the
        # outputs to fp32 (and fail): the half-precision model runs without it.
        with keep_training_dtype(self.model), _without_mixed_precision_wrapper(self.model):
            completion_ids, logprobs = super()._generate_single_turn(
                prompt_ids, images, multimodal_fields, num_generations, has_tool_images=has_tool_images)
        if len(completion_ids) != len(prompt_ids):
            raise DmpoError(f"continuous batching returned {len(completion_ids)} completions for "
                            f"{len(prompt_ids)} prompts; use generation_backend='default'")
        return completion_ids, logprobs

    # ---- FlowRL: log-partition head and reference ---------------------------------------------
    def _attach_log_partition_head(self) -> None:
        """Give the model FlowRL's log Z head (see ``log_partition.py``): trained, checkpointed
        and restored with the model, ignored by a plain causal-LM loader."""
        from peft import PeftModel

        if isinstance(self.model, PeftModel):
            raise DmpoError(f"objective {self.args.objective_name!r} with a PEFT adapter is not supported: "
                            "the log-partition head would not be saved with the adapter")
        hidden = self.model.config.get_text_config().hidden_size
        head = LogPartitionHead(hidden).to(device=self.model.device, dtype=self.model.dtype)
        self.model.add_module(HEAD_NAME, head)
        self._log_z_capture = LastPromptHiddenState(self.model.get_decoder())

    def _build_reference_model(self) -> None:
        """The objective's reference term needs π_ref's log-probs, which TRL computes only with a
        non-zero ``beta`` (its KL weight, which the group objectives do not use: theirs is
        ``beta_kl``). A frozen copy of the starting policy is the reference; ``self.beta`` is set
        to 1 only as TRL's switch to compute reference log-probs at sampling time."""
        import copy

        from transformers.modeling_utils import PreTrainedModel

        if not isinstance(self.model, PreTrainedModel):
            raise DmpoError(f"objective {self.args.objective_name!r} needs a reference model; with PEFT set "
                            "objective_kwargs use_ref=False or a non-zero beta")
        reference = copy.deepcopy(self.model)
        if hasattr(reference, HEAD_NAME):
            delattr(reference, HEAD_NAME)
        reference.eval().requires_grad_(False)
        self.ref_model = self.accelerator.prepare_model(reference, evaluation_mode=True)
        self.beta = 1.0

    # ---- sampling and scoring ---------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        started = time.perf_counter()
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        scoring_seconds = time.perf_counter() - started
        # ±inf (e.g. from a reward model) is a failure of that completion: the failure reward, counted.
        # NaN stays: it is TRL's "this function does not score this completion" (a None).
        infinite = torch.isinf(rewards_per_func)
        if infinite.any():
            rewards_per_func = torch.where(infinite, FAILURE_REWARD, rewards_per_func)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["reward_failures/non_finite"].append(infinite.any(dim=1).float().mean().item())
        # Wall seconds in the reward functions for this batch (compare with TRL's step_time).
        self._metrics[mode]["timing/rewards"].append(scoring_seconds)
        self._gathered_rewards_per_func = rewards_per_func  # [rows of all processes, functions]
        return rewards_per_func

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        mode = "train" if self.model.training else "eval"
        group_size = self.num_generations if mode == "train" else self.num_generations_eval
        device = output["completion_ids"].device
        num_rows = output["completion_ids"].size(0)

        # Raw reward of each completion: the weighted sum over reward functions; a completion no
        # function could score (all None) counts as 0, like a failed reward.
        per_func = self._gathered_rewards_per_func
        weights = self.reward_weights.to(per_func.device).unsqueeze(0)
        all_rewards = (torch.nan_to_num(per_func, nan=0.0) * weights).sum(dim=1)
        # Rows are process-major and, within the global batch, a prompt's G completions are adjacent.
        all_group_ids = torch.arange(all_rewards.numel(), device=device) // group_size
        local = slice(self.accelerator.process_index * num_rows, (self.accelerator.process_index + 1) * num_rows)
        output["rewards"] = all_rewards[local].to(device)
        output["group_ids"] = all_group_ids[local]
        eos_and_pad = torch.tensor([*self.eos_token_ids, self._tokenizer.pad_token_id], device=device)
        output["truncated"] = ~torch.isin(output["completion_ids"], eos_and_pad).any(dim=1)

        grouped = all_rewards.view(-1, group_size)
        spread = grouped.max(dim=1).values - grouped.min(dim=1).values
        self._metrics[mode]["group/zero_std_frac"].append((spread <= ZERO_SIGNAL_TOL).float().mean().item())

        if self._coefficient_form:
            output["dm_coefficients"] = self._dm_coefficients(output, all_rewards, all_group_ids, local, mode)
        return output

    def _dm_coefficients(
        self,
        output: dict[str, Any],
        all_rewards: torch.Tensor,
        all_group_ids: torch.Tensor,
        local: slice,
        mode: str,
    ) -> torch.Tensor:
        """c_k = ∂L_DM/∂φ_k at sampling time over the whole global batch; this process's rows.

        φ from TRL's sampling-time log-probs when it computed them, else one no-grad forward
        pass over this process's rows."""
        old_logps = output.get("old_per_token_logps")
        if old_logps is None:
            batch_size = (
                self.args.per_device_train_batch_size if mode == "train" else self.args.per_device_eval_batch_size
            )
            phi = self._sequence_phi(output, batch_size)
        else:
            phi = sequence_logps(old_logps.float(), _loss_mask(output).float(),
                                 average=self.group_objective_params["length_normalize"])
        all_phi = self.accelerator.gather(phi.detach())
        all_advantages = self.accelerator.gather(output["advantages"].float())
        if mode == "train":
            self._dm_coefficients_step = self.state.global_step
        return self._global_dm_coefficients(all_phi, all_rewards, all_group_ids, all_advantages, local, mode)

    def _refresh_dm_coefficients(self) -> None:
        """Recompute the DM coefficients of every buffered row at the current policy.

        Called at the first micro-batch after an optimiser step that did not generate (the
        second and later iterations over a generation batch, ``num_iterations > 1``, and the
        later optimiser steps of a generation batch, ``steps_per_generation`` >
        ``gradient_accumulation_steps``): φ of this process's rows of the generation batch by one
        no-grad forward pass per micro-batch, gathered over processes; ``dm_term`` over the whole
        generation batch; each micro-batch gets its rows' new c_k, those of L_DM over the whole
        generation batch at the policy of this moment (module docstring: what is exact when).
        """
        batches = self._buffered_inputs
        phi = torch.cat([self._sequence_phi(b, self.args.per_device_train_batch_size) for b in batches])

        def gathered(key: str) -> torch.Tensor:
            return self.accelerator.gather(torch.cat([b[key] for b in batches]))

        rows = phi.numel()
        local = slice(self.accelerator.process_index * rows, (self.accelerator.process_index + 1) * rows)
        coefficients = self._global_dm_coefficients(
            self.accelerator.gather(phi), gathered("rewards"), gathered("group_ids"),
            gathered("advantages").float(), local, "train",
        )  # fmt: skip
        start = 0
        for batch in batches:
            size = batch["completion_ids"].size(0)
            batch["dm_coefficients"] = coefficients[start : start + size]
            start += size
        self._dm_coefficients_step = self.state.global_step

    def _sequence_phi(self, inputs: dict[str, Any], batch_size: int) -> torch.Tensor:
        """φ_k (the DM term's sequence score) of ``inputs``' rows at the current policy: [rows],
        one no-grad forward pass (TRL's, in chunks of ``batch_size`` rows)."""
        input_ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        attention_mask = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        with torch.no_grad():
            logps, _, _ = self._get_per_token_logps_and_entropies(
                self.model,
                input_ids,
                attention_mask,
                inputs["completion_ids"].size(1),
                batch_size=batch_size,
                **{k: inputs[k] for k in _MULTIMODAL_KEYS if inputs.get(k) is not None},
            )
        average = self.group_objective_params["length_normalize"]
        return sequence_logps(logps.float(), _loss_mask(inputs).float(), average=average)

    def _global_dm_coefficients(
        self,
        all_phi: torch.Tensor,
        all_rewards: torch.Tensor,
        all_group_ids: torch.Tensor,
        all_advantages: torch.Tensor,
        local: slice,
        mode: str,
    ) -> torch.Tensor:
        """``dm_term`` over the rows of every process (whole groups); this process's c_k, logged
        diagnostics.

        Scaled by processes × steps_per_generation in training, which undoes the division of each
        micro-batch loss by the accumulation steps and the averaging of gradients over processes,
        so that the summed gradient of the DM term over the generation batch's micro-batches is
        that of L_DM over the generation batch.
        """
        device = all_phi.device
        term = dm_term(all_phi, all_rewards.to(device), all_group_ids.to(device),
                       advantages=all_advantages.to(device), **dm_term_params(self.group_objective_params))
        for name, value in term.diagnostics.items():
            self._metrics[mode][name].append(value.item())
        scale = self.accelerator.num_processes * self.args.steps_per_generation if mode == "train" else 1
        return term.coefficients[local] * scale

    # ---- group-aware batching ---------------------------------------------------------------
    @profiling_decorator
    def _prepare_inputs(self, generation_batch):
        # TRL's _prepare_inputs, with the row shuffle replaced by a shuffle of whole groups.
        if not self.model.training:
            return self._generate_and_score_completions(generation_batch)
        generate_every = self.args.steps_per_generation * self.num_iterations
        if self._step % generate_every == 0 or self._buffered_inputs is None:
            batch = self._generate_and_score_completions(generation_batch)
            self._buffered_inputs = split_generation_batch(batch, self.args.steps_per_generation,
                                                           whole_groups=self._whole_groups)
        elif self._coefficient_form and self._dm_coefficients_step != self.state.global_step:
            self._refresh_dm_coefficients()  # the policy moved since they were computed
        return self._buffered_inputs[self._step % self.args.steps_per_generation]

    # ---- the loss ---------------------------------------------------------------------------
    def _compute_loss(self, model, inputs):
        prompt_ids, prompt_mask = inputs["prompt_ids"], inputs["prompt_mask"]
        completion_ids, completion_mask = inputs["completion_ids"], inputs["completion_mask"]
        input_ids = torch.cat([prompt_ids, completion_ids], dim=1)
        attention_mask = torch.cat([prompt_mask, completion_mask], dim=1)
        mask = completion_mask if "tool_mask" not in inputs else completion_mask * inputs["tool_mask"]
        if self._log_z_capture is not None:
            self._log_z_capture.start(completion_ids.size(1))
        per_token_logps, entropies, aux_loss = self._get_per_token_logps_and_entropies(
            model,
            input_ids,
            attention_mask,
            completion_ids.size(1),
            compute_entropy=True,
            compute_aux_loss=self.aux_loss_enabled,
            **{k: inputs.get(k) for k in _MULTIMODAL_KEYS},
        )
        log_z = None
        if self._log_z_capture is not None:
            # One log Z per prompt: the head runs once per group (on its first row; every row of a
            # group has the same prompt), and the group's value is shared by its completions.
            hidden = self._log_z_capture.stop()
            _, index = torch.unique(inputs["group_ids"], return_inverse=True)
            first = torch.full((int(index.max()) + 1,), index.numel(), device=index.device)
            first = first.scatter_reduce(0, index, torch.arange(index.numel(), device=index.device), "amin")
            head = getattr(self.accelerator.unwrap_model(model), HEAD_NAME)
            log_z = head(hidden[first.to(hidden.device)]).float()[index.to(hidden.device)]
        mode = "train" if self.model.training else "eval"
        # TRL's num_items_in_batch counts the generation batch of all processes; one micro-batch's
        # share of it is what the objective's "dapo" normaliser expects before the division below.
        num_items = inputs["num_items_in_batch"] / self.accelerator.num_processes
        if mode == "train":
            num_items = num_items / self.args.steps_per_generation
        batch = objectives.GroupBatch(
            logps=per_token_logps,
            mask=mask,
            rewards=inputs["rewards"],
            group_ids=inputs["group_ids"],
            old_logps=inputs.get("old_per_token_logps"),
            ref_logps=inputs.get("ref_per_token_logps"),
            advantages=inputs["advantages"],
            entropies=entropies,
            truncated=inputs["truncated"],
            num_items_in_batch=num_items,
            log_z=log_z,
            sampling_logps=inputs.get("sampling_per_token_logps"),
        )
        params = self.group_objective_params
        if self._step_seed:
            params = {**params, "seed": self.args.seed * 1_000_003 + self.state.global_step}
        if self._coefficient_form:
            params = {**params, "dm_form": "coefficient", "coefficients": inputs["dm_coefficients"]}
        threshold = None
        if params.get("top_entropy_quantile", 1.0) < 1.0:
            threshold = self._entropy_threshold(entropies, mask, params["top_entropy_quantile"])
            params = {**params, "entropy_threshold": threshold}
        if self.use_adaptive_entropy:
            # As TRL: the coefficient from the end of the last optimiser step, applied only while
            # the entropy then measured is at or below the target.
            on = self._last_world_entropy <= self.args.entropy_target
            params = {**params, "entropy_coef": self.entropy_coef if on else 0.0}
        out = self.group_objective(batch, **params)
        if self._entropy_bonus_enabled:
            self._track_entropy(mode, entropies, mask, threshold)

        # As TRL: each micro-batch's loss is divided by the accumulation steps (HF's own scaling is off).
        normalizer = self.current_gradient_accumulation_steps if mode == "train" else 1.0
        loss = out.loss / normalizer
        if self.aux_loss_enabled:
            loss = loss + self.router_aux_loss_coef * aux_loss / normalizer
            self._metrics[mode]["aux_loss"].append(self.accelerator.gather_for_metrics(aux_loss).mean().item())
        self._log_loss_metrics(mode, out.metrics, entropies, mask)
        if self._has_dm_term and mode == "train" and loss.requires_grad:
            self._pending_dm_metrics = out.metrics
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        output = super().training_step(model, inputs, num_items_in_batch)
        pending, self._pending_dm_metrics = self._pending_dm_metrics, None
        if pending is not None:
            # Every process ran the same objective, so every process reduces the same names; a
            # micro-batch whose backward never reached the log-probs reports zeros.
            values = torch.tensor([float(pending.get(name, 0.0)) for name in DM_GRADIENT_DIAGNOSTICS],
                                  dtype=torch.float32, device=self.accelerator.device)
            total = self.accelerator.reduce(values, reduction="sum") / self.accelerator.num_processes
            for name, value in zip(DM_GRADIENT_DIAGNOSTICS, total.tolist()):
                self._metrics["train"][name].append(value)
        return output

    # ---- TRL's entropy options ---------------------------------------------------------------
    def _entropy_threshold(
        self, entropies: torch.Tensor, mask: torch.Tensor, top_entropy_quantile: float
    ) -> torch.Tensor:
        """The (1 − q)-quantile of the real tokens' entropies over all processes, as TRL's
        ``get_high_entropy_mask`` computes it; +inf when no process has a real token."""
        sentinel = -1e9  # entropies are never negative
        local = entropies.detach()[mask.bool()].float()
        gathered = self.accelerator.gather(self.accelerator.pad_across_processes(local, dim=0, pad_index=sentinel))
        gathered = gathered[gathered != sentinel]
        if gathered.numel() == 0:
            return torch.tensor(float("inf"), device=entropies.device)
        return torch.quantile(gathered, 1.0 - top_entropy_quantile)

    def _track_entropy(
        self, mode: str, entropies: torch.Tensor, mask: torch.Tensor, threshold: torch.Tensor | None
    ) -> None:
        """TRL's adaptive entropy controller (Skywork-OR1): sum the entropy of the tokens the
        bonus acts on over the accumulation window; at the optimiser step, move the coefficient
        by ``entropy_coef_delta`` towards more bonus when the window's entropy (all processes)
        is at or below ``entropy_target``, towards less otherwise, within [min, max]. The state
        is TRL's own attributes, so TRL's checkpointing saves and restores it."""
        if self.use_adaptive_entropy and mode == "train":
            acting = mask.float()
            if threshold is not None:
                acting = acting * high_entropy_mask(entropies, mask, threshold).float()
            values = torch.where(acting.bool(), entropies.detach().float(), 0.0)
            stats = torch.stack([(values * acting).sum(), acting.sum()])
            window = self._entropy_window_stats
            self._entropy_window_stats = stats if window is None else window + stats
            if self.accelerator.sync_gradients:
                total = self.accelerator.reduce(self._entropy_window_stats, reduction="sum")
                world_entropy = (total[0] / total[1].clamp(min=1.0)).item()
                step = self.args.entropy_coef_delta
                if world_entropy <= self.args.entropy_target:
                    self.entropy_coef = min(self.entropy_coef + step, self.args.entropy_coef_max)
                else:
                    self.entropy_coef = max(self.entropy_coef - step, self.args.entropy_coef_min)
                self._last_world_entropy = world_entropy
                self._entropy_window_stats = None
        if mode == "train" and self.accelerator.sync_gradients:
            self._metrics[mode]["entropy_coef"].append(self.entropy_coef)

    # ---- non-finite guard and safe saving ------------------------------------------------------
    def _skip_nonfinite_update(self, model: nn.Module) -> None:
        """Before each optimiser step: if any gradient is NaN or ±inf (a non-finite loss gives
        those), drop every gradient so the optimiser leaves the parameters (and its moments)
        untouched, count and log the skip, and stop after ``max_nonfinite_steps`` in a row."""
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        finite = bool(torch.stack([torch.isfinite(g).all() for g in grads]).all()) if grads else True
        self._metrics["train"]["nonfinite/skipped_step"].append(0.0 if finite else 1.0)
        if finite:
            self._nonfinite_in_a_row = 0
            return
        for p in model.parameters():
            p.grad = None
        self._nonfinite_in_a_row += 1
        self.nonfinite_skipped += 1
        if self._nonfinite_in_a_row >= self.args.max_nonfinite_steps:
            raise DmpoError(
                f"stopped at step {self.state.global_step}: {self._nonfinite_in_a_row} updates in a row had a "
                "non-finite loss or gradient and were skipped (the parameters are unchanged since the last "
                "good step). Lower the learning rate or check the rewards and objective parameters; "
                "resume from the last checkpoint with --resume.")

    def _save(self, output_dir: str | None = None, state_dict: dict | None = None) -> None:
        # A model with NaN or ±inf weights is never written (final model or checkpoint).
        for name, param in self.model.named_parameters():
            if not bool(torch.isfinite(param.detach()).all()):
                raise DmpoError(f"refusing to save the model: parameter {name} holds NaN or ±inf")
        super()._save(output_dir, state_dict=state_dict)

    def _save_checkpoint(self, model: Any, trial: Any) -> None:
        super()._save_checkpoint(model, trial)
        # Written last: a checkpoint without it was cut off mid-write and is never resumed from.
        folder = os.path.join(self._get_output_dir(trial=trial), f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}")
        if self.is_world_process_zero() and os.path.isdir(folder):
            with open(os.path.join(folder, CHECKPOINT_COMPLETE), "w") as handle:
                handle.write(f"{self.state.global_step}\n")

    def _log_loss_metrics(
        self, mode: str, metrics: dict[str, float], entropies: torch.Tensor, mask: torch.Tensor
    ) -> None:
        """Objective diagnostics (mean over processes) and TRL's token entropy, in one reduction."""
        # The DM gradient diagnostics are logged after the backward pass (``training_step``).
        metrics = {k: v for k, v in metrics.items() if k not in DM_GRADIENT_DIAGNOSTICS}
        if self._coefficient_form:
            # The DM term's diagnostics were logged at sampling time over whole groups; the
            # micro-batch's own, over partial groups, would mislead.
            metrics = {k: v for k, v in metrics.items() if k not in DM_TERM_DIAGNOSTICS}
        names = list(metrics)
        entropy_stats = torch.stack([(entropies.detach() * mask).sum(), mask.sum()]).float()
        values = torch.tensor(list(metrics.values()), dtype=torch.float32, device=entropy_stats.device)
        total = self.accelerator.reduce(torch.cat([entropy_stats, values]), reduction="sum")
        self._metrics[mode]["entropy"].append((total[0] / total[1].clamp(min=1.0)).item())
        processes = self.accelerator.num_processes
        for name, value in zip(names, (total[2:] / processes).tolist()):
            self._metrics[mode][name].append(value)



# The marker file of a checkpoint that was written to the end.
CHECKPOINT_COMPLETE = "dmpo_checkpoint_complete"


class _NonFiniteGuard(TrainerCallback):
    """Calls the trainer's non-finite check right before every optimiser step."""

    def __init__(self, trainer: GroupObjectiveTrainer) -> None:
        self.trainer = trainer

    def on_pre_optimizer_step(self, args, state, control, **kwargs):
        self.trainer._skip_nonfinite_update(self.trainer.model)
        return control


def _loss_mask(inputs: dict[str, Any]) -> torch.Tensor:
    """The tokens the loss sees: the completion mask, times TRL's tool mask when there is one."""
    mask = inputs["completion_mask"]
    return mask if inputs.get("tool_mask") is None else mask * inputs["tool_mask"]


def _check_dataset(dataset: Any, name: str, *, needs_prompt: bool) -> None:
    if dataset is None:
        return
    if hasattr(dataset, "__len__") and len(dataset) == 0:
        raise DmpoError(f"{name} is empty; build one with dmpo.engines.trl.build_npbench_dataset(...)")
    columns = getattr(dataset, "column_names", None)
    if needs_prompt and columns is not None and "prompt" not in columns:
        raise DmpoError(f"{name} needs a 'prompt' column; it has {columns}")


def _guard_reward_funcs(reward_funcs: Any, timeout_s: float | None) -> Any:
    """Wrap plain (synchronous, non-model) reward functions with ``safe_reward``."""
    if reward_funcs is None:
        return None
    funcs = reward_funcs if isinstance(reward_funcs, list) else [reward_funcs]
    guarded = []
    for func in funcs:
        plain = callable(func) and not isinstance(func, (str, nn.Module)) and not is_async_callable(func)
        if plain and not _is_guarded(func):
            func = safe_reward(func, timeout_s=timeout_s, name=get_callable_name(func))
        guarded.append(func)
    return guarded


def _is_guarded(func: Any) -> bool:
    return bool(getattr(func, "dmpo_guarded", False))


class DMPOTrainer(GroupObjectiveTrainer):
    """``GroupObjectiveTrainer`` whose default ``args`` are ``DMPOConfig()`` (DMPO, the paper's
    defaults); with ``args`` it trains whatever objective they name."""

    _name = "DMPO"
    _default_config: ClassVar[type[GroupObjectiveConfig]] = DMPOConfig
