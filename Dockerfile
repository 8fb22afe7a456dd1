# syntax=docker/dockerfile:1.7
# One image for every role: `aitrading serve <service>`, `aitrading operator`,
# `aitrading logs enforce` (the CronJob) — the command picks the role.

ARG PYTHON_VERSION=3.11

# --- dependencies: only uv.lock and pyproject.toml, so this layer is reused until they change
FROM python:${PYTHON_VERSION}-slim AS deps
COPY --from=ghcr.io/astral-sh/uv:0.5 /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project \
        --extra operator --extra weaviate --extra arango

# --- the project itself: a wheel built from the source, installed into the same venv
FROM deps AS build
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --extra operator --extra weaviate --extra arango

# --- runtime: slim, non-root, read-only root filesystem friendly
FROM python:${PYTHON_VERSION}-slim AS runtime
RUN groupadd --system --gid 10001 aitrading \
 && useradd --system --uid 10001 --gid aitrading --home-dir /var/lib/aitrading aitrading \
 && mkdir -p /var/lib/aitrading && chown aitrading:aitrading /var/lib/aitrading
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    AITRADING_ENVIRONMENT=production AITRADING_DATA_DIR=/var/lib/aitrading
USER 10001:10001
WORKDIR /var/lib/aitrading
EXPOSE 8000 8001 8007 8008 8080 9090
ENTRYPOINT ["aitrading"]
CMD ["--help"]
