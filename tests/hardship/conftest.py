from ..api.conftest import service  # noqa: F401 - the running service, shared with the API tests
