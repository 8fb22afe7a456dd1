"""logging package."""
