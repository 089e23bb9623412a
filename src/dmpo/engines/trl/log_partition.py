"""FlowRL's learned log-partition log Z_φ(x) for the TRL trainer.

FlowRL (arXiv 2509.15207) needs, per prompt, an estimate of log Z(x) that is trained jointly
with the policy. The authors attach a small MLP to the policy: (L−1) blocks of Linear → GELU →
LayerNorm → Dropout(0.1) and a final Linear to one number, applied to the policy's last-layer
hidden states of the prompt. Here:

- **Input**: the final hidden state at the *last prompt token* (the decoder's output, i.e. the
  input of the LM head), which in a causal LM has read the whole prompt. The authors average
  over the prompt tokens; the last token's state is taken from the trainer's own forward pass,
  so the head costs no extra forward pass. The hidden state is detached: log Z is learned by the head alone and does
  not reshape the policy's representation.
- **Where it lives**: a submodule ``dmpo_log_z_head`` of the trained model, so the optimiser
  trains it, checkpoints save it and ``resume_from_checkpoint`` restores it; a saved model
  reloads as a plain causal LM whose loader ignores the head's weights (unused at inference).
"""

from __future__ import annotations

import torch
from torch import nn

HEAD_NAME = "dmpo_log_z_head"


class LogPartitionHead(nn.Module):
    """log Z_φ(x) from a prompt's hidden state [N, H] → [N]."""

    def __init__(self, hidden_size: int, num_layers: int = 3, dropout: float = 0.1) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        for _ in range(num_layers - 1):
            layers += [nn.Linear(hidden_size, hidden_size), nn.GELU(), nn.LayerNorm(hidden_size),
                       nn.Dropout(dropout)]
        layers.append(nn.Linear(hidden_size, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.net(hidden).squeeze(-1)


class LastPromptHiddenState:
    """Records the decoder's final hidden state at the last prompt token while active (a forward
    hook on the model's decoder, whose output is the LM head's input). Prompts are left-padded
    and completions follow them, so with completion length C that token sits at position −(C+1)
    of every row."""

    def __init__(self, decoder: nn.Module) -> None:
        self.position: int | None = None
        self.captured: list[torch.Tensor] = []
        self.handle = decoder.register_forward_hook(self._hook)

    def _hook(self, module: nn.Module, args: tuple, output: object) -> None:
        if self.position is None:
            return
        hidden = output[0] if isinstance(output, tuple) else output.last_hidden_state
        self.captured.append(hidden[:, self.position, :].detach())

    def start(self, completion_length: int) -> None:
        self.position, self.captured = -(completion_length + 1), []

    def stop(self) -> torch.Tensor:
        self.position = None
        hidden, self.captured = torch.cat(self.captured), []
        return hidden
