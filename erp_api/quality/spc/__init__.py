"""The SPC engine: control charts, run rules and capability as pure numpy functions (no I/O)."""
