"""A normal (non-editable) install finds its configs from any directory."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from conftest import REPO


@pytest.mark.slow
def test_installed_copy_finds_packaged_and_user_configs(tmp_path):
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(REPO)],
        check=True,
        timeout=300,
        capture_output=True,
    )
    assert (target / "gradsweep" / "conf" / "config.yaml").is_file()
    assert (target / "gradsweep" / "conf" / "sweep" / "exploding.yaml").is_file()
    work = tmp_path / "elsewhere"
    (work / "conf" / "sweep").mkdir(parents=True)
    (work / "conf" / "sweep" / "mine.yaml").write_text(
        "# @package _global_\nsweep:\n  name: mine\n  space:\n    model:\n      depth: {type: int, low: 1, high: 3}\n"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    code = (
        "import gradsweep.config.compose as c, sys; print(c.__file__); print(c.config_dir())\n"
        "from hydra import compose, initialize_config_dir\n"
        "from gradsweep.config import register, to_config\nregister()\n"
        "with initialize_config_dir(config_dir=c.config_dir(), version_base='1.3'):\n"
        "    print(to_config(compose('config', overrides=['+sweep=mine'])).sweep.params())\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    module, conf, params = done.stdout.splitlines()[:3]
    assert module.startswith(str(target)) and conf.startswith(str(target))
    assert "model.depth" in params
    shown = subprocess.run(
        [sys.executable, "-m", "gradsweep", "+sweep=exploding", "--cfg", "job"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert shown.returncode == 0 and "name: exploding" in shown.stdout, shown.stderr[-2000:]
