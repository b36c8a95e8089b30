"""Built-in fact sources."""
