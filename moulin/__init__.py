"""The `moulin` command."""
