"""Aggregation services: pure computation (heatmaps, agreement, compute) and the Django side
(aggregates: recompute + upsert; reconcile: find and enqueue what is missing or stale)."""

from .aggregates import (
    AGGREGATION_VERSION,
    RecomputeReport,
    campaign_aggregation_settings,
    item_aggregate_upsert,
    item_aggregates_recompute,
    settings_fingerprint,
)
from .compute import rasteriser_warm
from .reconcile import aggregates_reconcile, items_without_current_aggregate

__all__ = [
    "AGGREGATION_VERSION",
    "RecomputeReport",
    "aggregates_reconcile",
    "campaign_aggregation_settings",
    "item_aggregate_upsert",
    "item_aggregates_recompute",
    "items_without_current_aggregate",
    "rasteriser_warm",
    "settings_fingerprint",
]
