"""The trial record as the Optuna storage keeps it."""

from __future__ import annotations

from gradsweep.keys import TrialRecord


def test_a_trial_record_is_two_attributes_and_reads_back_whole():
    record = TrialRecord(
        regime="exploding",
        detail="depth_growth",
        evidence="grows 1.4x a layer",
        facts={"growth": 1.4, "nan": float("nan")},
        metrics={"val/loss": 0.3},
        stop_reason="completed",
        epochs_run=5,
        seconds={"train": 0.12345},
        theory_chi1=1.3,
        measured_chi1=float("inf"),
    )
    attrs = record.attrs()
    assert set(attrs) == {"regime", "record"} and attrs["regime"] == "exploding"
    back = TrialRecord.read(attrs)
    assert back.facts == {"growth": 1.4} and back.measured_chi1 is None  # non-finite values left out
    assert back == TrialRecord(
        **{**vars(record), "facts": {"growth": 1.4}, "seconds": {"train": 0.1235}, "measured_chi1": None}
    )


def test_a_record_kept_one_attribute_a_key_by_an_older_version_still_reads():
    older = {"regime": "vanishing", "regime.detail": "saturation", "epochs_run": 3, "seconds": {"train": 1.0}}
    record = TrialRecord.read(older)
    assert (record.regime, record.detail, record.epochs_run, record.seconds) == (
        "vanishing",
        "saturation",
        3,
        {"train": 1.0},
    )
    assert TrialRecord.read({}).regime == "unknown"  # a trial still running
