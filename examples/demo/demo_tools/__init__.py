"""Python agents of the alfred demo pipeline."""
