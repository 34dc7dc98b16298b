"""Mapping: the 2.5D elevation map fused from depth (see ``elevation_map``)."""
