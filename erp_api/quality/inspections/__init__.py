"""Attribute inspections of charges (defectives, defects) and their p, np, c, u charts."""
