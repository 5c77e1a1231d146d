"""The host source: settings.py (keys), readings.py (what it emits), collector.py (how)."""
