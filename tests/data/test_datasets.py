"""Data loading: the tutorial's credit card pipeline, user CSVs, clear errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from gradsweep.config import DataConfig
from gradsweep.data.datasets import LOADERS, DataError, load


def _copies(x_train: np.ndarray, x_val: np.ndarray) -> int:
    seen = {row.tobytes() for row in x_train}
    return sum(row.tobytes() in seen for row in x_val)


def test_credit_card_features_match_the_tutorial(credit_card_dir):
    frame, labels = LOADERS["credit_card"](DataConfig(name="credit_card", dir=str(credit_card_dir)))
    assert frame.shape == (1548, 18)
    assert int(labels.sum()) == 175
    assert not frame.isna().any().any()
    for derived in ("Age", "EmployedDaysOnly", "UnemployedDaysOnly"):
        assert derived in frame.columns
    assert (frame["EmployedDaysOnly"] >= 0).all() and (frame["UnemployedDaysOnly"] >= 0).all()
    categorical = [c for c in frame.columns if not pd.api.types.is_numeric_dtype(frame[c])]
    flags = ["Mobile_phone", "Work_Phone", "Phone", "EMAIL_ID"]
    assert len(categorical) + len(flags) == 12  # the tutorial's 12 categoricals
    assert all(set(frame[f].unique()) <= {0, 1} for f in flags)


def test_tutorial_order_leaks_copies_into_validation(credit_card_dir, caplog):
    data = load(DataConfig(name="credit_card", dir=str(credit_card_dir), oversample="before_split"))
    assert len(data.x_val) == 550 and len(data.x_train) == 2196
    assert _copies(data.x_train, data.x_val) == 318
    assert "leak" in caplog.text


def test_default_order_oversamples_the_training_split_only(credit_card_dir):
    data = load(DataConfig(name="credit_card", dir=str(credit_card_dir), oversample="train"))
    assert len(data.x_val) == 310  # 20 % of 1548 original rows, none of them copies
    assert data.y_train.mean() == pytest.approx(0.5)
    assert data.y_val.mean() < 0.2


def test_scaling_uses_training_statistics():
    data = load(DataConfig(name="breast_cancer", scale=True))
    assert np.allclose(data.x_train.mean(axis=0), 0, atol=1e-4)
    assert not np.allclose(data.x_val.mean(axis=0), 0, atol=1e-4)


def test_default_dataset_needs_no_download():
    data = load(DataConfig())
    assert data.x_train.shape[1] == 30 and len(data.x_train) + len(data.x_val) == 569
    assert load(DataConfig()).digest == data.digest


def test_digits_are_odd_against_even_without_download():
    data = load(DataConfig(name="digits"))
    assert data.x_train.shape[1] == 64 and len(data.x_train) + len(data.x_val) == 1797
    assert 0.45 < data.positive_rate < 0.55 and set(np.unique(data.y_val)) == {0.0, 1.0}


def test_csv_codes_categoricals_and_fills_missing(tmp_path, caplog):
    path = tmp_path / "d.csv"
    pd.DataFrame(
        {"colour": ["red", "blue", None, "red"] * 10, "size": [1.0, None, 3.0, 4.0] * 10, "label": ["yes", "no"] * 20}
    ).to_csv(path, index=False)
    data = load(DataConfig(name="csv", path=str(path), target="label"))
    assert data.features == ["colour", "size"]
    assert not np.isnan(data.x_train).any()
    assert set(np.unique(data.y_train)) == {0.0, 1.0}
    assert "10 missing values of column 'size' take its most frequent value" in caplog.text


@pytest.mark.parametrize(
    "content, target, message",
    [
        ("a,b\n1,0\n2,1\n", "label", "data.target: column 'label'"),
        (
            "a,label\n1,0\n2,1\nx,0\n3,1\n4,0\n5,1\n6,0\n7,1\n8,0\n9,1\n10,0\n",
            "label",
            "column 'a' is numeric but holds 'x'",
        ),
        ("a,label\n1,0\n2,1\n3,2\n", "label", "exactly 2 classes"),
    ],
)
def test_bad_csv_fails_with_one_clear_message(tmp_path, content, target, message):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        load(DataConfig(name="csv", path=str(path), target=target))


def test_missing_files_are_named(tmp_path):
    with pytest.raises(DataError, match="data.path: file not found"):
        load(DataConfig(name="csv", path=str(tmp_path / "nope.csv"), target="y"))
    with pytest.raises(DataError, match="data.dir: file not found: .*Credit_card.csv"):
        load(DataConfig(name="credit_card", dir=str(tmp_path)))


def test_missing_labels_are_refused_not_filled(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("a,label\n1,0\n2,1\n3,\n4,1\n5,0\n")
    with pytest.raises(DataError, match="label has missing values"):
        load(DataConfig(name="csv", path=str(path), target="label"))
