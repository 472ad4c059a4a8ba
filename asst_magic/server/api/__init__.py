"""The HTTP API: routes per resource, request validation, errors in OpenAI's shape."""
