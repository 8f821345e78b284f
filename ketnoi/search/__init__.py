"""Search engine as a pure pipeline: parse → extract → compile. Never opens a connection."""
