"""Small project-wide helpers that import nothing of the project (leaves of the import graph)."""
