"""What recovery makes of a trial whose process died between ``ask`` and ``claim``
(gradsweep/study/recovery.py)."""

from __future__ import annotations

import optuna
from optuna.distributions import FloatDistribution
from optuna.trial import TrialState

from gradsweep.keys import TrialAttr
from gradsweep.study.lock import SweepLock
from gradsweep.study.recovery import Recovery
from gradsweep.study.storage import make_storage


def _study_with_an_unclaimed_trial(tmp_path) -> tuple[optuna.Study, optuna.Trial, str]:
    journal = str(tmp_path / "optuna.journal")
    study = optuna.create_study(study_name="s", storage=make_storage(journal))
    # Asked under the lock, its process killed before it wrote its worker token.
    return study, study.ask({"x": FloatDistribution(0.0, 1.0)}), journal


def test_an_unclaimed_trial_is_lost_at_once_under_an_exclusive_lock(tmp_path):
    study, orphan, journal = _study_with_an_unclaimed_trial(tmp_path)
    ended = []
    with SweepLock(journal, "s") as lock:
        assert lock.exclusive
        lost = Recovery(1, ended.append).reclaim(study, lock)
    assert lost == [orphan.number] and [t.number for t in ended] == [orphan.number]
    assert study.get_trials()[orphan.number].state == TrialState.FAIL
    queued = study.get_trials(states=(TrialState.WAITING,))
    assert len(queued) == 1 and queued[0].params == orphan.params
    assert queued[0].user_attrs[TrialAttr.RETRY_OF] == orphan.number


def test_without_an_exclusive_lock_an_unclaimed_trial_gets_a_grace(tmp_path):
    # A storage the sweep lock cannot cover: another machine's worker may claim it yet.
    study, orphan, _ = _study_with_an_unclaimed_trial(tmp_path)
    with SweepLock("mysql+pymysql://db.invalid/optuna", "s") as lock:
        assert not lock.exclusive
        assert Recovery(1, lambda trial: None).reclaim(study, lock) == []
    assert study.get_trials()[orphan.number].state == TrialState.RUNNING
