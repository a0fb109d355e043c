"""Microsoft Graph at the edge: the sign-in logs pulled page by page (`python -m shared pull`)."""
