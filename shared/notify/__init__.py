"""Delivery: one module per destination (payload and notifier), the registry, the transport, the outbox, retries.

Imports `shared.core`, `shared.settings` and `shared.telemetry`; httpx only in `transport`; no Azure SDK.
"""
