"""Where alerts go: the alert topic, the log, Alertmanager."""
