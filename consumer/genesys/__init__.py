"""The Genesys Cloud source: the Platform API client, the poller, its budget and answers."""
