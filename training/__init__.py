"""Training and evaluation of ClassLens emotion models (see training/README.md)."""
