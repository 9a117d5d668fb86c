# driftline worker image.
#
#   docker build -t driftline:local .
#   docker run --rm driftline:local --help
#
# Built from the repository and PyPI only: no apt packages, so the build needs
# no Debian mirror. Every dependency ships a manylinux wheel except
# faust-streaming, whose sdist falls back to pure Python when no C compiler is
# present (slower stream internals, same behaviour).

# ---- build: resolve and install into a virtualenv that the runtime copies ----
FROM python:3.11-slim AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Metadata first: pyproject.toml names README.md as the long description, so
# setuptools refuses to build without it.
COPY pyproject.toml README.md ./
COPY pipeline/ pipeline/
COPY detectors/ detectors/
COPY sinks/ sinks/
COPY schemas/ schemas/
# A regular (non-editable) install, so the runtime stage needs no source tree.
RUN pip install --no-cache-dir .

# ---- runtime ----
FROM python:3.11-slim

# Unbuffered so log lines reach `docker logs` as they happen, not at exit.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DRIFTLINE_DATA_DIR=/var/lib/driftline

# A fixed uid lets operators chown bind mounts ahead of time.
RUN useradd --system --uid 10001 --user-group \
        --home-dir /var/lib/driftline --create-home --shell /usr/sbin/nologin driftline

COPY --from=build /opt/venv /opt/venv

USER driftline
# Faust keeps its table state under DRIFTLINE_DATA_DIR; it is rebuilt from the
# changelog topics, so no VOLUME: scaled workers would each leave an orphan.
WORKDIR /var/lib/driftline

# The worker's web port: /health, /stats, /sql.
EXPOSE 6066

ENTRYPOINT ["driftline"]
CMD ["worker"]
