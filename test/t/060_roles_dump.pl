# Roles across databases and clusters: the group roles are shared by every
# database of a cluster that installs the extension, survive DROP
# EXTENSION, and a pg_dump restored into a fresh cluster (where the roles do
# not exist) gets them back from CREATE EXTENSION, with the extension's
# grants and any grant an administrator changed afterwards.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $old = PostgreSQL::Test::Cluster->new('roles_old');
$old->init;
$old->start;
$old->safe_psql('postgres', 'CREATE DATABASE one');
$old->safe_psql('postgres', 'CREATE DATABASE two');
$old->safe_psql('one', 'CREATE EXTENSION engineering_metrics');
$old->safe_psql('two', 'CREATE EXTENSION engineering_metrics');
is($old->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'engineering\\_%'"),
	'3', 'two databases, one set of roles');
is($old->safe_psql('two', "SELECT has_table_privilege('engineering_writer', 'engineering.incidents', 'INSERT')"),
	't', 'granted in the second database too');

# an administrator's own decisions, and a member
$old->safe_psql('one', q{
	GRANT SELECT ON engineering.sync_tasks TO engineering_reader;
	REVOKE DELETE ON engineering.deployments FROM engineering_writer;
	CREATE ROLE grafana LOGIN IN ROLE engineering_reader;
	INSERT INTO engineering.deployments (service, status, finished_at) VALUES ('api', 'success', '2024-05-01');
});
$old->safe_psql('two', 'DROP EXTENSION engineering_metrics CASCADE');
is($old->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'engineering\\_%'"),
	'3', 'DROP EXTENSION leaves the roles');
is($old->safe_psql('one', "SELECT has_table_privilege('engineering_reader', 'engineering.deployments', 'SELECT')"),
	't', 'and the other database keeps its grants');
my ($ret, $out, $err) = $old->psql('postgres', 'DROP ROLE engineering_reader');
isnt($ret, 0, 'a role still used elsewhere cannot be dropped');
like($err, qr/cannot be dropped because some objects depend on it/, 'PostgreSQL says why');

my $dump = $old->basedir . '/one.sql';
$old->command_ok([ 'pg_dump', '-d', $old->connstr('one'), '-f', $dump ], 'pg_dump');

my $new = PostgreSQL::Test::Cluster->new('roles_new');
$new->init;
$new->start;
is($new->safe_psql('postgres', "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'engineering\\_%'"),
	'0', 'the new cluster has no engineering roles');
$new->safe_psql('postgres', 'CREATE DATABASE one');
$new->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $new->connstr('one'), '-f', $dump ],
	'the dump restores');
is($new->safe_psql('postgres',
		"SELECT string_agg(rolname, ',' ORDER BY rolname) FROM pg_roles WHERE rolname LIKE 'engineering\\_%'"),
	'engineering_admin,engineering_reader,engineering_writer', 'CREATE EXTENSION made the roles');
is($new->safe_psql('one', q{
	SELECT has_table_privilege('engineering_reader', 'engineering.deployments', 'SELECT'),
	       has_table_privilege('engineering_reader', 'engineering.sync_tasks', 'SELECT'),
	       has_table_privilege('engineering_writer', 'engineering.deployments', 'INSERT'),
	       has_table_privilege('engineering_writer', 'engineering.deployments', 'DELETE'),
	       has_function_privilege('engineering_admin', 'engineering.sync(text)', 'EXECUTE'),
	       has_table_privilege('engineering_admin', 'engineering.source_secrets', 'SELECT'),
	       has_schema_privilege('engineering_reader', 'engineering', 'USAGE')}),
	't|t|t|f|t|f|t', 'the extension\'s grants and the administrator\'s changes are restored');
is($new->safe_psql('one', 'SELECT count(*) FROM engineering.deployments'), '1', 'with the data');

$old->stop;
$new->stop;
done_testing();
