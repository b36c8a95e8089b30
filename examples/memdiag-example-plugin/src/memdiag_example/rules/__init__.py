"""The example plugin's rule pack (YAML files beside this module)."""
