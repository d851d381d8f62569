import pytest
from .evaluation import evaluate, ingest_documents, load_questions, _normal
from chatbot.knowledge.retrieval import search
pytestmark = pytest.mark.django_db

def test_debug(acme_bot):
    ingest_documents(acme_bot)
    r = evaluate(acme_bot)
    print("\nRESULT", r.hit_at_1, r.hit_at_5, r.mrr)
    for item in load_questions():
        if item["question"] in r.misses:
            hits = search(acme_bot, item["question"], k=3)
            print("MISS", item["question"], "| answer:", item["answer"][:60])
            for h in hits:
                print("   ", repr(h.chunk.title), repr(h.chunk.heading), h.chunk.text[:70].replace("\n"," "))
