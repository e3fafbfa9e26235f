"""The typer command-line app; it parses and prints, the library does the work."""
