"""Settings: the structs every setting is declared in, and how they are loaded."""
