"""Kafka clients, one module per role: the only importer of aiokafka."""
