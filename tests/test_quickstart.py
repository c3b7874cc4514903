"""The main job as a newcomer runs it: the packaged quickstart end to end, on the three seeds of the
quickstart's target (about 10 minutes each on a 2-core CPU; `pytest -m slow`). CI runs the smoke config of
the same pipeline (.ci/run)."""
import json

import numpy as np
import pytest

from tcn_robot.cli import main


@pytest.mark.slow
def test_the_quickstart_pipeline_learns_to_pour(tmp_path):
    """Seeds 0-2 of the packaged quickstart: the policies, rewarded only by the TCN distance to one held-out
    human-proxy video, put at least 70% of the particles into the bowl on average over 10 held-out
    evaluation episodes each (the target of the quickstart; docs/results.md has every seed)."""
    poured = []
    for seed in range(3):
        out = tmp_path / f"quickstart_s{seed}"
        assert main(["pipeline", "--out", str(out), "--seed", str(seed)]) == 0
        final = json.loads((out / "metrics.json").read_text())["train_rl"]
        assert final["reward"] == "tcn" and len(final["final_eval"]["fraction_in_bowl"]) == 10
        poured.append(final["final_eval"]["fraction_in_bowl_mean"])
    assert np.mean(poured) >= 0.7, poured
