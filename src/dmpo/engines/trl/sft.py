"""Supervised fine-tuning with TRL's ``SFTTrainer`` on prompt–completion examples (loss on the
completion only). The pipeline (``dmpo.pipeline.sft``) builds the examples and caches the result.
"""

from __future__ import annotations

import math
import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dmpo.engines.trl.progress import set_progress
from dmpo.errors import DmpoError


def _use_cpu() -> bool:
    import torch

    return not torch.cuda.is_available()


def train_sft(
    base_model: str | os.PathLike,
    examples: Sequence[dict[str, Any]],
    output_dir: str | os.PathLike,
    *,
    epochs: float = 3.0,
    learning_rate: float = 2e-3,
    batch_size: int = 32,
    max_length: int = 256,
    seed: int = 0,
    progress: bool = True,
) -> tuple[Path, list[dict]]:
    """Fine-tune ``base_model`` on ``examples`` (dicts with ``prompt`` and ``completion``) with
    TRL's ``SFTTrainer`` (loss on the completion only) and save model and tokenizer to
    ``output_dir``. Returns the folder and the log history.

    Examples with an ``image`` (a conversation as ``prompt`` and ``completion``) train a
    vision-language model through TRL's vision path, with its processor."""
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from dmpo.models import load_model_and_tokenizer
    from dmpo.models.vlm import is_processor

    if not examples:
        raise DmpoError("the SFT dataset is empty")
    model, tokenizer = load_model_and_tokenizer(base_model)  # a processor for a VLM
    vision = "image" in examples[0]
    if vision and not is_processor(tokenizer):
        raise DmpoError(f"the SFT examples hold images but {os.fspath(base_model)!r} is not a vision-language "
                        "model (its folder has no vision config / processor)")
    if not vision and is_processor(tokenizer):
        raise DmpoError(f"{os.fspath(base_model)!r} is a vision-language model; give it image examples "
                        "(modality vision)")
    names = ("prompt", "completion", "image") if vision else ("prompt", "completion")
    columns = {name: [row[name] for row in examples] for name in names}
    dataset = Dataset.from_dict(columns)
    output_dir = Path(output_dir)
    cpu = _use_cpu()
    total_steps = math.ceil(len(dataset) / batch_size) * epochs
    config = SFTConfig(
        output_dir=str(output_dir / "trainer"),
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=learning_rate,
        lr_scheduler_type="cosine",
        warmup_steps=0.05,
        weight_decay=0.0,
        max_length=max_length,
        completion_only_loss=True,
        logging_steps=max(1, min(10, int(total_steps) // 20)),
        save_strategy="no",
        report_to="none",
        seed=seed,
        data_seed=seed,
        use_cpu=cpu,
        bf16=False,
        gradient_checkpointing=False,
        disable_tqdm=not progress,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(model=model, args=config, train_dataset=dataset, processing_class=tokenizer)
    set_progress(trainer, progress, "SFT", {"loss": "loss", "mean_token_accuracy": "token acc"})
    trainer.train()
    trainer.save_model(str(output_dir))
    tokenizer.save_pretrained(str(output_dir))
    shutil.rmtree(output_dir / "trainer", ignore_errors=True)
    return output_dir, list(trainer.state.log_history)
