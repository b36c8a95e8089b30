"""JSON Schemas for rule files, configuration and the findings document."""
