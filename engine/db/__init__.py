"""PostgreSQL: the models, the engine, and the queries each part of Conversa needs."""
