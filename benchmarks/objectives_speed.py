"""Forward + backward time of every group objective, relative to grpo on the same tensors.

    python benchmarks/objectives_speed.py                # 512 completions × 1024 tokens, groups of 8
    python benchmarks/objectives_speed.py --device cuda --repeats 21

Inputs: a random per-token log-prob leaf tensor (requires grad), old and reference log-probs
nearby, random completion lengths, rewards in groups. Each repeat runs every objective once,
in a fresh random order (interleaved, so that drift on a shared machine hits all alike); the
table reports medians over repeats of wall and process CPU time, and the ratio to grpo's
median (CPU time on a CPU, where other processes inflate wall time; wall time on a GPU).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

import torch

from dmpo import objectives
from dmpo.objectives import GroupBatch
from dmpo.objectives.dm_term import dm_coefficients


def make_batch(
    completions: int, tokens: int, group_size: int, device: str, seed: int
) -> GroupBatch:
    gen = torch.Generator().manual_seed(seed)
    logps = -torch.rand(completions, tokens, generator=gen) * 3
    lengths = torch.randint(1, tokens + 1, (completions,), generator=gen)
    mask = (torch.arange(tokens)[None, :] < lengths[:, None]).float()
    batch = GroupBatch(
        logps=logps.to(device).requires_grad_(),
        mask=mask.to(device),
        rewards=torch.randint(0, 2, (completions,), generator=gen).float().to(device),
        group_ids=(torch.arange(completions) // group_size).to(device),
        old_logps=(logps + 0.1 * torch.randn(completions, tokens, generator=gen)).to(device),
        ref_logps=(logps + 0.1 * torch.randn(completions, tokens, generator=gen)).to(device),
        entropies=torch.rand(completions, tokens, generator=gen).to(device) * 2,
        hellinger=torch.rand(completions, tokens, generator=gen).to(device) * 0.1,
        # FlowRL's log Z: one value per prompt, shared by its group, trained with the policy.
        log_z=torch.randn(completions // group_size + 1, generator=gen)[
            torch.arange(completions) // group_size].to(device).requires_grad_(),
    )
    return batch


def extra_params(batch: GroupBatch) -> dict[str, dict]:
    """Parameters some objectives need beyond the batch."""
    coefficients = dm_coefficients(batch.logps, batch.mask, batch.rewards, batch.group_ids)
    return {"dgpo": {"vocab_size": 32000}, "dmpo-coef": {"coefficients": coefficients}}


def time_once(name: str, batch: GroupBatch, params: dict, device: str) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of one forward + backward."""
    batch.logps.grad = None
    if device == "cuda":
        torch.cuda.synchronize()
    wall, cpu = time.perf_counter(), time.process_time()
    objectives.get(name)(batch, **params).loss.backward()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--completions", type=int, default=512)
    parser.add_argument("--tokens", type=int, default=1024)
    parser.add_argument("--group-size", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument(
        "--only", nargs="*", help="objectives to time (default: all group objectives)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    batch = make_batch(args.completions, args.tokens, args.group_size, args.device, seed=0)
    params = extra_params(batch)
    names = args.only or objectives.names("group")
    if "grpo" not in names:
        names = ["grpo", *names]
    runnable = []
    for name in names:  # warm-up, and skip objectives these inputs cannot drive
        try:
            time_once(name, batch, params.get(name, {}), args.device)
            runnable.append(name)
        except Exception as error:  # a benchmark reports, it does not stop
            print(f"skipping {name}: {type(error).__name__}: {error}")

    wall: dict[str, list[float]] = {name: [] for name in runnable}
    cpu: dict[str, list[float]] = {name: [] for name in runnable}
    order = list(runnable)
    rng = random.Random(0)
    for _ in range(args.repeats):
        rng.shuffle(order)
        for name in order:
            seconds, cpu_seconds = time_once(name, batch, params.get(name, {}), args.device)
            wall[name].append(seconds)
            cpu[name].append(cpu_seconds)

    # On a shared CPU, wall time includes time spent descheduled; the process's CPU time does
    # not, so its ratio is the steadier one there. On a GPU, synchronised wall time is the measure.
    steady = cpu if args.device == "cpu" else wall
    base = statistics.median(steady["grpo"])
    threads = torch.get_num_threads() if args.device == "cpu" else "-"
    print(
        f"{args.completions} completions × {args.tokens} tokens, groups of {args.group_size}, "
        f"device {args.device}, threads {threads}, medians of {args.repeats} interleaved repeats"
    )
    measure = "CPU" if args.device == "cpu" else "wall"
    print(f"| objective    | wall ms | CPU ms | × grpo ({measure:>4}) |")
    print("|--------------|--------:|-------:|---------------:|")
    for name in runnable:
        w, c = statistics.median(wall[name]) * 1e3, statistics.median(cpu[name]) * 1e3
        ratio = statistics.median(steady[name]) / base
        print(f"| {name:<12} | {w:7.1f} | {c:6.1f} | {ratio:14.2f} |")


if __name__ == "__main__":
    main()
