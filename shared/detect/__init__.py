"""Detection: the rules file, grouping, rule kinds, windows, the alert lifecycle, alert content, the detector.

Pure but for the detector shell, which talks to a `DetectionStore`. Imports `shared.core`, `shared.ingest`,
the destination names of `shared.notify.registry`, and `shared.settings`; no Azure SDK.
"""
