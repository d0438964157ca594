"""Protection works on real data: victims trained on protected CIFAR-10 lose accuracy."""

from __future__ import annotations

import pytest

from dememo.experiments.studies.protect_eval import evaluate_protection
from dememo.store import ArtifactStore
from dememo.train import get_recipe


@pytest.mark.slow
def test_ue_s_and_ops_cost_a_victim_at_least_20_points(cifar10, tmp_path):
    """2,000 real CIFAR-10 training images (200 a class), 1,000 test images; fastnet
    victims trained with crop+flip augmentation. UE-s uses a tinycnn surrogate."""
    rows = evaluate_protection(
        cifar10, ["ue-s", "ops"], model="fastnet", recipe=get_recipe("fast"), store=ArtifactStore(tmp_path),
        train_per_class=200, test_per_class=100, options={"ue-s": {"surrogate": "tinycnn"}},
    )  # fmt: skip
    by_method = {row.method: row for row in rows}
    report = {m: round(100 * r.test_accuracy, 2) for m, r in by_method.items()}
    assert by_method["clean"].test_accuracy > 0.45, report
    assert by_method["ue-s"].drop_points >= 20, report
    assert by_method["ops"].drop_points >= 20, report
