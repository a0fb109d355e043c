"""The command line: `python -m shared replay | verdicts | report | send | consume`."""
