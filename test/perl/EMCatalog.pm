# EMCatalog: a description of every object the extension owns, one line per
# object and property, for comparing two databases (a fresh install and an
# updated one) object by object.
#
# Each line is "kind<TAB>identity<TAB>property=value".  Nothing depends on
# OIDs, attribute numbers of dropped columns or creation order, so two
# databases built by different scripts compare equal exactly when their
# objects are the same.
package EMCatalog;

use strict;
use warnings;

use Exporter 'import';

our @EXPORT_OK = qw(catalog_lines compare_catalogs);

# The schema's objects and the extension's members.  Column positions are
# counted among live columns, so that ALTER TABLE ... DROP COLUMN in an
# upgrade compares equal to a table created without the column, while a
# column appended in a different place than the install script puts it
# (which breaks ROW(...)::table constructors) does not.
my $catalog_sql = <<'SQL';
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'engineering_metrics'),
members AS (
    SELECT d.classid, d.objid
    FROM pg_depend d, ext
    WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e'
),
eng AS (SELECT 'engineering'::regnamespace AS nsp),
rels AS (
    SELECT c.oid, c.relname, c.relkind::text FROM pg_class c, eng WHERE c.relnamespace = eng.nsp
),
procs AS (
    SELECT p.oid, p.oid::regprocedure::text AS ident FROM pg_proc p, eng WHERE p.pronamespace = eng.nsp
),
lines(kind, ident, prop) AS (
    -- membership: every object of the extension, by its stable identity
    SELECT 'member', i.type || ' ' || i.identity, 'member'
    FROM members m, pg_identify_object(m.classid, m.objid, 0) i
  UNION ALL
    -- functions and procedures
    SELECT 'function', p.ident, x.prop
    FROM procs p JOIN pg_proc f ON f.oid = p.oid,
    LATERAL (VALUES
        ('kind=' || f.prokind::text),
        ('returns=' || CASE WHEN f.proretset THEN 'setof ' ELSE '' END || format_type(f.prorettype, NULL)),
        ('result=' || coalesce(pg_get_function_result(f.oid), '')),
        ('arguments=' || pg_get_function_arguments(f.oid)),
        ('volatility=' || f.provolatile::text),
        ('parallel=' || f.proparallel::text),
        ('strict=' || f.proisstrict),
        ('security_definer=' || f.prosecdef),
        ('leakproof=' || f.proleakproof),
        ('cost=' || f.procost || ' rows=' || f.prorows),
        ('config=' || coalesce(array_to_string(f.proconfig, ','), '')),
        ('owner=' || f.proowner::regrole),
        ('language=' || (SELECT lanname FROM pg_language WHERE oid = f.prolang)),
        ('support=' || f.prosupport::text),
        ('acl=' || coalesce(f.proacl::text, 'default')),
        ('body=' || md5(coalesce(f.prosrc, '') || '|' || coalesce(f.probin, '')))
    ) x(prop)
  UNION ALL
    -- aggregates
    SELECT 'aggregate', p.ident, x.prop
    FROM procs p JOIN pg_aggregate a ON a.aggfnoid = p.oid,
    LATERAL (VALUES
        ('aggkind=' || a.aggkind::text || ' direct_args=' || a.aggnumdirectargs),
        ('sfunc=' || a.aggtransfn::regprocedure::text || ' stype=' || format_type(a.aggtranstype, NULL)
            || ' sspace=' || a.aggtransspace),
        ('finalfunc=' || a.aggfinalfn::text || ' extra=' || a.aggfinalextra || ' modify=' || a.aggfinalmodify::text),
        ('combinefunc=' || a.aggcombinefn::text),
        ('serialfunc=' || a.aggserialfn::text || ' deserialfunc=' || a.aggdeserialfn::text),
        ('msfunc=' || a.aggmtransfn::text || ' minvfunc=' || a.aggminvtransfn::text
            || ' mfinalfunc=' || a.aggmfinalfn::text || ' mstype=' || format_type(a.aggmtranstype, NULL)),
        ('initcond=' || coalesce(a.agginitval, '<null>') || ' minitcond=' || coalesce(a.aggminitval, '<null>')),
        ('sortop=' || a.aggsortop::text)
    ) x(prop)
  UNION ALL
    -- relations: tables, views, sequences, indexes, composite types
    SELECT 'relation', r.relname, x.prop
    FROM rels r JOIN pg_class c ON c.oid = r.oid,
    LATERAL (VALUES
        ('relkind=' || c.relkind::text),
        ('persistence=' || c.relpersistence::text),
        ('options=' || coalesce(array_to_string(c.reloptions, ','), '')),
        ('owner=' || c.relowner::regrole),
        ('acl=' || coalesce(c.relacl::text, 'default')),
        ('rowsecurity=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity),
        ('replident=' || c.relreplident::text)
    ) x(prop)
  UNION ALL
    SELECT 'column', r.relname || '.' || a.attname, x.prop
    FROM rels r JOIN pg_attribute a ON a.attrelid = r.oid AND a.attnum > 0 AND NOT a.attisdropped
    LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum,
    LATERAL (VALUES
        ('position=' || (SELECT count(*) FROM pg_attribute b
                         WHERE b.attrelid = a.attrelid AND b.attnum > 0 AND b.attnum <= a.attnum
                           AND NOT b.attisdropped)),
        ('type=' || format_type(a.atttypid, a.atttypmod)),
        ('notnull=' || a.attnotnull),
        ('default=' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '')),
        ('identity=' || a.attidentity::text || ' generated=' || a.attgenerated::text),
        ('collation=' || coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation), '')),
        ('storage=' || a.attstorage::text || ' compression=' || a.attcompression::text),
        ('acl=' || coalesce(a.attacl::text, 'default'))
    ) x(prop)
    WHERE r.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
  UNION ALL
    SELECT 'constraint', coalesce(r.relname, format_type(co.contypid, NULL)) || '.' || co.conname,
           co.contype::text || ' ' || pg_get_constraintdef(co.oid)
    FROM pg_constraint co
    LEFT JOIN rels r ON r.oid = co.conrelid, eng
    WHERE co.connamespace = eng.nsp
  UNION ALL
    SELECT 'index', r.relname, pg_get_indexdef(r.oid)
    FROM rels r WHERE r.relkind IN ('i', 'I')
  UNION ALL
    SELECT 'view', r.relname, 'definition=' || pg_get_viewdef(r.oid)
    FROM rels r WHERE r.relkind IN ('v', 'm')
  UNION ALL
    SELECT 'sequence', r.relname, 'type=' || format_type(s.seqtypid, NULL) || ' start=' || s.seqstart
        || ' increment=' || s.seqincrement || ' min=' || s.seqmin || ' max=' || s.seqmax
        || ' cache=' || s.seqcache || ' cycle=' || s.seqcycle
        || ' owned_by=' || coalesce((SELECT dr.relname || '.' || da.attname
                                     FROM pg_depend d
                                     JOIN pg_class dr ON dr.oid = d.refobjid
                                     JOIN pg_attribute da ON da.attrelid = d.refobjid AND da.attnum = d.refobjsubid
                                     WHERE d.classid = 'pg_class'::regclass AND d.objid = r.oid
                                       AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass), '')
    FROM rels r JOIN pg_sequence s ON s.seqrelid = r.oid
  UNION ALL
    SELECT 'trigger', r.relname || '.' || t.tgname, pg_get_triggerdef(t.oid) || ' enabled=' || t.tgenabled::text
    FROM rels r JOIN pg_trigger t ON t.tgrelid = r.oid AND NOT t.tgisinternal
  UNION ALL
    SELECT 'policy', r.relname || '.' || po.polname,
           po.polcmd::text || ' permissive=' || po.polpermissive
           || ' roles=' || (SELECT string_agg(CASE WHEN ro = 0 THEN 'public' ELSE ro::regrole::text END, ',' ORDER BY 1)
                            FROM unnest(po.polroles) ro)
           || ' using=' || coalesce(pg_get_expr(po.polqual, po.polrelid), '')
           || ' check=' || coalesce(pg_get_expr(po.polwithcheck, po.polrelid), '')
    FROM rels r JOIN pg_policy po ON po.polrelid = r.oid
  UNION ALL
    SELECT 'rule', r.relname || '.' || ru.rulename, md5(pg_get_ruledef(ru.oid))
    FROM rels r JOIN pg_rewrite ru ON ru.ev_class = r.oid AND ru.rulename <> '_RETURN'
  UNION ALL
    -- types other than the row types of relations
    SELECT 'type', format_type(t.oid, NULL), x.prop
    FROM pg_type t, eng,
    LATERAL (VALUES
        ('typtype=' || t.typtype::text || ' category=' || t.typcategory::text || ' len=' || t.typlen
            || ' byval=' || t.typbyval || ' align=' || t.typalign::text || ' storage=' || t.typstorage::text),
        ('io=' || t.typinput::text || ',' || t.typoutput::text || ',' || t.typreceive::text
            || ',' || t.typsend::text || ' mod=' || t.typmodin::text || ',' || t.typmodout::text
            || ' analyze=' || t.typanalyze::text),
        ('base=' || CASE WHEN t.typbasetype = 0 THEN '' ELSE format_type(t.typbasetype, t.typtypmod) END
            || ' notnull=' || t.typnotnull || ' default=' || coalesce(t.typdefault, '')),
        ('enum=' || coalesce((SELECT string_agg(e.enumlabel, ',' ORDER BY e.enumsortorder)
                              FROM pg_enum e WHERE e.enumtypid = t.oid), '')),
        ('owner=' || t.typowner::regrole || ' acl=' || coalesce(t.typacl::text, 'default'))
    ) x(prop)
    WHERE t.typnamespace = eng.nsp
      AND NOT EXISTS (SELECT 1 FROM pg_type e WHERE e.typarray = t.oid)
      AND NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = t.typrelid AND c.relkind::text <> 'c')
  UNION ALL
    -- comments on everything in the schema (and the schema itself)
    SELECT 'comment', i.type || ' ' || i.identity
               || CASE WHEN d.objsubid > 0 THEN '.' || (SELECT attname FROM pg_attribute
                                                          WHERE attrelid = d.objoid AND attnum = d.objsubid)
                       ELSE '' END,
           md5(d.description)
    FROM pg_description d, pg_identify_object(d.classoid, d.objoid, 0) i
    WHERE i.schema = 'engineering' OR (i.type = 'schema' AND i.identity = 'engineering')
       OR (d.classoid, d.objoid) IN (SELECT classid, objid FROM members)
  UNION ALL
    -- what pg_dump saves of the extension's tables
    SELECT 'config_dump', c.relid::regclass::text, 'condition=' || coalesce(c.cond, '')
    FROM pg_extension e,
         LATERAL unnest(e.extconfig, coalesce(e.extcondition, array_fill(NULL::text, ARRAY[cardinality(e.extconfig)])))
             AS c(relid, cond)
    WHERE e.extname = 'engineering_metrics'
  UNION ALL
    SELECT 'schema', 'engineering', 'owner=' || n.nspowner::regrole || ' acl=' || coalesce(n.nspacl::text, 'default')
    FROM pg_namespace n WHERE n.nspname = 'engineering'
  UNION ALL
    SELECT 'default_acl', coalesce(n.nspname, '') || ' ' || da.defaclobjtype::text, da.defaclrole::regrole || ' ' || da.defaclacl::text
    FROM pg_default_acl da LEFT JOIN pg_namespace n ON n.oid = da.defaclnamespace
    WHERE n.nspname = 'engineering'
)
-- one line per property: multi-line definitions (views, CASE constraints) fold
SELECT kind || E'\t' || ident || E'\t' || regexp_replace(prop, '\s+', ' ', 'g') FROM lines ORDER BY 1
SQL

# catalog_lines($node, $dbname) -> list of lines
sub catalog_lines
{
	my ($node, $db) = @_;
	my $out = $node->safe_psql($db, $catalog_sql);
	return split /\n/, $out;
}

# compare_catalogs(\@a, \@b) -> (only in a, only in b), each sorted
sub compare_catalogs
{
	my ($a, $b) = @_;
	my (%in_a, %in_b);
	$in_a{$_}++ for @$a;
	$in_b{$_}++ for @$b;
	my @only_a = sort grep { !exists $in_b{$_} || $in_b{$_} < $in_a{$_} } keys %in_a;
	my @only_b = sort grep { !exists $in_a{$_} || $in_a{$_} < $in_b{$_} } keys %in_b;
	return (\@only_a, \@only_b);
}

1;
