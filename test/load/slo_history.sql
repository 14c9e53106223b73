-- a burn-rate chart: one SLO over the last day in 5-minute steps
\set k random(1, 20)
SELECT at, burn_rate, budget_remaining
FROM engineering.slo_history('load-slo-' || :k, date_trunc('minute', now()) - interval '1 day',
                             date_trunc('minute', now()), '5 minutes');
