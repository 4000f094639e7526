# runstream server: gRPC ingestion on 50051, HTTP (dashboard, API, /healthz) on 8080.
# Build:  docker build -t runstream .
# Run:    docker run -p 50051:50051 -p 8080:8080 -v runstream-data:/data runstream

# The web UI is built with npm (package-lock.json pins uPlot and esbuild) and shipped inside the package.
FROM node:20-slim AS ui
COPY dashboards/web /web
RUN cd /web && npm ci --no-audit --no-fund && npm run build

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

COPY . /src
COPY --from=ui /runstream_dashboards/static /src/dashboards/runstream_dashboards/static
# The same install the README tells users to do: the package with its server extra.
RUN pip install --no-cache-dir '/src[server]'

# The DuckDB file lives here; mount a volume on it to keep data across containers.
RUN mkdir -p /data

EXPOSE 50051 8080

# The slim image has no curl; python's urllib raises (exit 1) on a refused connection or a non-2xx answer.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Listening on 0.0.0.0 without tokens needs --insecure: publish these ports only on a trusted network,
# or replace --insecure with --tokens FILE (and --tls-cert/--tls-key) from a mounted file (README: Security).
CMD ["runstream", "serve", "--data", "/data", "--grpc", "0.0.0.0:50051", "--http", "0.0.0.0:8080", "--insecure"]
