"""The benchmark suite runs and prints its table (tiny sizes; the numbers live in the README)."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO


def test_benchmark_prints_its_ratios(tmp_path):
    # Result 3 runs two sweeps of 2 trials (1 worker, then 2 spawned workers), result 4
    # two exploding sweeps of 2 trials of 2 epochs, result 5 four trials in this process.
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench",
            "--epochs",
            "3",
            "--repeats",
            "1",
            "--trials",
            "2",
            "--workers",
            "2",
            "--prune-trials",
            "2",
            "--prune-epochs",
            "2",
            "--memory-trials",
            "4",
            "--data-dir",
            str(tmp_path),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("result"))
    rows = lines[header + 1 : header + 6]
    assert [r.split()[0] for r in rows] == ["1", "2", "3", "4", "5"]
    assert "trials/min" in rows[2] and rows[2].endswith(">= 0.80")
    assert any(line.startswith("4: sweep exploding, 2 trials of 2 epochs") and "regions" in line for line in lines)
    assert any(line.endswith("the most any pruner could cut") for line in lines)
    assert any(line.startswith("5: ") and "first_epoch" in line and "build" in line for line in lines)
    for row in rows:
        ratio = float(row.split()[-3])
        assert 0 < ratio < 100


def test_population_benchmark_runs_both_sweeps_on_the_same_points():
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.populations", "--trials", "6", "--population", "3", "--epochs", "2"],
        cwd=REPO, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    head = next(line for line in done.stdout.splitlines() if line.startswith("7: "))
    assert "6 trials, population 3 vs 1 (same points)" in head and "a 1,000-trial map at this rate" in head
    same = int(head.split("same verdict in ")[1].split("/")[0])
    assert 0 <= same <= 6
    assert "time in trials, population: " in done.stdout and "time in trials, alone: " in done.stdout
    overhead = next(line for line in done.stdout.splitlines() if line.startswith("1 per member: "))
    assert "a steady epoch of 3 tutorial vanishing nets" in overhead and overhead.endswith("(goal <= 1.05)")
    assert 0.5 < float(overhead.split(" = ")[1].split()[0]) < 5
