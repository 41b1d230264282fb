"""Pulumi ComponentResources, one per concern; ``__main__.py`` wires them together."""
