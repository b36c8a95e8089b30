"""Tests of the fleet and report features: check mode, report formats, fleet report, runbooks."""
