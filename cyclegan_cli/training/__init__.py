"""Training: the generic trainer over a model family (families/), the loop, history pools,
schedules, mixed precision, speed levers and multi-process runs."""
