"""Network definitions and loaders. Weights live in models/weights (see its README)."""
