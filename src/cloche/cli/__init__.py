"""cloche.cli."""
