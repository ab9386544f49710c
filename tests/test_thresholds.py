"""The thresholds the service compares against: read from the rules file Prometheus loads, one place to tune."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.infra import REPO
from vision_service.thresholds import Thresholds, ThresholdsError, load_thresholds, packaged_path

COMPOSE_THRESHOLDS = REPO / "compose" / "prometheus" / "rules" / "thresholds.yml"


def test_the_packaged_copy_is_the_compose_file_byte_for_byte() -> None:
    """The installed package (and the Docker image) cannot see compose/: it ships this copy instead."""
    assert packaged_path().read_bytes() == COMPOSE_THRESHOLDS.read_bytes(), (
        "vision_service/thresholds.yml differs from compose/prometheus/rules/thresholds.yml; after tuning a "
        "threshold run: cp compose/prometheus/rules/thresholds.yml vision_service/thresholds.yml"
    )


def test_the_packaged_file_is_package_data() -> None:
    text = (REPO / "pyproject.toml").read_text()
    assert '"thresholds.yml"' in text


def test_defaults_are_the_numbers_of_the_rules_file() -> None:
    thresholds = load_thresholds()
    assert thresholds.low_brightness_ratio == 0.15
    assert thresholds.high_noise_sigma == 8
    assert thresholds.blurry_sharpness == 50
    assert (thresholds.drift_psi, thresholds.drift_ks, thresholds.drift_min_window_size) == (0.25, 0.2, 100)
    assert thresholds.origin == str(packaged_path())


def test_an_operators_file_changes_them(tmp_path: Path) -> None:
    tuned = tmp_path / "thresholds.yml"
    tuned.write_text(COMPOSE_THRESHOLDS.read_text().replace("vector(0.15)", "vector(0.2)", 1))
    assert load_thresholds(tuned).low_brightness_ratio == 0.2


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("groups: [}", "cannot read"),
        ("just: a mapping\n", "not a Prometheus rules file"),
        (
            "groups:\n  - name: x\n    rules:\n      - record: vision:threshold:drift_ks\n        expr: 1 + 1\n",
            "vector",
        ),
        ("groups:\n  - name: x\n    rules: []\n", "missing vision:threshold:low_brightness_ratio"),
    ],
)
def test_a_broken_file_is_refused_with_a_reason(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "thresholds.yml"
    path.write_text(text)
    with pytest.raises(ThresholdsError, match=message):
        load_thresholds(path)


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "nope.yml")


def test_as_dict_lists_every_threshold_once() -> None:
    values = load_thresholds().as_dict()
    assert set(values) == {f for f in Thresholds.__dataclass_fields__ if f != "origin"}
