"""Full-text search over message text (chatbot/conversations/search.py).

PostgreSQL: a GIN index on to_tsvector('simple', text), which the search query uses as is.
SQLite: an external-content FTS5 table over conversations_message, kept in step by triggers
(and filled from the rows that exist when this migration runs).
"""

from django.db import migrations

SQLITE_CREATE = [
    "CREATE VIRTUAL TABLE conversations_message_fts USING fts5("
    "text, content='conversations_message', content_rowid='id', "
    "tokenize='unicode61 remove_diacritics 2')",
    "CREATE TRIGGER conversations_message_fts_ai AFTER INSERT ON conversations_message BEGIN "
    "INSERT INTO conversations_message_fts(rowid, text) VALUES (new.id, new.text); END",
    "CREATE TRIGGER conversations_message_fts_ad AFTER DELETE ON conversations_message BEGIN "
    "INSERT INTO conversations_message_fts(conversations_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); END",
    "CREATE TRIGGER conversations_message_fts_au AFTER UPDATE OF text ON conversations_message "
    "BEGIN "
    "INSERT INTO conversations_message_fts(conversations_message_fts, rowid, text) "
    "VALUES ('delete', old.id, old.text); "
    "INSERT INTO conversations_message_fts(rowid, text) VALUES (new.id, new.text); END",
    "INSERT INTO conversations_message_fts(conversations_message_fts) VALUES ('rebuild')",
]
SQLITE_DROP = [
    "DROP TRIGGER IF EXISTS conversations_message_fts_ai",
    "DROP TRIGGER IF EXISTS conversations_message_fts_ad",
    "DROP TRIGGER IF EXISTS conversations_message_fts_au",
    "DROP TABLE IF EXISTS conversations_message_fts",
]
POSTGRES_CREATE = [
    "CREATE INDEX conversations_message_text_fts ON conversations_message "
    "USING gin (to_tsvector('simple', text))",
]
POSTGRES_DROP = ["DROP INDEX IF EXISTS conversations_message_text_fts"]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("conversations", "0002_inbox")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_CREATE, "postgresql": POSTGRES_CREATE}),
            _run({"sqlite": SQLITE_DROP, "postgresql": POSTGRES_DROP}),
        )
    ]
