"""Running poolwatch: scheduling, planning, reload, `--once`, logs, heartbeat, metrics, health."""
