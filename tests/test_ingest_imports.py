"""Importing record types stays light: the heavy libraries load only with what needs them."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("pypdf", "faiss", "bm25s", "pyarrow")


def test_record_modules_import_no_heavy_library():
    code = (
        "import sys\n"
        "import reasonrag.ingest.records, reasonrag.index.records\n"
        "import reasonrag.reason.records, reasonrag.llm.base\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_ingest_exports_still_resolve():
    import reasonrag.ingest as ingest

    assert ingest.load_documents.__module__ == "reasonrag.ingest.load"
    assert {name: getattr(ingest, name) for name in ingest.__all__}
