"""scripts/language_results.py: docs/results.md's language tables come from the committed run list."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "language_results.py"
spec = importlib.util.spec_from_file_location("language_results", SCRIPT)
language_results = importlib.util.module_from_spec(spec)
spec.loader.exec_module(language_results)


def test_the_committed_document_is_made_from_the_committed_runs(monkeypatch):
    monkeypatch.chdir(ROOT)  # the manifest names files relative to the checkout
    assert language_results.main(["--runs-file", language_results.MANIFEST, "--check"]) == 0


def test_a_stale_document_is_reported_then_rewritten(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    first = language_results.read_manifest(Path(language_results.MANIFEST))[0]
    doc = tmp_path / "results.md"
    doc.write_text(f"intro\n{language_results.BEGIN}\nold\n{language_results.END}\nrest\n")
    assert language_results.main([first, "--doc", str(doc), "--check"]) == 1
    assert language_results.main([first, "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert text.startswith("intro\n") and text.endswith("rest\n") and first.rpartition("=")[0] in text
    assert language_results.main([first, "--doc", str(doc), "--check"]) == 0
