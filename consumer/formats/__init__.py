"""Pure byte formats: alert, dead letter, heartbeat, campaign record, changelog."""
