"""The application: the ingest service the entry points run, and the composition root that builds every part."""
