"""Background jobs: the runner that claims and works them, their change notifications, and the handlers."""
