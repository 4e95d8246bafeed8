"""Simulated dialer traffic: to a topic, or served as the Platform API."""
