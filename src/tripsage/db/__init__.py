"""Database access: the embedded server, the connector, named queries and the migration runner."""
