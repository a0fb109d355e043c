"""Detection: the rules file, grouping, rule kinds, windows, probabilities, the alert lifecycle, incidents, alert
content, the detector.

Pure but for the detector shell, which talks to a `DetectionStore`. Imports `shared.core`, `shared.ingest`,
the destination names of `shared.notify.registry`, `shared.settings` and `shared.telemetry` (what degraded, logged
once); no Azure SDK.
"""
