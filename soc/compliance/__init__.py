"""Security-level approvals (Decree 85/2016 and successors) and the plan's compliance KPIs."""
