# The upgrade path: a 0.1.0 database holding real data in every table,
# updated with ALTER EXTENSION ... UPDATE while the background worker syncs
# it, has the same catalog as a fresh install of the default version, keeps
# its data, goes on syncing, and dumps into a fresh install.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use File::Basename qw(dirname);
use POSIX qw(strftime);
use EMMock;
use EMCatalog qw(catalog_lines compare_catalogs);

# --- 0.1.0 is frozen as released --------------------------------------------
# The released install script must never change (README, Development): its
# checksum is the one of the file 0.1.0 shipped (the parts at 3138f7a).
my $root = dirname(dirname(dirname(File::Spec->rel2abs(__FILE__))));
is(sha256_hex(slurp_file("$root/sql/engineering_metrics--0.1.0.sql")),
	'254691585970c9db118b67dba14827dab7ee5396ad8515c4bd8827281c30125a',
	'sql/engineering_metrics--0.1.0.sql is byte for byte the released 0.1.0 script');

# PGXN's description names the version that the control file installs
my $meta = JSON::PP->new->decode(slurp_file("$root/META.json"));
my ($control_version) = slurp_file("$root/engineering_metrics.control") =~ /^default_version = '([^']+)'/m;
is($meta->{version}, $control_version, "META.json's version is the control file's default ($control_version)");
is($meta->{provides}{engineering_metrics}{file}, "sql/engineering_metrics--$control_version.sql",
	'and it provides the install script of that version');

my $mock = EMMock->new(generate => [ 'github:runs=60,deployments=4,pulls=4,seed=13,span_days=4' ]);
my $url = $mock->url('github');
my $token = 'ghp_upgrade_token_Zq81Lw';

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.database = 'upgraded'
engineering_metrics.naptime = 1
engineering_metrics.slo_evaluation_interval = 3600
track_functions = 'all'
max_worker_processes = 16
});
$node->start;

my $default_version = $node->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'engineering_metrics'");
isnt($default_version, '0.1.0', "the default version is $default_version, past the first release");
like($node->safe_psql('postgres',
		"SELECT string_agg(version, ',' ORDER BY version) FROM pg_available_extension_versions
		 WHERE name = 'engineering_metrics'"),
	qr/^0\.1\.0,.*\Q$default_version\E/, 'both 0.1.0 and the default version can be installed');

$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('postgres', 'CREATE DATABASE upgraded');
$node->safe_psql('fresh', 'CREATE EXTENSION engineering_metrics');
is($node->safe_psql('fresh', "SELECT extversion FROM pg_extension WHERE extname = 'engineering_metrics'"),
	$default_version, 'a plain CREATE EXTENSION installs the default version');

# --- a 0.1.0 database in use: synced by the worker, linked, SLOs alerting ----
$node->safe_psql('upgraded', "CREATE EXTENSION engineering_metrics VERSION '0.1.0'");
is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'engineering_metrics'"),
	'0.1.0', 'the second database runs 0.1.0');
$node->safe_psql('upgraded',
	"SELECT engineering.add_source('gh', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}',
	        token => '$token', poll_interval => '1 hour')");
ok($node->poll_query_until('upgraded',
		"SELECT count(*) > 0 FROM engineering.sync_runs WHERE status = 'ok' AND started_by = 'worker'"),
	'the worker synced the 0.1.0 database');
# The worker evaluates SLO alerts at now(), first as soon as it finds the
# extension and then hourly: wait for that first evaluation, so that none
# falls between the snapshots below.
ok($node->poll_query_until('upgraded',
		"SELECT coalesce(sum(calls), 0) > 0 FROM pg_stat_user_functions
		 WHERE schemaname = 'engineering' AND funcname = '_evaluate_slo_alerts'"),
	'the worker has made its first SLO evaluation');

$node->safe_psql('upgraded', q{
	SELECT engineering.link_changes();
	INSERT INTO engineering.incidents (external_id, service, status, severity, opened_at, resolved_at)
	SELECT 'inc-' || d.id, d.service, 'resolved', 'sev2', d.finished_at + interval '10 minutes',
	       d.finished_at + interval '70 minutes'
	FROM engineering.deployments d WHERE d.status = 'success' ORDER BY d.id LIMIT 2;
	SELECT engineering.attribute_incidents();

	INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999);
	INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
	SELECT engineering._slo_id('checkout-availability'), t,
	       CASE WHEN t > '2024-06-30 11:50+00' AND t <= '2024-06-30 12:10+00' THEN 800 ELSE 1000 END, 1000
	FROM generate_series(timestamptz '2024-06-29 12:01+00', '2024-06-30 12:20+00', '1 minute') t;
	SELECT engineering._evaluate_slo_alerts('2024-06-30 12:10+00');

	-- a request still queued, as a sync interrupted by the update would leave it
	BEGIN;
	SELECT engineering.add_source('gh-paused', 'github', 'http://127.0.0.1:9/github',
	                              '{"repository": "acme/other"}');
	SELECT engineering.alter_source('gh-paused', enabled => false);
	INSERT INTO engineering.sync_tasks (source_id, stream, url)
	SELECT id, 'runs', '/repos/acme/other/actions/runs' FROM engineering.sources WHERE name = 'gh-paused';
	COMMIT;
});

