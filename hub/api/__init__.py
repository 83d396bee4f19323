"""The HTTP API: thin routers over the services, errors rendered as problem+json."""
