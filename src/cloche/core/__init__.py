"""cloche.core."""
