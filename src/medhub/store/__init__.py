"""The hub's metadata store: SQLAlchemy 2 models and Alembic migrations (a shared helper).

SQLite by default, PostgreSQL in production; both are tested.
"""
