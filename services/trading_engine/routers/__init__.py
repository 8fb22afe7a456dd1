"""trading-engine routes, one module per resource."""
