"""The main job as a newcomer runs it: the packaged quickstart end to end (about 15 minutes on a 2-core CPU;
`pytest -m slow`). CI runs the smoke config of the same pipeline (.ci/run)."""
import json

import pytest

from tcn_robot.cli import main


@pytest.mark.slow
def test_the_quickstart_pipeline_learns_to_pour(tmp_path):
    """Seed 0 of the packaged quickstart: the policy, rewarded only by the TCN distance to one held-out
    human-proxy video, puts at least 70% of the particles into the bowl over 10 held-out episodes
    (the target of the quickstart; docs/results.md has every seed)."""
    assert main(["pipeline", "--out", str(tmp_path / "quickstart")]) == 0
    metrics = json.loads((tmp_path / "quickstart" / "metrics.json").read_text())
    final = metrics["train_rl"]["final_eval"]
    assert metrics["train_rl"]["reward"] == "tcn" and len(final["fraction_in_bowl"]) == 10
    assert final["fraction_in_bowl_mean"] >= 0.7, final
