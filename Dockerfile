# syntax=docker/dockerfile:1
# One image for the invitation, notifier and expiry services and the `invitations` CLI:
#   docker run IMAGE                                  -> python -m services.invitation
#   docker run IMAGE python -m services.notifier      (or services.expiry)
#   docker run IMAGE invitations --help
# docker-compose.yml builds it once and runs each service from it.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- build: a virtualenv with the locked dependencies, then the project ------------------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN python -m venv /opt/venv
WORKDIR /app
# Dependencies first, in their own layer: a code change does not reinstall them.
# The whole tree comes from the lock file, every package checked by its hash.
COPY pyproject.toml requirements.lock ./
RUN pip install --require-hashes -r requirements.lock \
 && pip install setuptools==84.2.1
COPY README.md ./
COPY shared ./shared
COPY services ./services
# A real (not editable) install: the code and its templates live in the venv, and pip
# writes the `invitations` console script.
RUN pip install --no-deps --no-build-isolation . \
 && python -m compileall -q /opt/venv/lib

# -- runtime: the virtualenv and the code, run as an unprivileged user -------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HTTP_PORT=8080
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --no-create-home --home-dir /nonexistent app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
USER app:app
EXPOSE 8080
# /readyz on HTTP_PORT; the slim image has no curl, so the probe is Python's.
HEALTHCHECK --interval=10s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-m", "shared.ops_http", "/readyz"]
CMD ["python", "-m", "services.invitation"]
