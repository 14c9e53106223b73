-- every SLO now: a Grafana table panel
SELECT st.slo, st.sli, st.budget_remaining, st.burn_rate_1h, st.time_to_exhaustion
FROM engineering.slos s, engineering.slo_status(s.name) st ORDER BY st.budget_remaining;
