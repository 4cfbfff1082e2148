"""cloche.api."""
