"""The minimal index: SQLAlchemy models, engine set-up, migrations and bulk writes."""
