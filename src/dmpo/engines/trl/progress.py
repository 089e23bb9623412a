"""Training output: a progress bar that shows the main metrics beside it instead of printing
every log row (transformers' default prints one dict per logging step), or silence."""

from __future__ import annotations

from typing import Any


def show_metrics_in_progress_bar(trainer: Any, desc: str, labels: dict[str, str]) -> None:
    """Replace ``trainer``'s progress bar by one titled ``desc`` whose postfix shows the logged
    metrics in ``labels`` (history key → short label)."""
    from transformers.trainer_callback import ProgressCallback

    class MetricsProgress(ProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            super().on_train_begin(args, state, control, **kwargs)
            if self.training_bar is not None:
                self.training_bar.set_description(desc)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if self.training_bar is not None and logs:
                shown = {label: f"{logs[key]:.3g}" for key, label in labels.items()
                         if isinstance(logs.get(key), (int, float))}
                if shown:
                    self.training_bar.set_postfix(shown, refresh=False)

    trainer.remove_callback(ProgressCallback)
    trainer.add_callback(MetricsProgress())


def silence_log_printing(trainer: Any) -> None:
    """Without a progress bar transformers prints every log row; keep the history, print nothing."""
    from transformers.trainer_callback import PrinterCallback

    trainer.remove_callback(PrinterCallback)


def set_progress(trainer: Any, progress: bool, desc: str, labels: dict[str, str]) -> None:
    """A metrics progress bar when ``progress``, else no per-step output at all."""
    if progress:
        show_metrics_in_progress_bar(trainer, desc, labels)
    else:
        silence_log_printing(trainer)
