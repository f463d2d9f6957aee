"""Access control (docs/access.md): who may see which record, compiled into every search."""
