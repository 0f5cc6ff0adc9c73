"""Datasets and checks behind the XLSR tasks."""
