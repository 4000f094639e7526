"""The DuckDB store: schema, the single writer, and read access."""
