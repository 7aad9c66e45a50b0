# A gradsweep worker: the package with its PostgreSQL extra, run as
# `python -m gradsweep +sweep=NAME sweep.storage=... tracking.uri=...` (docker-compose.yml).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true TF_CPP_MIN_LOG_LEVEL=2

WORKDIR /src
COPY pyproject.toml README.md ./
COPY conf conf
COPY gradsweep gradsweep
# A regular (not editable) install: the sweep configs ship inside the package.
RUN pip install ".[postgres]"

RUN useradd --create-home --uid 1000 gradsweep
USER gradsweep
# Hydra's run folders (sweeps/<name>/) go here, inside the container.
WORKDIR /home/gradsweep
CMD ["python", "-m", "gradsweep", "--help"]
