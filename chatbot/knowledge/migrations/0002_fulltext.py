"""Full-text search over chunks, with each database's own engine.

SQLite: an FTS5 table mirroring knowledge_chunk (title, text), kept in sync by triggers.
PostgreSQL: a tsvector column built by a trigger with the chunk's own language configuration
(`to_tsvector(language::regconfig, ...)` is not immutable, so it cannot be a generated column or
an expression index), and a GIN index on it.

Careful: on SQLite, Django rebuilds a table for most ALTERs (create, copy, drop, rename), which
drops these triggers. A later migration that alters knowledge_chunk on SQLite must run
`SQLITE_FORWARD` again; the retrieval tests fail loudly if the triggers go missing.
"""

from django.db import migrations

SQLITE_FORWARD = [
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
    # porter stems English; unicode61 with remove_diacritics folds accents for other languages.
    """CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5(
        title, text, content='knowledge_chunk', content_rowid='id',
        tokenize='porter unicode61 remove_diacritics 2')""",
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
    """CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
    """CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
    END""",
    """CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE OF title, text ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, title, text)
        VALUES ('delete', old.id, old.title, old.text);
        INSERT INTO knowledge_chunk_fts(rowid, title, text) VALUES (new.id, new.title, new.text);
    END""",
]
SQLITE_BACKWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
]

POSTGRES_FORWARD = [
    "ALTER TABLE knowledge_chunk ADD COLUMN IF NOT EXISTS search_vector tsvector",
    """CREATE OR REPLACE FUNCTION knowledge_chunk_search_vector() RETURNS trigger AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector(NEW.language::regconfig, coalesce(NEW.title, '')), 'B')
            || setweight(to_tsvector(NEW.language::regconfig, NEW.text), 'A');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS knowledge_chunk_search_vector ON knowledge_chunk",
    """CREATE TRIGGER knowledge_chunk_search_vector
        BEFORE INSERT OR UPDATE OF title, text, language ON knowledge_chunk
        FOR EACH ROW EXECUTE FUNCTION knowledge_chunk_search_vector()""",
    "UPDATE knowledge_chunk SET text = text",
    """CREATE INDEX IF NOT EXISTS knowledge_chunk_search_idx
        ON knowledge_chunk USING GIN (search_vector)""",
]
POSTGRES_BACKWARD = [
    "DROP INDEX IF EXISTS knowledge_chunk_search_idx",
    "DROP TRIGGER IF EXISTS knowledge_chunk_search_vector ON knowledge_chunk",
    "DROP FUNCTION IF EXISTS knowledge_chunk_search_vector()",
    "ALTER TABLE knowledge_chunk DROP COLUMN IF EXISTS search_vector",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, []):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0001_initial")]

    operations = [
        migrations.RunPython(
            _run({"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}),
            _run({"sqlite": SQLITE_BACKWARD, "postgresql": POSTGRES_BACKWARD}),
        )
    ]
