"""A tiny policy and a verl batch for the verl tests (float64, CPU, built in milliseconds)."""

from __future__ import annotations

import numpy as np
import torch

VOCAB, PROMPT_LEN, RESPONSE_LEN = 12, 3, 7


class BigramPolicy(torch.nn.Module):
    """log π(x_{t+1} | x_t) = log_softmax(E[x_t] W)[x_{t+1}]: a policy with real parameters."""

    def __init__(self, seed: int = 0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.embed = torch.nn.Parameter(torch.randn(VOCAB, 5, generator=gen, dtype=torch.float64))
        self.out = torch.nn.Parameter(torch.randn(5, VOCAB, generator=gen, dtype=torch.float64))

    def next_logps(self, current: torch.Tensor, following: torch.Tensor) -> torch.Tensor:
        logits = self.embed[current] @ self.out
        return torch.log_softmax(logits, dim=-1).gather(-1, following.unsqueeze(-1)).squeeze(-1)

    def response_logps(self, input_ids: torch.Tensor) -> torch.Tensor:
        """[N, R] log-probs of the response tokens of right-padded ``input_ids`` [N, P + R]."""
        start = PROMPT_LEN - 1
        return self.next_logps(input_ids[:, start:-1], input_ids[:, start + 1 :])

    def flat_logps(self, input_ids_nested: torch.Tensor) -> torch.Tensor:
        """verl's no-padding layout: position i holds log π(x_{i+1} | x_i) within its sequence
        (0 at a sequence's last token), one value per token of the nested ``input_ids``."""
        values, offsets = input_ids_nested.values(), input_ids_nested.offsets()
        following = torch.roll(values, -1)
        lp = self.next_logps(values, following)
        last = torch.zeros_like(values, dtype=torch.bool)
        last[offsets[1:] - 1] = True
        return torch.where(last, torch.zeros_like(lp), lp)


def make_batch(policy: BigramPolicy, *, groups: int = 4, group_size: int = 4, seed: int = 0):
    """A verl ``DataProto`` as the trainer holds it before the advantage: prompts, right-padded
    responses of varied lengths (some empty-ish: at least one token), scores on the last response
    token, ``uid`` per prompt, and ``old_log_probs`` from ``policy``."""
    from verl import DataProto

    gen = torch.Generator().manual_seed(seed)
    n = groups * group_size
    lengths = torch.randint(1, RESPONSE_LEN + 1, (n,), generator=gen)
    prompts = torch.randint(1, VOCAB, (groups, PROMPT_LEN), generator=gen).repeat_interleave(group_size, 0)
    mask = (torch.arange(RESPONSE_LEN)[None] < lengths[:, None]).long()
    responses = torch.randint(1, VOCAB, (n, RESPONSE_LEN), generator=gen) * mask
    input_ids = torch.cat([prompts, responses], 1)
    attention = torch.cat([torch.ones(n, PROMPT_LEN, dtype=torch.long), mask], 1)
    scores = torch.tensor([0.0, 0.1, 0.5, 1.0], dtype=torch.float64)[
        torch.randint(0, 4, (n,), generator=gen)]
    token_scores = torch.zeros(n, RESPONSE_LEN, dtype=torch.float64)
    token_scores[torch.arange(n), lengths - 1] = scores
    with torch.no_grad():
        old = policy.response_logps(input_ids) * mask
    gid = torch.arange(groups).repeat_interleave(group_size)
    return DataProto.from_dict(
        tensors={
            "prompts": prompts, "responses": responses, "response_mask": mask,
            "input_ids": input_ids, "attention_mask": attention,
            "position_ids": (attention.cumsum(1) - 1).clamp(min=0),
            "token_level_scores": token_scores, "token_level_rewards": token_scores,
            "old_log_probs": old, "gid": gid, "score": scores,
        },
        non_tensors={"uid": np.array([f"prompt-{g}" for g in gid.tolist()], dtype=object)},
    )
