"""The README is complete for a newcomer: every setting, every subcommand, every make target."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from vision_service import cli
from vision_service.core.config import Settings

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def settings_table() -> str:
    section = README.split("### Settings", 1)[1]
    return "\n".join(line for line in section.splitlines() if line.startswith("| `VISION_"))


def test_every_setting_is_in_the_readme_settings_table() -> None:
    table = settings_table()
    listed = set(re.findall(r"`(VISION_[A-Z_]+)`", table))
    expected = {f"VISION_{name.upper()}" for name in Settings.model_fields}
    assert expected - listed == set(), "settings missing from the README table"
    assert listed - expected == set(), "README table lists settings that do not exist"


def subcommands(parser: argparse.ArgumentParser, prefix: str = "vision-service") -> list[str]:
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found.append(f"{prefix} {name}")
                found.extend(subcommands(sub, f"{prefix} {name}"))
    return found


def test_every_subcommand_is_in_the_readme() -> None:
    commands = subcommands(cli.build_parser())
    assert {"vision-service serve", "vision-service analyze", "vision-service baseline build"} <= set(commands)
    for command in commands:
        if command != "vision-service baseline":  # a group: its one command is listed
            assert f"`{command}" in README, f"{command} is not described in the README"


def test_every_make_target_a_user_runs_is_in_the_readme() -> None:
    for target in ("serve", "test", "lint", "lock", "image-test", "bench", "k8s"):
        assert f"`make {target}" in README, target
