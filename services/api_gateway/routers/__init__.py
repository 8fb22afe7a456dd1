"""The gateway's routes, one module per resource: auth, chains, streams, and the proxy."""
