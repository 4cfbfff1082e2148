"""cloche.host."""
