"""Task sources: NP-Bench, math and reasoning-gym problems behind one interface
(:class:`TaskSource`): items with ids and seeds, a prompt per item, a verdict per completion.

    from dmpo.sources import MathSource, ReasoningGymSource
    source = MathSource("math:synthetic")
    item = source.items(start=1_000_000, count=1)[0]
    source.prompt(item, style="nl")
    source.score(item, "... \\\\boxed{\\\\frac{2}{6}}")    # Verdict: reward, correct, well_formed, answer

A source is named by a spec (``knapsack``, ``math:data.jsonl?answer=solution``,
``math:synthetic``, ``rg:countdown``); ``dmpo.pipeline.sources.get_source`` turns one into a
source. NP-Bench's source is ``dmpo.npbench.source.NPBenchSource``. The math source needs
``math-verify`` and the reasoning-gym source ``reasoning-gym`` (``pip install 'dmpo[sources]'``);
both are imported only when such a source is made.
"""

from dmpo.sources.base import (
    FORMAT_REWARD,
    PROMPT_STYLES,
    Item,
    SourceItem,
    SourceVerdict,
    TaskSource,
    Verdict,
    chat_messages,
    describe_skipped,
    failed_verdict,
    split_spec,
)
from dmpo.sources.extract import final_answer, too_costly
from dmpo.sources.math import MathSource
from dmpo.sources.rg import ReasoningGymSource
from dmpo.sources.timeouts import RewardTimeout, call_with_timeout

__all__ = [
    "FORMAT_REWARD",
    "PROMPT_STYLES",
    "Item",
    "MathSource",
    "ReasoningGymSource",
    "RewardTimeout",
    "SourceItem",
    "SourceVerdict",
    "TaskSource",
    "Verdict",
    "call_with_timeout",
    "chat_messages",
    "describe_skipped",
    "failed_verdict",
    "final_answer",
    "split_spec",
    "too_costly",
]
