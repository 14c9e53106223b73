-- Every public object of the extension is documented with COMMENT ON, and
-- every function is marked PARALLEL SAFE or explains why not (none may be
-- left at the default by accident).

-- objects owned by the extension that have no comment (expect none)
SELECT pg_describe_object(classid, objid, 0) AS undocumented
FROM pg_depend d
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engineering_metrics')
  AND deptype = 'e'
  AND classid IN ('pg_class'::regclass, 'pg_proc'::regclass, 'pg_type'::regclass)
  AND NOT (classid = 'pg_class'::regclass
           AND (SELECT relkind FROM pg_class WHERE oid = objid) IN ('S', 'i'))
  AND NOT (classid = 'pg_type'::regclass
           AND EXISTS (SELECT 1 FROM pg_type t WHERE t.oid = objid
                       AND (t.typrelid <> 0 OR t.typelem <> 0 AND t.typname LIKE '\_%')))
  AND obj_description(objid, (SELECT relname FROM pg_class WHERE oid = classid)) IS NULL
ORDER BY 1;

-- columns of extension tables and views that have no comment (expect none)
SELECT c.oid::regclass AS relation, a.attname AS undocumented_column
FROM pg_class c
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relnamespace = 'engineering'::regnamespace
  AND c.relkind IN ('r', 'v', 'm', 'p')
  AND col_description(c.oid, a.attnum) IS NULL
ORDER BY c.oid::regclass::text COLLATE "C", 2;

-- functions that are not PARALLEL SAFE (each must be on purpose)
-- sync engine and connectors: each one listed writes tables (sources, tokens,
-- the task queue, synced rows), registers a wake-up at commit, or catches
-- errors in an EXCEPTION block (a subtransaction, refused in parallel mode).
SELECT p.oid::regprocedure AS function, p.proparallel
FROM pg_proc p
WHERE p.pronamespace = 'engineering'::regnamespace
  AND p.proparallel <> 's'
ORDER BY p.oid::regprocedure::text COLLATE "C";

-- the checks above looked at something: the extension does own documented
-- tables, functions and columns
SELECT count(*) FILTER (WHERE classid = 'pg_class'::regclass) > 5 AS has_tables,
       count(*) FILTER (WHERE classid = 'pg_proc'::regclass) > 0 AS has_functions
FROM pg_depend
WHERE refclassid = 'pg_extension'::regclass
  AND refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engineering_metrics')
  AND deptype = 'e';
