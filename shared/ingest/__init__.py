"""Ingestion: the one pipeline, the sign-in store interface and its memory store, replay and its input files.

Imports `shared.core` (and `shared.telemetry`); no Azure SDK.
"""
