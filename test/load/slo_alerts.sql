-- the alerts firing now
SELECT slo, severity, rule, long_burn_rate, short_burn_rate, threshold
FROM engineering.slo_alerts() WHERE firing;
