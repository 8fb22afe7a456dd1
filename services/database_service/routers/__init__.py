"""database-service routes, one module per resource."""
