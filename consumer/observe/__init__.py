"""What operators see: JSON logs, the HTTP port, the metric collectors several owners share."""
