"""The stdout sink: every event as one JSON log line."""
