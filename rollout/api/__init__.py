"""Typed views of this operator's custom resources: parse, validate, and the status record."""
