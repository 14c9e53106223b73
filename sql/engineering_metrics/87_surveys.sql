-- engineering_metrics: developer satisfaction surveys.
--
-- Responses are kept under pseudonyms and read only by admins; everyone
-- else sees them through survey_results(), which runs as the extension's
-- owner and never shows a group with fewer than min_group_size respondents
-- (nor a group whose figures could be derived from the total and the
-- groups shown).

CREATE TABLE engineering.surveys (
    name            text PRIMARY KEY
                    CHECK (btrim(name) <> '' OR engineering._reject_value('surveys.name', name, 'a survey needs a non-empty name')),
    opened_at       timestamptz NOT NULL,
    closed_at       timestamptz,
    description     text,
    CONSTRAINT surveys_closed_after_opened
        CHECK (closed_at >= opened_at OR closed_at IS NULL
               OR engineering._reject_order('surveys.closed_at', closed_at, 'opened_at', opened_at))
);
COMMENT ON TABLE engineering.surveys IS 'developer surveys: one row per survey run (e.g. one per quarter)';
COMMENT ON COLUMN engineering.surveys.name IS 'unique name, e.g. 2024-q2';
COMMENT ON COLUMN engineering.surveys.opened_at IS 'when the survey opened; orders surveys in survey_trend()';
COMMENT ON COLUMN engineering.surveys.closed_at IS 'when it closed; NULL while open.  Group sizes count the people here at some point between opened_at and closed_at';
COMMENT ON COLUMN engineering.surveys.description IS 'free text';

CREATE TABLE engineering.survey_questions (
    survey          text NOT NULL REFERENCES engineering.surveys (name) ON UPDATE CASCADE ON DELETE CASCADE,
    question        text NOT NULL
                    CHECK (btrim(question) <> '' OR engineering._reject_value('survey_questions.question', question, 'a question needs a non-empty key')),
    kind            text NOT NULL
                    CHECK (kind IN ('likert5', 'likert7', 'nps', 'csat5')
                           OR engineering._reject_value('survey_questions.kind', kind, 'expected likert5, likert7, nps or csat5')),
    text            text,
    PRIMARY KEY (survey, question)
);
COMMENT ON TABLE engineering.survey_questions IS
    'the questions of each survey; the same question key in several surveys is what survey_trend() follows';
COMMENT ON COLUMN engineering.survey_questions.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_questions.question IS 'a stable key for the question (e.g. satisfaction, ease_of_deploy), the same across surveys';
COMMENT ON COLUMN engineering.survey_questions.kind IS
    'the scale: likert5 (1-5), likert7 (1-7), csat5 (1-5), nps (0-10, "how likely are you to recommend")';
COMMENT ON COLUMN engineering.survey_questions.text IS 'the wording shown to respondents';

CREATE TABLE engineering.survey_responses (
    survey          text NOT NULL,
    question        text NOT NULL,
    respondent      text NOT NULL
                    CHECK ((btrim(respondent) <> '' AND respondent !~ '@')
                           OR engineering._reject_value('survey_responses.respondent', respondent,
                                                        'a non-empty pseudonym, not an e-mail address (store e.g. a salted hash)')),
    team            text,
    answered_at     timestamptz,
    score           integer NOT NULL,
    attributes      jsonb NOT NULL DEFAULT '{}'
                    CHECK (jsonb_typeof(attributes) = 'object'
                           OR engineering._reject_value('survey_responses.attributes', attributes::text, 'attributes must be a JSON object')),
    PRIMARY KEY (survey, question, respondent),
    FOREIGN KEY (survey, question) REFERENCES engineering.survey_questions (survey, question)
        ON UPDATE CASCADE ON DELETE CASCADE
);
COMMENT ON TABLE engineering.survey_responses IS
    'raw answers, one per respondent and question, under a pseudonym; readable by admins only (others use survey_results)';
