"""cloche.render."""
