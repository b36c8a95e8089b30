from memdiag.cli import console

raise SystemExit(console())
