"""lash's process semantics as pure functions (no I/O)."""
