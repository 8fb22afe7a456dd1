# One image for every role: `aitrading serve <service>`, `aitrading operator`,
# `aitrading logs enforce` (the CronJob) — the command picks the role.
#
# Base images are build arguments with today's defaults, so `docker build .` is the plain
# build, and a machine without registry access builds against local stand-ins of the same
# names (scripts/build-test-images.sh). No `# syntax=` line: BuildKit's built-in frontend
# handles `RUN --mount=type=cache`, and the line would make docker fetch a frontend image.

ARG PYTHON_IMAGE=python:3.11-slim
ARG UV_IMAGE=ghcr.io/astral-sh/uv:0.13.9

FROM ${UV_IMAGE} AS uv

# --- dependencies: only uv.lock and pyproject.toml, so this layer is reused until they change
FROM ${PYTHON_IMAGE} AS deps
COPY --from=uv /uv /usr/local/bin/uv
ENV UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy UV_PROJECT_ENVIRONMENT=/opt/venv
WORKDIR /src
COPY pyproject.toml uv.lock ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project \
        --extra operator --extra weaviate --extra arango --extra chdb

# --- the project itself: a wheel built from the source, installed into the same venv
FROM deps AS build
COPY . .
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable \
        --extra operator --extra weaviate --extra arango --extra chdb

# --- runtime: slim, non-root, read-only root filesystem friendly
FROM ${PYTHON_IMAGE} AS runtime
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
