"""cloche.store."""
