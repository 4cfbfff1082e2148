"""cloche.model."""
