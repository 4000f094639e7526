"""The runstream server: gRPC ingestion into DuckDB, and the CLI. Install with `pip install runstream[server]`."""
