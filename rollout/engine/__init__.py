"""Effects: carry a planner Decision out through ports (workloads, routers, metrics, webhooks, Git)."""
