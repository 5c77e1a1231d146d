"""The pgbouncer source: settings.py (keys), readings.py (what it emits), show.py (SHOW output
→ readings, pure), collector.py (the admin console connection)."""