COMMENT ON COLUMN engineering.survey_responses.survey IS 'the survey';
COMMENT ON COLUMN engineering.survey_responses.question IS 'the question key';
COMMENT ON COLUMN engineering.survey_responses.respondent IS 'a pseudonym the survey tool gives each respondent (never a name or an e-mail)';
COMMENT ON COLUMN engineering.survey_responses.team IS 'the respondent''s team as the survey tool recorded it; NULL when not asked';
COMMENT ON COLUMN engineering.survey_responses.answered_at IS 'when the answer was submitted';
COMMENT ON COLUMN engineering.survey_responses.score IS 'the answer on the question''s scale; a score outside it is refused';
COMMENT ON COLUMN engineering.survey_responses.attributes IS
    'other demographics the survey tool recorded (role, tenure, ...) as a JSON object; survey_results can group by its keys';

SELECT pg_catalog.pg_extension_config_dump('engineering.surveys', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_questions', '');
SELECT pg_catalog.pg_extension_config_dump('engineering.survey_responses', '');

CREATE FUNCTION engineering.survey_scale(kind text, OUT low integer, OUT high integer, OUT favorable_from integer)
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT v.low, v.high, v.favorable_from
    FROM (VALUES ('likert5', 1, 5, 4), ('likert7', 1, 7, 6), ('csat5', 1, 5, 4), ('nps', 0, 10, 9))
         AS v(kind, low, high, favorable_from)
    WHERE v.kind = survey_scale.kind
$$;
COMMENT ON FUNCTION engineering.survey_scale(text) IS
    'the scale of a question kind: lowest and highest score, and the lowest favorable score (the top two boxes; for nps the promoters, 9 and 10)';

CREATE FUNCTION engineering._check_survey_score()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    q_kind text;
    s record;
BEGIN
    SELECT q.kind INTO q_kind FROM engineering.survey_questions q
    WHERE q.survey = NEW.survey AND q.question = NEW.question;
    IF NOT FOUND THEN
        RETURN NEW;   -- the foreign key reports it
    END IF;
    s := engineering.survey_scale(q_kind);
    IF NEW.score < s.low OR NEW.score > s.high THEN
        RAISE EXCEPTION 'survey_responses.score: % is outside the scale of question "%" of survey "%"',
                        NEW.score, NEW.question, NEW.survey
              USING ERRCODE = 'check_violation',
                    DETAIL = format('%s questions are answered from %s to %s (respondent %s)', q_kind, s.low, s.high, NEW.respondent);
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_score() IS
    'internal trigger: refuses a survey response whose score is outside its question''s scale';
CREATE TRIGGER survey_responses_score_in_scale BEFORE INSERT OR UPDATE ON engineering.survey_responses
    FOR EACH ROW EXECUTE FUNCTION engineering._check_survey_score();

CREATE FUNCTION engineering._check_survey_question_kind()
RETURNS trigger
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
DECLARE
    s record;
    bad integer;
BEGIN
    s := engineering.survey_scale(NEW.kind);
    SELECT r.score INTO bad FROM engineering.survey_responses r
    WHERE r.survey = OLD.survey AND r.question = OLD.question AND (r.score < s.low OR r.score > s.high)
    LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'survey_questions.kind: question "%" of survey "%" has a response scored %, outside the % scale',
                        OLD.question, OLD.survey, bad, NEW.kind
              USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$;
COMMENT ON FUNCTION engineering._check_survey_question_kind() IS
    'internal trigger: refuses changing a question''s kind to a scale its responses do not fit';
CREATE TRIGGER survey_questions_kind_fits_responses BEFORE UPDATE OF kind ON engineering.survey_questions
    FOR EACH ROW WHEN (OLD.kind IS DISTINCT FROM NEW.kind)
    EXECUTE FUNCTION engineering._check_survey_question_kind();

-- Typeform's Responses API (GET /forms/{form_id}/responses) is the survey
-- export with a stable, documented JSON shape that developer surveys most
-- often come from: {"items": [{"token", "submitted_at", "hidden": {...},
-- "answers": [{"field": {"ref", "type"}, "type": "number", "number": 8}]}]}.
-- Numeric answers (opinion scale, rating, NPS fields) become responses; the
-- question key is the field's ref (or question_map->>ref), the respondent
-- the response token, the team and other demographics its hidden fields.
CREATE FUNCTION engineering.import_typeform_responses(survey text, payload jsonb,
                                                      question_map jsonb DEFAULT '{}',
                                                      team_field text DEFAULT 'team')
RETURNS TABLE (imported bigint, skipped bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
#variable_conflict use_column
DECLARE
    items jsonb := payload -> 'items';
BEGIN
    IF jsonb_typeof(items) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'import_typeform_responses: expected a Typeform responses page, a JSON object with an "items" array'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF jsonb_typeof(question_map) IS DISTINCT FROM 'object' THEN
        RAISE EXCEPTION 'import_typeform_responses: question_map must be a JSON object {"field ref": "question"}'
              USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM engineering.surveys s WHERE s.name = import_typeform_responses.survey) THEN
        RAISE EXCEPTION 'import_typeform_responses: no survey named "%"', import_typeform_responses.survey
              USING ERRCODE = 'invalid_parameter_value', HINT = 'INSERT INTO engineering.surveys and survey_questions first';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT coalesce(question_map ->> (a -> 'field' ->> 'ref'), a -> 'field' ->> 'ref') AS question,
               coalesce(i ->> 'token', i ->> 'response_id') AS respondent,
               i -> 'hidden' ->> team_field AS team,
               engineering._ts(i -> 'submitted_at') AS answered_at,
               CASE WHEN a ->> 'type' = 'number' AND jsonb_typeof(a -> 'number') = 'number'
                    THEN (a ->> 'number')::numeric END AS score,
               coalesce(i -> 'hidden', '{}') - team_field AS attributes
        FROM jsonb_array_elements(items) i, jsonb_array_elements(coalesce(i -> 'answers', '[]')) a
        WHERE jsonb_typeof(i) = 'object' AND jsonb_typeof(a) = 'object'
    ), usable AS (
        SELECT a.* FROM answers a
        WHERE a.score IS NOT NULL AND a.score = trunc(a.score) AND a.respondent IS NOT NULL
          AND EXISTS (SELECT 1 FROM engineering.survey_questions q
                      WHERE q.survey = import_typeform_responses.survey AND q.question = a.question)
    ), stored AS (
        INSERT INTO engineering.survey_responses AS r (survey, question, respondent, team, answered_at, score, attributes)
        SELECT import_typeform_responses.survey, u.question, u.respondent, u.team, u.answered_at, u.score::integer,
               CASE WHEN jsonb_typeof(u.attributes) = 'object' THEN u.attributes ELSE '{}' END
        FROM usable u
        ON CONFLICT (survey, question, respondent) DO UPDATE
            SET team = EXCLUDED.team, answered_at = EXCLUDED.answered_at,
                score = EXCLUDED.score, attributes = EXCLUDED.attributes
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM stored), (SELECT count(*) FROM answers) - (SELECT count(*) FROM stored);
END
$$;
COMMENT ON FUNCTION engineering.import_typeform_responses(text, jsonb, jsonb, text) IS
    'imports a page of Typeform''s Responses API into survey_responses (numeric answers to the survey''s questions, keyed by field ref; respondent = response token; team and attributes from hidden fields); idempotent; returns how many answers were stored and skipped';

