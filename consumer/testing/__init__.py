"""Shipped test doubles: fakes of the daemon's ports, a daemon rig, the Platform API double."""
