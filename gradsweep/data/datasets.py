"""Data sets: load, split, oversample, scale.

Every loader returns a feature frame and a 0/1 label vector; :func:`load` turns them
into a :class:`Dataset` the same way for all of them, so the split, the oversampling
and the scaling are owned here once.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import List, Tuple

import numpy as np
import pandas as pd

from gradsweep.config import DataConfig
from gradsweep.errors import DataError, first_line

log = logging.getLogger(__name__)


@dataclass
class Dataset:
    """A binary classification problem, split and ready to train on (float32)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    features: List[str]

    @cached_property
    def digest(self) -> str:
        """A short content hash of all four arrays, to tell data versions apart."""
        h = hashlib.sha256()
        for a in (self.x_train, self.y_train, self.x_val, self.y_val):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]

    @property
    def positive_rate(self) -> float:
        """Share of positive labels in the training split."""
        return float(self.y_train.mean())

    @cached_property
    def mean_square(self) -> float:
        """Mean square of the training inputs: the first layer's input moment in mean-field theory."""
        return float(np.mean(np.square(self.x_train)))


def _breast_cancer(cfg: DataConfig) -> Tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import load_breast_cancer

    bunch = load_breast_cancer(as_frame=True)
    return bunch.data, bunch.target


def _digits(cfg: DataConfig) -> Tuple[pd.DataFrame, pd.Series]:
    """scikit-learn's bundled 8 x 8 handwritten digits, labelled odd (1) or even (0): a
    task that needs the pixels' information, as MNIST did for Schoenholz et al. 2017."""
    from sklearn.datasets import load_digits

    bunch = load_digits(as_frame=True)
    return bunch.data, bunch.target % 2


def _moons(cfg: DataConfig) -> Tuple[pd.DataFrame, pd.Series]:
    from sklearn.datasets import make_moons

    x, y = make_moons(n_samples=cfg.n_samples, noise=cfg.noise, random_state=cfg.seed)
    return pd.DataFrame(x, columns=["x0", "x1"]), pd.Series(y)


def _read_csv(path: Path, key: str) -> pd.DataFrame:
    if not path.is_file():
        raise DataError(f"{key}: file not found: {path}")
    try:
        with open(path, newline="") as file:
            header = next(csv.reader(file), [])
        frame = pd.read_csv(path)
    except Exception as err:
        raise DataError(f"{key}: cannot read {path} as CSV: {first_line(err)}") from None
    # pandas would rename a repeated column (y, y.1) and a copy of the label could
    # then train as a feature.
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise DataError(f"{key}: {path} has the column {repeated[0]!r} more than once")
    return frame


def _fill_mode(frame: pd.DataFrame) -> pd.DataFrame:
    """Fills NaN with each column's most frequent value, as the tutorial does."""
    frame = frame.copy()
    for column in frame.columns[frame.isna().any()]:
        modes = frame[column].mode()
        if not modes.empty:
            frame[column] = frame[column].fillna(modes.iloc[0])
    return frame


def _credit_card(cfg: DataConfig) -> Tuple[pd.DataFrame, pd.Series]:
    """The tutorial's pipeline on the Kaggle "credit card details" files."""
    folder = Path(cfg.dir or "")
    features = _read_csv(folder / "Credit_card.csv", "data.dir")
    labels = _read_csv(folder / "Credit_card_label.csv", "data.dir")
    for frame, name, needed in (
        (features, "Credit_card.csv", ("Ind_ID", "Birthday_count", "Employed_days")),
        (labels, "Credit_card_label.csv", ("Ind_ID", "label")),
    ):
        missing = [c for c in needed if c not in frame.columns]
        if missing:
            raise DataError(f"data.dir: {folder / name} has no column {missing[0]!r}")
    df = features.merge(labels, on="Ind_ID").rename(columns={"label": "Approved"})
    df = _fill_mode(df)  # before deriving Age, so a missing birthday takes the mode too
    df["Age"] = -df["Birthday_count"] // 365
    # Employed_days < 0 counts days in work; > 0 (365243 for pensioners) days without.
    df["EmployedDaysOnly"] = (-df["Employed_days"]).clip(lower=0)
    df["UnemployedDaysOnly"] = df["Employed_days"].clip(lower=0)
    df = df.drop(columns=["Ind_ID", "Birthday_count", "Employed_days"])
    return df.drop(columns=["Approved"]), df["Approved"]


def _numeric_or_junk(series: pd.Series) -> bool:
    """True when an object column is numbers with a few stray strings (junk)."""
    parsed = pd.to_numeric(series.dropna(), errors="coerce")
    return len(parsed) > 0 and parsed.notna().mean() >= 0.9


