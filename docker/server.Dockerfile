# The team stack's services without TensorFlow: MLflow's tracking server with its
# basic-auth app and the PostgreSQL driver, optuna-dashboard, and the one-shot set-up
# script (docker/mlflow_users.py).
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MLFLOW_DISABLE_TELEMETRY=true MLFLOW_AUTH_CONFIG_PATH=/opt/gradsweep/basic_auth.ini

# Exact versions: a team server should not change under its users on a rebuild. These are
# the ones the stack is tested with (mlflow 3.18.0's mlflow-skinny does not install).
RUN pip install "mlflow[auth]==3.17.2" "psycopg2-binary==2.9.13" "optuna==5.0.0" "optuna-dashboard==0.21.0"

COPY docker/basic_auth.ini docker/mlflow_users.py /opt/gradsweep/

# Unprivileged; a new named volume mounted on /mlartifacts takes this folder's owner.
RUN useradd --create-home --uid 1000 gradsweep && mkdir /mlartifacts && chown gradsweep /mlartifacts
USER gradsweep
WORKDIR /home/gradsweep
