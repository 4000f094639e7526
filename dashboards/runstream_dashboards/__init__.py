"""The runstream dashboard: the aiohttp app served beside ingestion."""
