# Operators' faults in the middle of a sync (013 covers kill -9 of the sync
# worker and an immediate shutdown; 012 that DROP DATABASE ... WITH (FORCE)
# does not wait for a transfer):
#   - kill -9 of a backend running engineering.sync() mid-backfill: the
#     server restarts, the whole call is rolled back (sync() runs in its
#     caller's transaction), and the worker then syncs the source exactly;
#   - DROP EXTENSION while the worker syncs: the drop succeeds, the worker
#     logs what happened and carries on; a new CREATE EXTENSION syncs again;
#   - DROP DATABASE ... WITH (FORCE) while the worker syncs, then the
#     database created again: the worker syncs it from scratch.
# After each the event tables hold exactly what the API holds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use EMMock;
use EMSyncTest qw(iso_epoch github_expect check_github wait_for);

my $since = iso_epoch('2024-01-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'github:runs=1500,deployments=6,pulls=6,seed=63,span_days=40,rerun_ratio=0.05' ]);
my $url = $mock->url('github');
my $config = '{"repository": "acme/shop", "since": "2024-01-01"}';

my $node = PostgreSQL::Test::Cluster->new('kill_drop');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
engineering_metrics.max_pages_per_run = 5
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

sub sql { my ($q, $db) = @_; return $node->safe_psql($db // 'postgres', $q); }

sub rows_of
{
	my ($name, $db) = @_;
	return sql("SELECT count(*) FROM engineering.pipeline_runs p JOIN engineering.sources s
		ON s.id = p.source_id WHERE s.name = '$name'", $db);
}

sub slow_pages
{
	$mock->fault(match => { vendor => 'github' }, kind => 'slow', delay => $_[0], count => -1);
}

sub finished
{
	my ($name, $db) = @_;
	return $node->poll_query_until($db // 'postgres',
		"SELECT pending_tasks = 0 AND last_status = 'ok' FROM engineering.source_status WHERE name = '$name'");
}

sub exact
{
	my ($name, $label, $db) = @_;
	my $sid = sql("SELECT id FROM engineering.sources WHERE name = '$name'", $db);
	my $e = github_expect($mock->world('github'), 'acme/shop', since => $since);
	# check_github reads the database named by its node's default; use a
	# node handle for other databases through a small wrapper
	check_github(EMDbNode->new($node, $db // 'postgres'), $sid, $e, $label);
}

# --- kill -9 of a backend running sync() ---------------------------------
# The source is disabled so that only the session syncs it (sync() also
# syncs disabled sources); every page takes half a second.
sql("BEGIN;
     SELECT engineering.add_source('killed', 'github', '$url', '$config');
     SELECT engineering.alter_source('killed', enabled => false);
     COMMIT;");
slow_pages(0.5);
$mock->clear_requests;
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
	[ 'psql', '-X', '-d', $node->connstr('postgres'), '-c',
	  "SET engineering_metrics.max_pages_per_run = 100000; SELECT status FROM engineering.sync('killed')" ],
	'>', \$out, '2>', \$err);
ok(wait_for(sub { @{ $mock->requests(vendor => 'github') } >= 5 }, 60), 'sync() is in the middle of the backfill');
my $pid = sql("SELECT pid FROM pg_stat_activity WHERE query LIKE '%engineering.sync(''killed'')%'
	AND pid <> pg_backend_pid()");
like($pid, qr/^\d+$/, 'the backend running sync() is found');
my $offset = -s $node->logfile;
kill 'KILL', $pid;
$h->finish;
isnt($?, 0, 'the client saw its session die');
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server came back after the crash');
like(slurp_file($node->logfile, $offset), qr/server process \(PID $pid\) was terminated by signal 9/,
	'the server log says which process was killed');
is(rows_of('killed'), '0', 'the killed call committed nothing (sync() runs in its caller\'s transaction)');
is(sql("SELECT count(*) FROM engineering.sync_runs WHERE status = 'running'"), '0', 'no run is left running');
$mock->clear_faults;
sql("SELECT engineering.alter_source('killed', enabled => true)");
ok(finished('killed'), 'the worker synced the source afterwards');
exact('killed', 'after kill -9 of sync()');

# --- DROP EXTENSION while the worker syncs ---------------------------------
slow_pages(0.3);
sql("SELECT engineering.add_source('dropped', 'github', '$url', '$config')");
ok(wait_for(sub { rows_of('dropped') > 0 }, 60), 'the worker is in the middle of a backfill');
$offset = -s $node->logfile;
my ($ret, $o, $e) = $node->psql('postgres', 'DROP EXTENSION engineering_metrics CASCADE',
	timeout => 60);
is($ret, 0, 'DROP EXTENSION succeeds while the worker syncs') or diag($e);
is(sql('SELECT 1'), '1', 'the server is up');
ok(wait_for(sub {
		sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'engineering_metrics sync'") eq '0' }, 30),
	'the sync worker has left');
is(sql("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'engineering_metrics launcher'"), '1',
	'the launcher keeps running');
my $after_drop = slurp_file($node->logfile, $offset);
unlike($after_drop, qr/PANIC|terminated by signal|server process .* exited/, 'nothing crashed');
like($after_drop, qr/WARNING:  engineering_metrics: sync of source \d+ failed: .*does not exist/,
	'the worker logged why the sync it was running stopped');
unlike($after_drop, qr/ERROR:|exited with exit code/, 'and left without an error of its own');
$mock->clear_faults;
sql('CREATE EXTENSION engineering_metrics');
sql("SELECT engineering.add_source('recreated', 'github', '$url', '$config')");
ok(finished('recreated'), 'after CREATE EXTENSION the worker syncs again');
exact('recreated', 'after DROP and CREATE EXTENSION');

# --- DROP DATABASE ... WITH (FORCE) while the worker syncs, then again ---------
sql('CREATE DATABASE emdb');
sql('CREATE EXTENSION engineering_metrics', 'emdb');
sql("ALTER SYSTEM SET engineering_metrics.database = 'emdb'; SELECT pg_reload_conf()");
slow_pages(0.3);
sql("SELECT engineering.add_source('doomed', 'github', '$url', '$config')", 'emdb');
ok(wait_for(sub { rows_of('doomed', 'emdb') > 0 }, 60), 'the worker syncs in emdb');
($ret, $o, $e) = $node->psql('postgres', 'DROP DATABASE emdb WITH (FORCE)', timeout => 60);
is($ret, 0, 'DROP DATABASE ... WITH (FORCE) succeeds mid-sync') or diag($e);
is(sql('SELECT 1'), '1', 'the server is up');
$mock->clear_faults;
sql('CREATE DATABASE emdb');
sql('CREATE EXTENSION engineering_metrics', 'emdb');
sql("SELECT engineering.add_source('reborn', 'github', '$url', '$config')", 'emdb');
ok(finished('reborn', 'emdb'), 'the worker syncs the new database');
exact('reborn', 'in the database created again', 'emdb');
is(sql("SELECT count(*) FROM engineering.sync_runs WHERE status <> 'ok'", 'emdb'), '0',
	'and the new database holds only successful runs');

$node->stop;
$mock->stop;
done_testing();

# check_github() queries 'postgres'; this forwards safe_psql to another database
package EMDbNode;

sub new { my ($class, $node, $db) = @_; return bless { node => $node, db => $db }, $class; }

sub safe_psql
{
	my ($self, undef, $sql) = @_;
	return $self->{node}->safe_psql($self->{db}, $sql);
}