-- Student's t quantile for a two-sided 95% interval: the table up to 30
-- degrees of freedom, then the Cornish-Fisher expansion (error below 1e-6).
CREATE FUNCTION engineering._t_975(df integer)
RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT CASE
        WHEN df IS NULL OR df < 1 THEN NULL
        WHEN df <= 30 THEN (ARRAY[12.706205, 4.302653, 3.182446, 2.776445, 2.570582, 2.446912, 2.364624,
                                  2.306004, 2.262157, 2.228139, 2.200985, 2.178813, 2.160369, 2.144787,
                                  2.131450, 2.119905, 2.109816, 2.100922, 2.093024, 2.085963, 2.079614,
                                  2.073873, 2.068658, 2.063899, 2.059539, 2.055529, 2.051831, 2.048407,
                                  2.045230, 2.042272]::float8[])[df]
        ELSE z + (z^3 + z) / 4 / df
               + (5 * z^5 + 16 * z^3 + 3 * z) / 96 / df^2
               + (3 * z^7 + 19 * z^5 + 17 * z^3 - 15 * z) / 384 / df^3
               + (79 * z^9 + 776 * z^7 + 1482 * z^5 - 1920 * z^3 - 945 * z) / 92160 / df^4
    END
    FROM (SELECT 1.959963984540054::float8 AS z) c
