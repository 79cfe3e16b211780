"""Metric providers: fetch raw numbers from a metrics backend as numpy arrays.

Only Prometheus exists today (`analysis.providers.prometheus`); providers never import each other.
"""
