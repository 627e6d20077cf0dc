"""Generators of the documentation site's reference pages (docs/reference/)."""
