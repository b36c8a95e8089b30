"""Bundled rule packs (YAML). Each file is one pack; rule ids are independent of file names."""
