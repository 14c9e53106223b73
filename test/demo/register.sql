-- Registers the sources and SLOs of a generated organisation (the mock's
-- manifest, GET /_control/org) in the current database, and shows them.
-- Used by the demo (test/demo/run) and the dashboard test
-- (test/t/050_dashboards.pl):
--
--   psql -v mock=http://127.0.0.1:54330 -v manifest="$(curl .../_control/org)" -f register.sql
--
-- Idempotent: an SLO or a source that exists is kept (a source whose mock
-- moved to another port gets the new base_url, which alter_source() turns
-- into a fresh, idempotent backfill); a kind this build has no connector
-- for is skipped.  Sources are polled every 5 minutes, Prometheus ones
-- every minute (their SLOs are live), unless -v poll_interval=... says
-- otherwise.
\set ON_ERROR_STOP 1
\if :{?poll_interval}
\else
\set poll_interval ''
\endif

INSERT INTO engineering.slos (name, service, objective, period, description)
SELECT s->>'name', s->>'service', (s->>'objective')::float8, (s->>'period')::interval, s->>'description'
FROM jsonb_array_elements(:'manifest'::jsonb -> 'slos') s
ON CONFLICT (name) DO NOTHING;

-- the organisation's golden paths (an admin's choice, kept when they exist)
INSERT INTO engineering.golden_paths (name, kind, pattern, description)
SELECT g->>'name', g->>'kind', g->>'pattern', g->>'description'
FROM jsonb_array_elements(coalesce(:'manifest'::jsonb -> 'golden_paths', '[]')) g
WHERE to_regclass('engineering.golden_paths') IS NOT NULL
ON CONFLICT (name) DO NOTHING;

CREATE FUNCTION pg_temp.register_sources(m jsonb, mock text, poll interval)
RETURNS TABLE (source text, kind text, base_url text, action text)
LANGUAGE plpgsql AS $$
DECLARE
    src jsonb;
    url text;
    old_url text;
BEGIN
    FOR src IN SELECT * FROM jsonb_array_elements(m -> 'sources')
    LOOP
        source := src->>'name';
        kind := src->>'kind';
        url := rtrim(mock, '/') || (src->>'path');
        base_url := url;
        SELECT s.base_url INTO old_url FROM engineering.sources s WHERE s.name = source;
        IF FOUND THEN
            IF old_url IS DISTINCT FROM url THEN
                PERFORM engineering.alter_source(source, base_url => url);
                action := 'moved to this mock';
            ELSE
                action := 'kept';
            END IF;
            RETURN NEXT;
            CONTINUE;
        END IF;
        BEGIN
            PERFORM engineering._connector_default_url(kind);
        EXCEPTION WHEN feature_not_supported THEN
            action := 'skipped: no ' || kind || ' connector in this build';
            RETURN NEXT;
            CONTINUE;
        END;
        PERFORM engineering.add_source(source, kind, url, src->'config', src->>'token',
                                       coalesce(poll, CASE kind WHEN 'prometheus' THEN interval '1 minute'
                                                                ELSE interval '5 minutes' END));
        action := 'added';
        RETURN NEXT;
    END LOOP;
END
$$;

\echo
\echo 'Sources of the generated organisation'
SELECT * FROM pg_temp.register_sources(:'manifest'::jsonb, :'mock', nullif(:'poll_interval', '')::interval);
