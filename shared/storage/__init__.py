"""Azure Table Storage and Blob Storage: the only package that imports their SDKs.

The sign-in table, detection state, the outbox and dead letters, over one entity helper and one account choice.
"""
