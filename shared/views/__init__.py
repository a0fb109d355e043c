"""What people read: the on-call lookup, the readiness figures and the HTML report. Pure; no Azure SDK."""
