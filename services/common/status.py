"""Status notes: what the trainer tells /healthcheck through the ``status`` hash in Redis."""

from __future__ import annotations

# The ingester's note while it cannot write the interaction log.
INGEST_NOTE = "ingest"

# Notes that mean "serving, but degraded", and the part each one names in /healthcheck.
DEGRADING_NOTES = {INGEST_NOTE: "interaction_log"}
