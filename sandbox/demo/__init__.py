"""`rollout demo`: a Canary's whole life (sync, progress, promote, fail, revert in Git) on a laptop."""

from .run import Options, run_demo

__all__ = ["Options", "run_demo"]
