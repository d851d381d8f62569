"""Endpoints declared the ways README documents: LLM_ENDPOINTS_FILE, LLM_ENDPOINTS, or both.

Run as the operator runs them, in a fresh `manage.py` process, so the settings module itself
reads the environment (an override_settings test would step past it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

# The commands always run on the embedded defaults: one run of make test is enough.
pytestmark = pytest.mark.embedded

ROOT = Path(__file__).resolve().parents[2]


def endpoint(name: str, port: int) -> dict[str, object]:
    return {"name": name, "kind": "openai", "url": f"http://127.0.0.1:{port}", "model": "m"}


@pytest.fixture(scope="module")
def var_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated embedded database of its own, so `llm list` can sync into it."""
    path = tmp_path_factory.mktemp("llm-env")
    migrate = manage(path, "migrate", "-v0")
    assert migrate.returncode == 0, migrate.stderr
    return path


def manage(var_dir: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    outside = ("DATABASE_URL", "REDIS_URL", "LLM_ENDPOINTS", "LLM_ENDPOINTS_FILE")
    clean = {k: v for k, v in os.environ.items() if k not in outside}
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env={**clean, "PARLEY_TESTING": "1", "PARLEY_VAR_DIR": str(var_dir), **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def listed_names(output: str) -> list[str]:
    return [line.split()[0] for line in output.splitlines() if line.strip()]


def test_endpoints_declared_only_in_a_file_are_listed(var_dir: Path, tmp_path: Path) -> None:
    declared = tmp_path / "endpoints.json"
    declared.write_text(json.dumps({"endpoints": [endpoint("file-a", 9101)]}))

    result = manage(var_dir, "llm", "list", LLM_ENDPOINTS_FILE=str(declared))

    assert result.returncode == 0, result.stderr
    assert listed_names(result.stdout) == ["file-a"]
    assert "[config]" in result.stdout


def test_a_file_and_inline_json_with_distinct_names_are_both_listed(
    var_dir: Path, tmp_path: Path
) -> None:
    declared = tmp_path / "endpoints.json"
    declared.write_text(json.dumps([endpoint("file-a", 9101)]))

    result = manage(
        var_dir,
        "llm",
        "list",
        LLM_ENDPOINTS_FILE=str(declared),
        LLM_ENDPOINTS=json.dumps([endpoint("inline-b", 9102)]),
    )

    assert result.returncode == 0, result.stderr
    assert sorted(listed_names(result.stdout)) == ["file-a", "inline-b"]


def test_one_name_in_both_places_is_refused_naming_it(var_dir: Path, tmp_path: Path) -> None:
    declared = tmp_path / "endpoints.json"
    declared.write_text(json.dumps([endpoint("twice", 9101)]))

    result = manage(
        var_dir,
        "check",
        LLM_ENDPOINTS_FILE=str(declared),
        LLM_ENDPOINTS=json.dumps([endpoint("twice", 9102)]),
    )

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "parley: configuration error: LLM_ENDPOINTS: 'twice' is also declared in LLM_ENDPOINTS_FILE"
    )
