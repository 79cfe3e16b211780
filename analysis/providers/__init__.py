"""Metric sources: fetch raw numbers from a metrics backend as numpy arrays.

`base` holds the `MetricSource` Protocol, its `Series` and the outcomes every source can raise;
`rules` holds what validation knows of each provider type (pure: the API layer reads it);
`registry` builds a source by provider type; `http` is the one HTTP helper vendor APIs share.
Providers never import each other.
"""
