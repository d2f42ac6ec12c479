"""Metric families: each pure (tables in, metric rows out), computed per dataset and platform."""
