"""The FastAPI service, its store and its processes."""
