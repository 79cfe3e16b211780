"""Metric sources: fetch raw numbers from a metrics backend as numpy arrays.

`base` holds the `MetricSource` Protocol, its `Series` and the outcomes every source can raise;
`registry` picks a source by provider type. Prometheus (`prometheus`) is the only one today;
providers never import each other.
"""
