"""Training: the lmuformer-train command."""
