-- engineering_metrics: people from the service catalog's User entities.
--
-- Backstage knows who works here (User entities, their profile e-mail,
-- the groups they are members of), not when they joined: the refresh
-- writes names, e-mails, teams and aliases, and leaves started_at to
-- admins (an HR export), except that a user who left the catalog is
-- recorded as having left.

CREATE FUNCTION engineering.refresh_people_from_catalog()
RETURNS TABLE (added bigint, updated bigint, left_catalog bigint)
LANGUAGE plpgsql VOLATILE PARALLEL UNSAFE
AS $$
#variable_conflict use_column
DECLARE
    n_added bigint;
    n_updated bigint;
    n_left bigint;
    c record;
    pid integer;
BEGIN
    -- one user of several catalogs counts once: the first source's entity
    CREATE TEMP TABLE IF NOT EXISTS _catalog_people (
        user_ref text, name text, email text, team text, github text, person_id integer) ON COMMIT DROP;
    TRUNCATE _catalog_people;
    INSERT INTO _catalog_people (user_ref, name, email, team, github)
    SELECT DISTINCT ON (u.user_ref) u.user_ref, coalesce(u.display_name, u.name), lower(u.email),
           (SELECT min(split_part(m.group_ref, '/', 2)) FROM engineering.catalog_memberships m
             WHERE m.user_ref = u.user_ref AND m.source_id IS NOT DISTINCT FROM u.source_id),
           nullif(e.annotations->>'github.com/user-login', '')
    FROM engineering.catalog_users u
    JOIN engineering.catalog_entities e ON e.source_id IS NOT DISTINCT FROM u.source_id AND e.entity_ref = u.user_ref
    ORDER BY u.user_ref, u.source_id NULLS LAST;

    -- a person is found by their backstage alias, else by their e-mail
    UPDATE _catalog_people cp
       SET person_id = coalesce(
               (SELECT a.person_id FROM engineering.person_aliases a
                 WHERE a.kind = 'backstage' AND lower(a.alias) = cp.user_ref),
               (SELECT p.id FROM engineering.people p WHERE lower(p.email) = cp.email));

    WITH changed AS (
        UPDATE engineering.people p
           SET name = cp.name, email = coalesce(cp.email, p.email), team = coalesce(cp.team, p.team)
          FROM _catalog_people cp
         WHERE cp.person_id = p.id
           AND (p.name, p.email, p.team) IS DISTINCT FROM (cp.name, coalesce(cp.email, p.email), coalesce(cp.team, p.team))
        RETURNING 1)
    SELECT count(*) INTO n_updated FROM changed;

    n_added := 0;
    FOR c IN SELECT * FROM _catalog_people WHERE person_id IS NULL ORDER BY user_ref LOOP
        INSERT INTO engineering.people (name, email, team) VALUES (c.name, c.email, c.team)
        RETURNING id INTO pid;
        UPDATE _catalog_people SET person_id = pid WHERE user_ref = c.user_ref;
        n_added := n_added + 1;
    END LOOP;

    INSERT INTO engineering.person_aliases (person_id, kind, alias)
    SELECT cp.person_id, a.kind, a.alias
    FROM _catalog_people cp
    CROSS JOIN LATERAL (VALUES ('backstage', cp.user_ref), ('github', cp.github)) a(kind, alias)
    WHERE cp.person_id IS NOT NULL AND a.alias IS NOT NULL
    ON CONFLICT DO NOTHING;

    -- the user's entity left every catalog it was in: the person left then
    WITH gone AS (
        UPDATE engineering.people p
           SET left_at = r.removed_at
          FROM (SELECT a.person_id, max(e.removed_at) AS removed_at
                FROM engineering.person_aliases a
                JOIN engineering.catalog_entities e ON e.entity_ref = lower(a.alias) AND e.kind = 'user'
                WHERE a.kind = 'backstage'
                GROUP BY a.person_id
                HAVING bool_and(e.removed_at IS NOT NULL)) r
         WHERE p.id = r.person_id AND p.left_at IS NULL
           AND (p.started_at IS NULL OR p.started_at <= r.removed_at)
        RETURNING 1)
    SELECT count(*) INTO n_left FROM gone;

    RETURN QUERY SELECT n_added, n_updated, n_left;
END
$$;
COMMENT ON FUNCTION engineering.refresh_people_from_catalog() IS
    'fills people from the catalog''s live User entities (name, profile e-mail, first group as team, aliases backstage and github.com/user-login), matching by backstage alias then e-mail; a user gone from the catalog gets left_at; start dates are left to admins; returns how many people were added, updated and marked as left';
