"""Generators of the documentation site's reference pages (docs/reference/).

`python -m scripts.docs.generate` writes them; tests/unit/test_docs_reference.py fails
when a committed page differs from what the code would generate now.
"""
