"""infrastructure package."""
