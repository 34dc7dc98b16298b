"""Loaders for public real-world data sets (file I/O lives here, never in ``autonomy``)."""
