"""Capacity planning: pure functions from active series to bucket size, monthly cost and component sizes."""

from .constants import PRICES, PRICES_DATED, Constants, Price
from .planner import BucketPlan, Cost, Inputs, Plan, Sizes, bucket_bytes_over_time, gib, mib, plan

__all__ = ["PRICES", "PRICES_DATED", "Constants", "Price", "BucketPlan", "Cost", "Inputs", "Plan", "Sizes",
           "bucket_bytes_over_time", "gib", "mib", "plan"]
