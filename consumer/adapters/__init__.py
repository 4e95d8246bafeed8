"""Adapters: one module per outside system, each translating its library's errors.

``kafka`` is the only aiokafka importer; ``http`` and ``alertmanager`` speak HTTP;
``sinks``, ``deadletter`` and ``statestore`` write the daemon's outputs through ``kafka``;
``logs`` renders log lines. None of them imports the application layer.
"""
