"""rollout: GitOps progressive delivery that keeps Git true.

The operator lives in this package; the metric analysis it uses lives in the separate
`analysis` package so that it can run (and be tested) without Kubernetes.
"""

__version__ = "0.1.0"
