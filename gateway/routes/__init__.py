"""HTTP routes, one module per area. Handlers parse, check the caller, call storage, answer."""
