"""What operators see: JSON logs, the HTTP port, metrics."""
