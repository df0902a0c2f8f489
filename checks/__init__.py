"""Pure checks: observations in, findings out. No network, no disk (except reading the catalogue)."""

from checks.catalogue import CheckSpec, catalogue, make_finding, spec
from checks.tls import CheckContext, evaluate_tls

__all__ = ["CheckContext", "CheckSpec", "catalogue", "evaluate_tls", "make_finding", "spec"]
