"""The store's schema revisions, oldest first; Alembic ignores this file."""
