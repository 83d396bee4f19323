"""Storage: the declarative base, engine and session handling, and Alembic migrations."""
