"""Shipped test doubles: fakes of the daemon's ports and the Platform API double."""
