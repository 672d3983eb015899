"""Whole procedures a launcher runs, built from the layers below: export and QAT."""
