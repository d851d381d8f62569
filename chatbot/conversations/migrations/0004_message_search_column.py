"""PostgreSQL: search a stored tsvector column instead of an expression index.

With the expression index, every row the index finds is re-checked by computing
to_tsvector(text) again, which made broad searches cost a second per 50,000 matches
(bench/inbox). A generated column stores the vector once per write. Not in the Django
model on purpose: SQLite has no tsvector (it uses the FTS5 table of 0003), and the database
fills the column itself.
"""

from django.db import migrations

POSTGRES_FORWARD = [
    "DROP INDEX IF EXISTS conversations_message_text_fts",
    "ALTER TABLE conversations_message ADD COLUMN search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple', text)) STORED",
    "CREATE INDEX conversations_message_search_vector ON conversations_message "
    "USING gin (search_vector)",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS conversations_message_search_vector",
    "ALTER TABLE conversations_message DROP COLUMN IF EXISTS search_vector",
    "CREATE INDEX conversations_message_text_fts ON conversations_message "
    "USING gin (to_tsvector('simple', text))",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("conversations", "0003_message_search")]

    operations = [migrations.RunPython(_run(POSTGRES_FORWARD), _run(POSTGRES_BACKWARD))]
