"""cloche.client."""
