"""Small helpers shared across spikecl: atomic file writes, run provenance."""
