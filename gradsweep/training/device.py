"""Where TensorFlow runs in this process, and with how many threads.

Must run before TensorFlow executes its first op: devices and thread pools are fixed
once the runtime has started.
"""

from __future__ import annotations

import logging
import os

from gradsweep import logs
from gradsweep.config import ConfigError

log = logging.getLogger(__name__)


def threads_for(threads: int, n_workers: int) -> int:
    """Intra-op threads per process: ``threads``, or this machine's cores shared out.

    N workers each running TensorFlow's default pool (one thread per core) oversubscribe
    the cores N times over; a share of ``cores // N`` keeps them from fighting.
    """
    if threads:
        return threads
    return max(1, (os.cpu_count() or 1) // n_workers)


def configure(device: str, threads: int) -> str:
    """Selects the device and sizes TensorFlow's thread pools.

    Args:
        device: ``auto`` (a GPU if TensorFlow sees one), ``cpu`` or ``gpu``.
        threads: TensorFlow threads for this process (intra- and inter-op pools).

    Returns:
        ``gpu`` or ``cpu``, what this process will use.

    Raises:
        ConfigError: ``device=gpu`` and TensorFlow sees no GPU.
    """
    import tensorflow as tf

    # Asking TensorFlow for GPUs without a driver logs a CUDA error; look for one first.
    gpus = tf.config.list_physical_devices("GPU") if device != "cpu" and logs.nvidia_driver() else []
    try:
        if device == "cpu" or not gpus:
            if device == "gpu":
                raise ConfigError(
                    "device: gpu was asked for but TensorFlow sees no GPU "
                    "(install gradsweep[gpu] and a CUDA driver, or use device=auto)"
                )
            if logs.nvidia_driver():
                tf.config.set_visible_devices([], "GPU")
            used = "cpu"
        else:
            # Several workers share one card: each takes memory as it needs it.
            for gpu in gpus:
                tf.config.experimental.set_memory_growth(gpu, True)
            used = "gpu"
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(threads)
        # The runtime starts at the first op and, without a GPU driver, prints a cuInit
        # error that means nothing on a CPU machine; start it here, where that is silenced.
        with logs.stderr_silenced():
            tf.constant(0.0).numpy()
    except RuntimeError as err:  # the runtime already started (e.g. a second call in one process)
        log.debug("TensorFlow devices already initialised: %s", err)
        used = "gpu" if gpus and device != "cpu" else "cpu"
    return used
