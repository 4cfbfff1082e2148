"""cloche.runtime."""
