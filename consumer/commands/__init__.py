"""The command line: one module per subcommand, its wiring, signals and exit statuses."""
