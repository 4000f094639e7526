# runstream server: gRPC ingestion on 50051, HTTP (dashboard, API, /healthz) on 8080.
# Build:  docker build -t runstream .
# Run:    docker run -p 50051:50051 -p 8080:8080 -v runstream-data:/data runstream
#
# Needs BuildKit (the default builder since Docker 23; with docker-compose 1.x set DOCKER_BUILDKIT=1
# COMPOSE_DOCKER_CLI_BUILD=1). Everything below is optional:
#   --build-arg PYTHON_IMAGE=...  the Python base (default python:3.11-slim): any Debian-like image with
#                                 python3 and its venv module (CI makes one offline with debootstrap)
#   --build-arg NODE_IMAGE=...    the image that builds the web UI (default node:20-slim)
#   --build-arg EXTRAS=lake       extras installed over the server extra (default none): lake puts DuckDB 1.5.5
#                                 and its DuckLake extensions in place of 2.x, for docker-compose.yml's lake profile
#   --build-arg UI=context        take the web UI already built into the checkout by `make ui`
#                                 (dashboards/runstream_dashboards/static) instead of building it with
#                                 npm in NODE_IMAGE (UI=npm, the default); then no Node image is needed
#   --secret id=ca,src=FILE       behind a TLS-inspecting proxy: the CA bundle (PEM) that pip and npm
#                                 trust instead of their own while they download, e.g.
#                                 docker build --secret id=ca,src=/etc/ssl/certs/ca-certificates.crt -t runstream .
#                                 A secret is mounted for one RUN only: it lands in no layer and, unlike a
#                                 build argument, not in `docker history`.
# The image runs as the unprivileged user runstream (uid 10001), which owns /data.

ARG PYTHON_IMAGE=python:3.11-slim
ARG NODE_IMAGE=node:20-slim
ARG UI=npm
ARG EXTRAS=

# The web UI is built with npm (package-lock.json pins uPlot and esbuild) and shipped inside the package.
FROM ${NODE_IMAGE} AS ui-npm
COPY dashboards/web /web
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/ca; fi \
    && cd /web && npm ci --no-audit --no-fund && npm run build

FROM scratch AS ui-context
COPY dashboards/runstream_dashboards/static /runstream_dashboards/static

FROM ui-${UI} AS ui

# The package and its dependencies go into a venv (Debian's python3 refuses system-wide installs); only
# the venv is copied into the final image, without the source or anything the build was given.
FROM ${PYTHON_IMAGE} AS venv
COPY . /src
COPY --from=ui /runstream_dashboards/static /src/dashboards/runstream_dashboards/static
RUN python3 -m venv /opt/runstream
ENV PATH=/opt/runstream/bin:$PATH
# The same install the README tells users to do: the package with its server extra.
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && pip install --no-cache-dir '/src[server]'
# Declared only here, so that the layer above is the same (and cached) whatever the extras.
ARG EXTRAS
RUN --mount=type=secret,id=ca \
    if [ -f /run/secrets/ca ]; then export PIP_CERT=/run/secrets/ca; fi \
    && if [ -n "$EXTRAS" ]; then pip install --no-cache-dir "/src[$EXTRAS]"; fi

FROM ${PYTHON_IMAGE}

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/opt/runstream/bin:$PATH

COPY --from=venv /opt/runstream /opt/runstream

# The DuckDB file lives here; mount a volume on it to keep data across containers. A new named volume
# takes this directory's owner; one made by an image that ran as root needs, once:
#   docker run --rm -u 0 -v runstream-data:/data runstream chown -R 10001:10001 /data
RUN useradd --uid 10001 --user-group --home-dir /data --no-create-home --shell /usr/sbin/nologin runstream \
    && mkdir -p /data && chown runstream:runstream /data
USER runstream

EXPOSE 50051 8080

# The slim image has no curl; python's urllib raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Listening on 0.0.0.0 without tokens needs --insecure: publish these ports only on a trusted network,
# or replace --insecure with --tokens FILE (and --tls-cert/--tls-key) from a mounted file (README: Security).
CMD ["runstream", "serve", "--data", "/data", "--grpc", "0.0.0.0:50051", "--http", "0.0.0.0:8080", "--insecure"]
