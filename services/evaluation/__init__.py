"""Offline evaluation: metrics, splits, datasets, the harness and the replay simulator."""
