"""Cases of docs/bad-input.md's section on values, run by tests/test_bad_input.py (each a function of
(tmp_path, monkeypatch) returning a CompletedProcess)."""

CASES = {}
