-- a writer: the counts of one SLO for one minute of the last week (late
-- data and corrections included: an existing minute is replaced)
\set k random(1, 20)
\set minute random(0, 10079)
\set total random(500, 1500)
\set bad random(0, 3)
SELECT engineering.record_slo_measurement('load-slo-' || :k,
       date_trunc('minute', now()) - :minute * interval '1 minute', :total - :bad, :total);
