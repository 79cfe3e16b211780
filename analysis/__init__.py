"""Metric analysis for progressive delivery, usable without Kubernetes.

Providers fetch raw numbers, judges turn them into verdicts, reports explain them. Nothing here
imports the operator, kopf or the Kubernetes client.
"""
