"""The Alertmanager sink: settings, events → alerts (alertbook), and the sink per peer."""
