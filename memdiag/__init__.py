"""memdiag: find where a Linux host's memory went.

Data flows one way: sources -> facts -> rules -> findings -> sinks.

The public Python API is what ``__all__`` lists (documented in docs/api.md); it is loaded on
first use, so ``import memdiag`` and the command line's start-up stay as cheap as before.
Every other module is private and may change.
"""

__version__ = "0.1.0"

#: The public API: the one place that says what is public. Each name lives in memdiag.api
#: (errors re-exported from memdiag.errors) and is imported on first use, by __getattr__ below.
__all__ = [
    "__version__",
    # diagnosing and delivering
    "diagnose", "deliver", "Plugins",
    # what a diagnosis returns
    "Report", "Finding", "FindingEvidence", "Remediation", "Reference", "Suppression", "Verdict", "RuleOutcome",
    "Problem", "InputInfo", "Facts", "DeliveryResult", "SinkOutcome",
    "Severity", "VerdictSeverity", "Confidence", "RuleState",
    # errors (each carries the exit code the command line would use)
    "MemdiagError", "InputError", "UsageError", "RuleError", "DeliveryError",
]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `import memdiag` stays free

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time __getattr__ imports on demand
    from memdiag.api import (
        Confidence,
        DeliveryError,
        DeliveryResult,
        Facts,
        Finding,
        FindingEvidence,
        InputError,
        InputInfo,
        MemdiagError,
        Plugins,
        Problem,
        Reference,
        Remediation,
        Report,
        RuleError,
        RuleOutcome,
        RuleState,
        Severity,
        SinkOutcome,
        Suppression,
        UsageError,
        Verdict,
        VerdictSeverity,
        deliver,
        diagnose,
    )


if not TYPE_CHECKING:  # hidden from type checkers, so a misspelt name is an error there

    def __getattr__(name):  # PEP 562: the public names are imported on first use
        if name not in __all__:
            raise AttributeError(f"module 'memdiag' has no attribute {name!r}")
        from memdiag import api

        value = getattr(api, name)
        globals()[name] = value  # later lookups skip this function
        return value

    def __dir__():
        return sorted({*globals(), *__all__})
