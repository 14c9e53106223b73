# A pg_dump of a database using the extension restores with its events:
# extension tables are registered with pg_extension_config_dump.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dump');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE source_db');
$node->safe_psql('source_db', q{
	CREATE EXTENSION engineering_metrics;
	INSERT INTO engineering.deployments (external_id, service, finished_at, status)
	SELECT 'd' || n, 'svc' || (n % 3), timestamptz '2024-01-01' + n * interval '1 hour', 'success'
	FROM generate_series(1, 50) n;
	INSERT INTO engineering.changes (external_id, service, commit_sha, committed_at)
	SELECT 'c' || n, 'svc' || (n % 3), substr(md5(n::text), 1, 40), timestamptz '2024-01-01' + n * interval '1 hour' - interval '3 hours'
	FROM generate_series(1, 50) n;
	INSERT INTO engineering.deployment_changes (deployment_id, change_id, linked_by)
	SELECT d.id, c.id, 'manual' FROM engineering.deployments d JOIN engineering.changes c ON substr(c.external_id, 2) = substr(d.external_id, 2);
	INSERT INTO engineering.incidents (external_id, service, status, opened_at, resolved_at, cause_deployment_id)
	SELECT 'i' || id, service, 'resolved', finished_at + interval '5 minutes', finished_at + interval '1 hour', id
	FROM engineering.deployments WHERE id % 10 = 0;
});

my $fingerprint = q{
	SELECT (SELECT count(*) FROM engineering.deployments) || '/' ||
	       (SELECT count(*) FROM engineering.changes) || '/' ||
	       (SELECT count(*) FROM engineering.deployment_changes) || '/' ||
	       (SELECT count(*) FROM engineering.incidents WHERE cause_deployment_id IS NOT NULL) || '/' ||
	       (SELECT md5(string_agg(external_id || finished_at, ',' ORDER BY id)) FROM engineering.deployments)
};
my $before = $node->safe_psql('source_db', $fingerprint);
like($before, qr{^50/50/50/5/}, 'source database holds the sample');

my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('source_db'), '-f', $dump ], 'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE restored_db');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored_db'), '-f', $dump ],
	'the dump restores without errors');
is($node->safe_psql('restored_db', $fingerprint), $before, 'restored events are identical');

# identity counters continue after the restored rows instead of colliding
$node->safe_psql('restored_db', q{
	INSERT INTO engineering.deployments (external_id, service, finished_at, status)
	VALUES ('after-restore', 'svc0', '2024-06-01', 'success')});
is($node->safe_psql('restored_db', "SELECT count(*) FROM engineering.deployments"), '51',
	'a new row gets a fresh id after the restore');

$node->stop;
done_testing();