$$;
COMMENT ON FUNCTION engineering._t_975(integer) IS
    'internal: the 97.5% quantile of Student''s t with df degrees of freedom (two-sided 95% intervals)';

CREATE FUNCTION engineering.survey_results(survey text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (question text, kind text, group_value text,
               respondents bigint, group_size bigint, response_rate float8,
               mean float8, mean_ci_low float8, mean_ci_high float8,
               favorable_rate float8, nps float8, nps_ci_low float8, nps_ci_high float8,
               suppressed boolean, note text)
LANGUAGE plpgsql STABLE PARALLEL SAFE SECURITY DEFINER
SET search_path = pg_catalog, engineering, pg_temp
AS $$
#variable_conflict use_column
DECLARE
    s engineering.surveys;
BEGIN
    IF min_group_size IS NULL OR min_group_size < 3 THEN
        RAISE EXCEPTION 'survey_results: min_group_size % is below 3', coalesce(min_group_size::text, 'NULL')
              USING ERRCODE = 'invalid_parameter_value',
                    DETAIL = 'groups smaller than 3 would show individual answers';
    END IF;
    SELECT * INTO s FROM engineering.surveys v WHERE v.name = survey_results.survey;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'survey_results: no survey named "%"', survey_results.survey USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF group_by IS NOT NULL AND btrim(group_by) = '' THEN
        RAISE EXCEPTION 'survey_results: group_by must be NULL, team or an attribute key' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    WITH answers AS (
        SELECT r.question, q.kind, r.score, sc.favorable_from,
               CASE WHEN group_by IS NULL THEN NULL
                    WHEN group_by = 'team' THEN coalesce(r.team, '(none)')
                    ELSE coalesce(r.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.survey_responses r
        JOIN engineering.survey_questions q ON q.survey = r.survey AND q.question = r.question
        CROSS JOIN LATERAL engineering.survey_scale(q.kind) sc
        WHERE r.survey = s.name
    ), members AS (
        -- the people here at some point while the survey was open
        SELECT CASE WHEN group_by = 'team' THEN coalesce(p.team, '(none)')
                    ELSE coalesce(p.attributes ->> group_by, '(none)') END AS grp
        FROM engineering.people p
        WHERE (p.started_at IS NULL OR p.started_at <= coalesce(s.closed_at, s.opened_at))
          AND (p.left_at IS NULL OR p.left_at > s.opened_at)
    ), sizes AS (
        SELECT m.grp, count(*) AS n FROM members m GROUP BY GROUPING SETS ((m.grp), ())
    ), figures AS (
        SELECT a.question, a.kind,
               grouping(a.grp) = 1 AS is_total,
               CASE WHEN grouping(a.grp) = 0 THEN a.grp END AS grp,
               count(*) AS n,
               avg(a.score)::float8 AS mean,
               stddev_samp(a.score)::float8 AS sd,
               (count(*) FILTER (WHERE a.score >= a.favorable_from))::float8 / count(*) AS favorable,
               (count(*) FILTER (WHERE a.score >= 9))::float8 / count(*) AS promoters,
               (count(*) FILTER (WHERE a.score <= 6))::float8 / count(*) AS detractors
        FROM answers a
        GROUP BY GROUPING SETS ((a.question, a.kind, a.grp), (a.question, a.kind))
    ), primary_cut AS (
        SELECT f.*, f.n < min_group_size AS small FROM figures f
        -- without group_by both grouping sets are the same rows: keep one
        WHERE group_by IS NOT NULL OR f.is_total
    ), secondary_cut AS (
        -- One small group hidden next to a total shown is no protection: the
        -- total and the other groups give it away.  Then the smallest group
        -- shown is hidden too.
        SELECT p.*,
               (NOT p.small AND NOT p.is_total
                AND (SELECT count(*) FROM primary_cut x WHERE x.question = p.question AND NOT x.is_total AND x.small) = 1
                AND p.grp = (SELECT x.grp FROM primary_cut x
                             WHERE x.question = p.question AND NOT x.is_total AND NOT x.small
                             ORDER BY x.n, x.grp LIMIT 1)) AS hidden_too
        FROM primary_cut p
    )
    SELECT c.question, c.kind, c.grp,
           CASE WHEN hide THEN NULL ELSE c.n END,
           CASE WHEN hide THEN NULL ELSE z.n END,
           CASE WHEN hide OR coalesce(z.n, 0) = 0 THEN NULL ELSE c.n::float8 / z.n END,
           CASE WHEN hide THEN NULL ELSE c.mean END,
           CASE WHEN hide THEN NULL ELSE c.mean - engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.mean + engineering._t_975((c.n - 1)::integer) * c.sd / sqrt(c.n) END,
           CASE WHEN hide THEN NULL ELSE c.favorable END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL ELSE 100 * (c.promoters - c.detractors) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            - 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           CASE WHEN hide OR c.kind <> 'nps' THEN NULL
                ELSE 100 * (c.promoters - c.detractors
                            + 1.959963984540054 * sqrt((c.promoters + c.detractors - (c.promoters - c.detractors)^2) / c.n)) END,
           hide,
           CASE WHEN c.small THEN format('suppressed: fewer than %s respondents', min_group_size)
                WHEN c.hidden_too THEN 'suppressed: it would reveal a smaller suppressed group through the total' END
    FROM secondary_cut c
    CROSS JOIN LATERAL (SELECT c.small OR c.hidden_too AS hide) h
    LEFT JOIN sizes z ON (z.grp IS NULL AND c.is_total) OR z.grp = c.grp
    ORDER BY c.question, c.grp NULLS FIRST;
END
$$;
COMMENT ON FUNCTION engineering.survey_results(text, text, integer) IS
    'per question and group (group_by: NULL, team, or a key of the responses'' and people''s attributes; group NULL: everyone): respondents, response rate against the group in people, mean with its 95% t interval, favorable rate (top two boxes), NPS with its 95% interval; a group below min_group_size (at least 3) is suppressed, and so is the smallest other group when only one would be';

CREATE FUNCTION engineering.survey_trend(question text, group_by text DEFAULT NULL, min_group_size integer DEFAULT 5)
RETURNS TABLE (survey text, opened_at timestamptz, group_value text, respondents bigint, figure text,
               value float8, ci_low float8, ci_high float8, previous_value float8, change float8,
               change_margin float8, exceeds_ci boolean, suppressed boolean)
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    WITH per_survey AS (
        SELECT s.name, s.opened_at, r.group_value, r.respondents, r.suppressed,
               CASE WHEN r.kind = 'nps' THEN 'nps' ELSE 'mean' END AS figure,
               CASE WHEN r.kind = 'nps' THEN r.nps ELSE r.mean END AS value,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_low ELSE r.mean_ci_low END AS ci_low,
               CASE WHEN r.kind = 'nps' THEN r.nps_ci_high ELSE r.mean_ci_high END AS ci_high
        FROM engineering.surveys s
        JOIN engineering.survey_questions q ON q.survey = s.name AND q.question = survey_trend.question
        CROSS JOIN LATERAL engineering.survey_results(s.name, survey_trend.group_by, survey_trend.min_group_size) r
        WHERE r.question = survey_trend.question
    ), with_previous AS (
        SELECT p.*,
               lag(p.value) OVER w AS prev_value,
               lag((p.ci_high - p.ci_low) / 2) OVER w AS prev_margin
        FROM per_survey p
        WINDOW w AS (PARTITION BY p.group_value ORDER BY p.opened_at, p.name)
    )
    SELECT w.name, w.opened_at, w.group_value, w.respondents, w.figure, w.value, w.ci_low, w.ci_high,
           w.prev_value, w.value - w.prev_value,
           sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           abs(w.value - w.prev_value) > sqrt(w.prev_margin^2 + ((w.ci_high - w.ci_low) / 2)^2),
           w.suppressed
    FROM with_previous w
    ORDER BY w.group_value NULLS FIRST, w.opened_at, w.name
$$;
COMMENT ON FUNCTION engineering.survey_trend(text, text, integer) IS
    'one question across the surveys that asked it, per group: the figure (mean, or NPS for nps questions) with its 95% interval, the change from the previous survey and whether it exceeds the combined margin sqrt(previous margin^2 + margin^2); suppression as in survey_results';
