from .extra_rater import extra_rater_request, extra_rater_requests_settle
from .recompute import STATS_VERSION, campaign_stats_compute, campaign_stats_recompute, campaign_stats_request_refresh

__all__ = [
    "STATS_VERSION",
    "campaign_stats_compute",
    "campaign_stats_recompute",
    "campaign_stats_request_refresh",
    "extra_rater_request",
    "extra_rater_requests_settle",
]