def _user_csv(cfg: DataConfig) -> Tuple[pd.DataFrame, pd.Series]:
    path = Path(cfg.path or "")
    df = _read_csv(path, "data.path")
    if cfg.target not in df.columns:
        raise DataError(f"data.target: column {cfg.target!r} not in {path} (columns: {', '.join(df.columns)})")
    for column in df.columns:
        if not pd.api.types.is_numeric_dtype(df[column]) and _numeric_or_junk(df[column]):
            bad = df[column][pd.to_numeric(df[column], errors="coerce").isna() & df[column].notna()]
            raise DataError(f"data.path: {path} column {column!r} is numeric but holds {bad.iloc[0]!r}")
    features = df.drop(columns=[cfg.target])
    missing = features.isna().sum()
    for column in missing[missing > 0].index:
        log.warning("%s: %d missing values of column %r take its most frequent value", path, missing[column], column)
    return _fill_mode(features), df[cfg.target]


LOADERS = {
    "breast_cancer": _breast_cancer,
    "digits": _digits,
    "moons": _moons,
    "credit_card": _credit_card,
    "csv": _user_csv,
}


def _encode(x: pd.DataFrame, y: pd.Series, key: str) -> Tuple[pd.DataFrame, np.ndarray]:
    """Codes categorical columns as integers and the label as 0/1."""
    x = x.copy()
    for column in x.columns:
        if not pd.api.types.is_numeric_dtype(x[column]) or pd.api.types.is_bool_dtype(x[column]):
            x[column] = x[column].astype("category").cat.codes
    classes = sorted(pd.unique(y.dropna()).tolist(), key=str)
    if len(classes) != 2:
        raise DataError(f"{key}: the label must have exactly 2 classes, found {len(classes)}")
    if y.isna().any():
        raise DataError(f"{key}: the label has missing values")
    return x.astype("float32"), (y == classes[1]).to_numpy(dtype="float32")


# Fewer rows than this, or than MIN_PER_CLASS of a class, in a split: nothing a verdict
# or a validation loss could be read from.
MIN_ROWS = {"training": 8, "validation": 2}
MIN_PER_CLASS = 1


def _check_finite(x: np.ndarray, columns: List[str], where: str) -> None:
    """NaN or inf in the features would make every gradient non-finite: a verdict on
    the data, not on the network."""
    bad = ~np.isfinite(x)
    if bad.any():
        column = int(np.argmax(bad.any(axis=0)))
        raise DataError(
            f"{where} feature {columns[column]!r} has {int(bad[:, column].sum())} NaN or infinite "
            "values; clean or drop them"
        )


def _check_split(y: np.ndarray, split: str, cfg: DataConfig) -> None:
    counts = [int((y == 0).sum()), int((y == 1).sum())]
    if len(y) < MIN_ROWS[split] or min(counts) < MIN_PER_CLASS:
        raise DataError(
            f"data.val_fraction: the {split} split has {len(y)} rows ({counts[0]} negative, {counts[1]} positive); "
            f"it needs at least {MIN_ROWS[split]} rows and {MIN_PER_CLASS} of each class (more data, or another "
            "data.val_fraction)"
        )


def _oversample(x: np.ndarray, y: np.ndarray, seed: int) -> Tuple[np.ndarray, np.ndarray]:
    from imblearn.over_sampling import RandomOverSampler

    return RandomOverSampler(random_state=seed).fit_resample(x, y)


def load(cfg: DataConfig) -> Dataset:
    """Loads, encodes, splits and prepares the configured data set.

    Raises:
        DataError: a file or column is missing or unusable; the message names it.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    frame, labels = LOADERS[cfg.name](cfg)
    frame, y = _encode(frame, labels, "data.target" if cfg.name == "csv" else "data")
    x = frame.to_numpy(dtype="float32")
    _check_finite(x, list(frame.columns), f"data.path: {cfg.path}" if cfg.name == "csv" else "data:")
    if cfg.limit is not None and cfg.limit < len(x):
        keep = np.random.default_rng(cfg.seed).permutation(len(x))[: cfg.limit]
        x, y = x[keep], y[keep]
    if cfg.oversample == "before_split":
        log.warning(
            "data.oversample=before_split reproduces the tutorial's leak: copies of "
            "training rows land in the validation split and inflate its accuracy"
        )
        x, y = _oversample(x, y, cfg.seed)
    try:
        x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=cfg.val_fraction, random_state=cfg.seed)
    except ValueError as err:  # a split left empty
        raise DataError(f"data.val_fraction: {cfg.val_fraction} of {len(x)} rows: {first_line(err)}") from None
    _check_split(y_train, "training", cfg)
    _check_split(y_val, "validation", cfg)
    if cfg.oversample == "train":
        x_train, y_train = _oversample(x_train, y_train, cfg.seed)
    if cfg.scale:
        scaler = StandardScaler().fit(x_train)
        x_train, x_val = scaler.transform(x_train), scaler.transform(x_val)
    return Dataset(
        x_train=np.asarray(x_train, dtype="float32"),
        y_train=np.asarray(y_train, dtype="float32"),
        x_val=np.asarray(x_val, dtype="float32"),
        y_val=np.asarray(y_val, dtype="float32"),
        features=list(frame.columns),
    )