my @tables = split /\n/, $node->safe_psql('upgraded', q{
	SELECT c.relname FROM pg_class c
	WHERE c.relnamespace = 'engineering'::regnamespace AND c.relkind = 'r' ORDER BY 1});
my %columns = map {
	$_ => $node->safe_psql('upgraded', qq{
		SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
		WHERE attrelid = 'engineering.$_'::regclass AND attnum > 0 AND NOT attisdropped})
} @tables;
my $empty = join ' ', grep {
	$node->safe_psql('upgraded', "SELECT count(*) FROM engineering.$_") eq '0'
} @tables;
is($empty, '', 'every 0.1.0 table holds rows before the update (' . scalar(@tables) . ' tables)');

# every row of every table, over the columns 0.1.0 has
sub table_digest
{
	my ($table) = @_;
	return $node->safe_psql('upgraded', qq{
		SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))
		FROM (SELECT $columns{$table} FROM engineering.$table) r});
}
my %before = map { $_ => table_digest($_) } @tables;

# --- the update, with the worker running ------------------------------------
my $runs_before = $node->safe_psql('upgraded', "SELECT count(*) FROM engineering.sync_runs");
$node->safe_psql('upgraded', 'ALTER EXTENSION engineering_metrics UPDATE');
is($node->safe_psql('upgraded', "SELECT extversion FROM pg_extension WHERE extname = 'engineering_metrics'"),
	$default_version, "ALTER EXTENSION UPDATE brings 0.1.0 to $default_version");

my @changed = grep { table_digest($_) ne $before{$_} } @tables;
is("@changed", '', 'every row of every 0.1.0 table is still there, unchanged');

# --- upgraded = fresh, object by object -------------------------------------
my ($only_fresh, $only_upgraded) =
  compare_catalogs([ catalog_lines($node, 'fresh') ], [ catalog_lines($node, 'upgraded') ]);
cmp_ok(scalar(catalog_lines($node, 'fresh')), '>', 1000, 'the catalog description covers the extension');
is(scalar(@$only_fresh) + scalar(@$only_upgraded), 0, 'the updated catalog equals a fresh install')
  or diag(join("\n", (map { "only in a fresh install:    $_" } @$only_fresh),
		(map { "only in the updated database: $_" } @$only_upgraded)));

# --- the worker goes on syncing after the update ----------------------------
my $repo = $mock->world('github')->{repos}{'acme/shop'};
my $iso = sub { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) };
my $now = time;
$mock->mutate('github', op => 'upsert', repo => 'acme/shop', collection => 'runs', items => [
		{ id => 3000001, name => 'CI', path => '.github/workflows/ci.yml', workflow_id => 101,
		  head_branch => 'main', head_sha => $repo->{commits}[-1]{sha}, run_number => 9001, event => 'push',
		  status => 'completed', conclusion => 'success', run_attempt => 1,
		  created_at => $iso->($now - 120), run_started_at => $iso->($now - 110),
		  updated_at => $iso->($now - 30) } ]);
$node->safe_psql('upgraded', "SELECT engineering.alter_source('gh', enabled => true)");
ok($node->poll_query_until('upgraded',
		"SELECT count(*) = 1 FROM engineering.pipeline_runs WHERE external_id = '3000001/1'"),
	'after the update the worker syncs what the API gained');
ok($node->safe_psql('upgraded',
		"SELECT count(*) > $runs_before FROM engineering.sync_runs WHERE status = 'ok' AND started_by = 'worker'"),
	'with a run recorded as ok');
$node->safe_psql('upgraded',
	"SELECT engineering.add_source('gh-new', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}')");
ok($node->poll_query_until('upgraded',
		"SELECT count(*) > 0 FROM engineering.sync_runs WHERE source = 'gh-new' AND status = 'ok'"),
	'and a source added after the update');
unlike(slurp_file($node->logfile), qr/engineering_metrics sync.*exited with exit code [1-9]/,
	'no worker process failed across the update');

# --- a dump of the updated database restores into a fresh install ----------
my $dump = $node->basedir . '/upgraded.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('upgraded'), '-f', $dump ], 'pg_dump of the updated database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored'), '-f', $dump ],
	'restores without errors');
is($node->safe_psql('restored', "SELECT extversion FROM pg_extension WHERE extname = 'engineering_metrics'"),
	$default_version, 'as a fresh install of the default version');
my @differ = grep {
	my $t = $_;
	my $q = qq{SELECT count(*) || ':' || md5(coalesce(string_agg(r::text, E'\\n' ORDER BY r::text), ''))
		FROM (SELECT * FROM engineering.$t) r};
	$node->safe_psql('restored', $q) ne $node->safe_psql('upgraded', $q)
} @tables;
is("@differ", '', 'with every row of every table');
my ($only_r, $only_u) =
  compare_catalogs([ catalog_lines($node, 'restored') ], [ catalog_lines($node, 'upgraded') ]);
is(scalar(@$only_r) + scalar(@$only_u), 0, 'and the same catalog')
  or diag(join("\n", (map { "only restored: $_" } @$only_r), (map { "only updated: $_" } @$only_u)));

$node->stop;
done_testing();
