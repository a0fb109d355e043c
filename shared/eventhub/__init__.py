"""Azure Event Hubs without Functions: `send` (the smoke test) and `consume` (the standalone consumer)."""
