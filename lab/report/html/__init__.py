"""The HTML reports: one self-contained page per result, matrix or compare document."""
