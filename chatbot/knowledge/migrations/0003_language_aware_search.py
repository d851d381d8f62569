"""Language-aware full-text search: chunks carry their analysed terms; both engines index them.

`analysis.analyze` (Snowball stems, stop words, accents folded) fills `search_title` and
`search_text`; SQLite's FTS5 table and PostgreSQL's tsvector now index those columns with no
language rules of their own (FTS5 `unicode61`, PostgreSQL `simple`), and `retrieval` ranks the
candidates by BM25 with the bot's own statistics.

Careful, as in 0002: on SQLite, Django rebuilds knowledge_chunk for AddField, which drops the
FTS triggers; this migration recreates the FTS table and its triggers after the fields exist.
"""

from django.db import migrations, models

SQLITE_FORWARD = [
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ai",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_ad",
    "DROP TRIGGER IF EXISTS knowledge_chunk_fts_au",
    "DROP TABLE IF EXISTS knowledge_chunk_fts",
    # The terms are already stemmed and folded: the tokenizer only splits them on spaces.
    """CREATE VIRTUAL TABLE knowledge_chunk_fts USING fts5(
        search_title, search_text, content='knowledge_chunk', content_rowid='id',
        tokenize='unicode61 remove_diacritics 0')""",
    "INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts) VALUES ('rebuild')",
    """CREATE TRIGGER knowledge_chunk_fts_ai AFTER INSERT ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(rowid, search_title, search_text)
        VALUES (new.id, new.search_title, new.search_text);
    END""",
    """CREATE TRIGGER knowledge_chunk_fts_ad AFTER DELETE ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, search_title, search_text)
        VALUES ('delete', old.id, old.search_title, old.search_text);
    END""",
    """CREATE TRIGGER knowledge_chunk_fts_au AFTER UPDATE OF search_title, search_text
        ON knowledge_chunk BEGIN
        INSERT INTO knowledge_chunk_fts(knowledge_chunk_fts, rowid, search_title, search_text)
        VALUES ('delete', old.id, old.search_title, old.search_text);
        INSERT INTO knowledge_chunk_fts(rowid, search_title, search_text)
        VALUES (new.id, new.search_title, new.search_text);
    END""",
]

POSTGRES_FORWARD = [
    """CREATE OR REPLACE FUNCTION knowledge_chunk_search_vector() RETURNS trigger AS $$
    BEGIN
        NEW.search_vector :=
            setweight(to_tsvector('simple'::regconfig, NEW.search_title), 'B')
            || setweight(to_tsvector('simple'::regconfig, NEW.search_text), 'A');
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS knowledge_chunk_search_vector ON knowledge_chunk",
    """CREATE TRIGGER knowledge_chunk_search_vector
        BEFORE INSERT OR UPDATE OF search_title, search_text ON knowledge_chunk
        FOR EACH ROW EXECUTE FUNCTION knowledge_chunk_search_vector()""",
]


def analyse_existing(apps, schema_editor):
    from chatbot.knowledge.analysis import language_name, search_fields

    Chunk = apps.get_model("knowledge", "Chunk")
    batch = []
    for chunk in Chunk.objects.only("id", "title", "text", "language").iterator(chunk_size=500):
        chunk.language = language_name(chunk.language)
        for name, value in search_fields(
            title=chunk.title, heading="", text=chunk.text, language=chunk.language
        ).items():
            setattr(chunk, name, value)
        batch.append(chunk)
        if len(batch) == 500:
            Chunk.objects.bulk_update(
                batch, ["language", "search_title", "search_text", "search_length"]
            )
            batch = []
    if batch:
        Chunk.objects.bulk_update(batch, ["language", "search_title", "search_text", "search_length"])


def rebuild_indexes(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    for statement in {"sqlite": SQLITE_FORWARD, "postgresql": POSTGRES_FORWARD}.get(vendor, []):
        schema_editor.execute(statement)
    if vendor == "postgresql":
        schema_editor.execute("UPDATE knowledge_chunk SET search_text = search_text")


class Migration(migrations.Migration):
    dependencies = [("knowledge", "0002_fulltext")]

    operations = [
        migrations.AddField(
            model_name="source",
            name="language",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name="chunk",
            name="heading",
            field=models.CharField(blank=True, max_length=500),
        ),
        migrations.AddField(
            model_name="chunk",
            name="search_title",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="chunk",
            name="search_text",
            field=models.TextField(blank=True, default=""),
        ),
        migrations.AddField(
            model_name="chunk",
            name="search_length",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(analyse_existing, migrations.RunPython.noop),
        migrations.RunPython(rebuild_indexes, migrations.RunPython.noop),
    ]
