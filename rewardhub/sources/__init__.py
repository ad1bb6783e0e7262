"""Built-in reward sources, one module per family."""
