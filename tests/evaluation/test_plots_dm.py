"""The DM diagnostics figure: its panels name logged metrics, and it draws runs and seeds."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from dmpo.evaluation.plots import DM_DIAGNOSTIC_PANELS, plot_dm_diagnostics
from dmpo.objectives.dm_term import DM_DIAGNOSTICS

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_panels_name_logged_metrics():
    keys = {key for _, panel, _ in DM_DIAGNOSTIC_PANELS for key, _ in panel}
    # Every panel's metric is a DM diagnostic, or the trainer's zero-signal share (every run).
    assert keys - set(DM_DIAGNOSTICS) == {"group/zero_std_frac"}
    assert {"dm_grad_share", "dm_grad_ratio", "phi_std", "entropy_q", "entropy_p"} <= keys


def history(share: float, steps: int = 6) -> list[dict]:
    return [{"step": s, "dm_grad_share": share, "dm_grad_ratio": share / (1 - share), "dm_base_cos": 0.7,
             "phi_std": 0.1, "entropy_q": 2.07, "entropy_p": 0.6, "group/zero_std_frac": 0.25}
            for s in range(1, steps + 1)]


def test_plot_one_run_seeds_and_a_run_without_dm(tmp_path):
    runs = {"dmpo": [history(0.1), history(0.2)],  # seeds: mean with a band
            "dmpo-share": history(1 / 3),  # one history
            "grpo": [[{"step": s, "group/zero_std_frac": 0.5} for s in range(1, 7)]]}  # no DM metrics
    path = plot_dm_diagnostics(runs, tmp_path / "dm.png", group_size=8, title="t")
    assert path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size < 200_000
    empty = plot_dm_diagnostics({"grpo": []}, tmp_path / "empty.png")  # nothing logged: still a figure
    assert empty.read_bytes()[:8] == PNG_MAGIC
