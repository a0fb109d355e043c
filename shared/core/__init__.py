"""The domain, pure and import-light: records, requests, binding, status codes, sign-ins, verdicts, time, links.

Imports nothing from the rest of `shared` and no Azure SDK, HTTP client or Functions library.
"""
