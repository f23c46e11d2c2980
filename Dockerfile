# leadflow worker image (used by docker-compose.yml for `worker` and `topics-init`).
#   docker build -t leadflow:local .
#   docker run --rm -e LEADFLOW_KAFKA_BOOTSTRAP=... -e LEADFLOW_REDIS_URL=... leadflow:local
ARG PYTHON_VERSION=3.11

# --- build: wheels for the dependencies (compilers stay out of the runtime image) -------------
FROM python:${PYTHON_VERSION}-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
# Dependencies only, from pyproject.toml: this layer is rebuilt only when they change.
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" > requirements.txt \
 && pip wheel --wheel-dir /wheels -r requirements.txt

# --- runtime ------------------------------------------------------------------------------------
FROM python:${PYTHON_VERSION}-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LEADFLOW_DATA_DIR=/data \
    LEADFLOW_METRICS_PORT=9464 \
    LEADFLOW_METRICS_HOST=0.0.0.0
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin leadflow \
 && mkdir -p /data \
 && chown leadflow /data
COPY --from=build /wheels /wheels
RUN pip install --no-index /wheels/*.whl && rm -rf /wheels
WORKDIR /app
COPY . .
# Editable install: the `leadflow` command, with the repository layout (schemas/, config/)
# under /app exactly as in development.
RUN pip install --no-deps -e .
USER leadflow
# /metrics, /livez, /readyz (LEADFLOW_METRICS_HOST=0.0.0.0: reachable from outside the container)
EXPOSE 9464
# The lead API (LEADFLOW_API_BIND=0.0.0.0 needs LEADFLOW_API_TOKEN(_FILE))
EXPOSE 6066
CMD ["leadflow", "worker"]
