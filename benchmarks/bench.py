"""gradsweep benchmarks: each result is a ratio against a baseline measured in the same run.

    python -m benchmarks.bench                 # full sizes (a few minutes on 2 cores)
    python -m benchmarks.bench --epochs 3 --repeats 1   # a quick check

Results (medians over --repeats):
1. overhead: steady epoch of gradsweep's instrumented model (gradient statistics for
   every layer at every step) / the same model as a plain Keras model, same tf.data
   pipeline and steps_per_execution. Goal <= 1.05.
2. trial: one complete gradsweep run of the tutorial's vanishing model (statistics,
   probes, verdict, MLflow logging into a fresh SQLite store, artifacts) / the tutorial's
   own `model.fit(X_train, y_train, epochs=N)` on NumPy arrays. Goal <= 0.5.

The data is the tutorial's credit card data when --data-dir has it, else random data of
the same shape (2196 x 18): the timings depend on the shape, not the values.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gradsweep.config import Config, DataConfig, ModelConfig, TrackingConfig, TrainConfig  # noqa: E402
from gradsweep.data import Dataset, load  # noqa: E402
from gradsweep.model import build_model  # noqa: E402
from gradsweep.tracking import Tracker  # noqa: E402
from gradsweep.trial import run_recorded  # noqa: E402
from gradsweep.training import _pipeline, seed_everything  # noqa: E402

VANISHING = ModelConfig(activation="sigmoid", depth=10, width=10, init="glorot_uniform")


def _data(data_dir: str) -> Dataset:
    if (Path(data_dir) / "Credit_card.csv").is_file():
        return load(DataConfig(name="credit_card", dir=data_dir, oversample="before_split"))
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (2746, 18)).astype("float32") * 1e4
    y = (rng.random(2746) < 0.5).astype("float32")
    return Dataset(x[:2196], y[:2196], x[2196:], y[2196:], [f"f{i}" for i in range(18)])


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def _plain(n_features: int, seed: int) -> keras.Model:
    """The same network as gradsweep builds, as a plain Keras model."""
    instrumented = build_model(VANISHING, n_features, seed)
    plain = keras.Model(instrumented.input, instrumented.output)
    return plain


def _steady_epoch(model: keras.Model, data: Dataset, epochs: int) -> float:
    steps = int(np.ceil(len(data.x_train) / 32))
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"], steps_per_execution=steps)
    timer = _EpochTimer()
    model.fit(_pipeline(data.x_train, data.y_train, 32, 0),
              validation_data=_pipeline(data.x_val, data.y_val, 1024, None),
              epochs=epochs, callbacks=[timer], verbose=0, shuffle=False)
    return statistics.median(timer.times[1:])  # the first epoch traces


def overhead(data: Dataset, epochs: int, repeats: int) -> tuple[float, float]:
    plain, ours = [], []
    for r in range(repeats):  # interleaved, so drift hits both alike
        keras.backend.clear_session()
        seed_everything(r)
        plain.append(_steady_epoch(_plain(data.x_train.shape[1], r), data, epochs))
        keras.backend.clear_session()
        seed_everything(r)
        ours.append(_steady_epoch(build_model(VANISHING, data.x_train.shape[1], r), data, epochs))
    return statistics.median(plain), statistics.median(ours)


def _tutorial_fit(data: Dataset, epochs: int, seed: int) -> float:
    keras.backend.clear_session()
    seed_everything(seed)
    model = keras.Sequential([keras.Input((data.x_train.shape[1],))]
                             + [keras.layers.Dense(10, activation="sigmoid") for _ in range(10)]
                             + [keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    start = time.perf_counter()
    model.fit(data.x_train, data.y_train, epochs=epochs, verbose=0)
    return time.perf_counter() - start


def _gradsweep_trial(data: Dataset, epochs: int, seed: int, folder: Path) -> float:
    config = Config(data=DataConfig(name="credit_card", dir="-"), model=VANISHING,
                    train=TrainConfig(epochs=epochs, batch_size=32))
    start = time.perf_counter()
    tracker = Tracker(TrackingConfig(uri=f"sqlite:///{folder}/m{seed}.db", artifacts=str(folder / "a")))
    run_recorded(config, data, seed, tracker, f"bench-{seed}", {})
    return time.perf_counter() - start


def trial(data: Dataset, epochs: int, repeats: int) -> tuple[float, float]:
    tutorial, ours = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(repeats):
            tutorial.append(_tutorial_fit(data, epochs, r))
            ours.append(_gradsweep_trial(data, epochs, r, Path(tmp)))
    return statistics.median(tutorial), statistics.median(ours)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=100, help="epochs per fit (default 100, as the tutorial)")
    parser.add_argument("--repeats", type=int, default=3, help="repeats per measurement (median)")
    parser.add_argument("--data-dir", default="../shared/data/credit_card", help="folder of the Kaggle CSVs")
    args = parser.parse_args(argv)
    data = _data(args.data_dir)
    print(f"data: {len(data.x_train)} x {data.x_train.shape[1]}, epochs {args.epochs}, repeats {args.repeats}, "
          f"TensorFlow {tf.__version__}, devices {[d.device_type for d in tf.config.list_logical_devices()]}")
    rows = []
    base, ours = overhead(data, max(args.epochs // 4, 3), args.repeats)
    rows.append(("1 gradient statistics", "steady epoch", base, ours, "<= 1.05"))
    base, ours = trial(data, args.epochs, args.repeats)
    rows.append(("2 full trial vs tutorial fit", "wall", base, ours, "<= 0.50"))
    print(f"{'result':32} {'measure':13} {'baseline s':>11} {'gradsweep s':>12} {'ratio':>7}  goal")
    for name, what, b, o, goal in rows:
        print(f"{name:32} {what:13} {b:11.4f} {o:12.4f} {o / b:7.3f}  {goal}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
