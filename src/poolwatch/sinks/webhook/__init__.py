"""The webhook sink: settings, Standard Webhooks signing, and the sink on the durable queue."""
