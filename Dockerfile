# interaction-consumer: build a wheel, install it into a slim runtime, run as non-root.
FROM python:3.11-slim-bookworm AS build
# a C compiler for mypyc: the engine ships compiled (setup.py); Debian's current gcc is the
# point, so it is not pinned to a version its security updates would soon remove
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml setup.py README.md ./
COPY consumer ./consumer
# with the msk extra: Amazon MSK's IAM tokens (kafka.oauth.provider = "aws-msk-iam")
RUN CONSUMER_USE_MYPYC=1 pip wheel --no-cache-dir --wheel-dir /wheels ".[msk]"

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --system --gid 10001 app \
    && useradd --system --uid 10001 --gid app --no-create-home --shell /usr/sbin/nologin app
COPY --from=build /wheels /wheels
RUN pip install --no-index --find-links=/wheels "$(ls /wheels/interaction_consumer-*.whl)[msk]" \
    && rm -rf /wheels
USER 10001:10001
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]
# exec form: the process is PID 1 and receives SIGTERM itself
ENTRYPOINT ["interaction-consumer"]
CMD ["run"]
