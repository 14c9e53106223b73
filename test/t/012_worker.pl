# The background worker: idles quietly where the extension is not installed,
# syncs a new source by itself (woken on commit, not by polling), evaluates
# SLO alerts, resumes a
# rate-limited source when the limit resets, never blocks DROP DATABASE
# (idle, or mid-transfer WITH (FORCE)), logs a missing database once, is
# restarted after SIGTERM, and prunes the sync history.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use EMMock;
use EMSyncTest qw(iso_epoch github_expect db_map wait_for);

my $mock = EMMock->new(generate => [ 'github:runs=120,deployments=3,pulls=3,seed=21,span_days=5' ]);
my $url = $mock->url('github');
my $config = '{"repository": "acme/shop", "since": "2024-01-01"}';

my $node = PostgreSQL::Test::Cluster->new('worker');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
max_worker_processes = 16
track_functions = 'all'
});
$node->start;

sub launcher_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'engineering_metrics launcher'");
}

sub log_since
{
	my ($offset) = @_;
	return slurp_file($node->logfile, $offset);
}

# --- not installed: quiet ----------------------------------------------------
# The sync workers say at DEBUG1 that there is nothing to sync: wait until a
# few have come and gone (a condition, not a sleep), then read the log.
my $offset = -s $node->logfile;
ok(wait_for(sub { launcher_pid() ne '' }, 30), 'the launcher runs');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET log_min_messages = debug1');
my $idle_passes = qr/extension not installed in this database; nothing to sync/;
ok(wait_for(sub { my @n = log_since($offset) =~ /$idle_passes/g; @n >= 3 }, 60),
	'sync workers came and went');
$node->safe_psql('postgres', 'ALTER DATABASE postgres RESET log_min_messages');
unlike(log_since($offset), qr/(ERROR|WARNING|FATAL).*|engineering_metrics sync.*exited with exit code [1-9]/,
	'without the extension the worker idles quietly');

# --- a new source is synced by itself, woken on commit ------------------------
# (a restart, not a reload: the launcher surely runs with the new naptime)
$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.naptime = '1h'");
$node->restart;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
my $t0 = time;
$node->safe_psql('postgres',
	"SELECT engineering.add_source('gh', 'github', '$url', '$config', poll_interval => '1 hour')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM engineering.sync_runs WHERE status = 'ok' AND started_by = 'worker'"),
	'the worker synced the new source');
my $waited = time - $t0;
cmp_ok($waited, '<', 3600, sprintf('within %.1f s although naptime is an hour: woken at commit', $waited));
my $e = github_expect($mock->world('github'), 'acme/shop', since => iso_epoch('2024-01-01T00:00:00Z'));
is_deeply(db_map($node, 'SELECT external_id, status FROM engineering.pipeline_runs'),
	{ map { $_ => $e->{runs}{$_}{status} } keys %{ $e->{runs} } },
	'the worker stored exactly the runs the API holds');
is($node->safe_psql('postgres', 'SELECT count(*) FROM engineering.deployments'),
	scalar(keys %{ $e->{deployments} }), 'and its deployments');

# the SLO part's evaluation runs in the worker, once a minute
ok($node->poll_query_until('postgres',
		"SELECT calls > 0 FROM pg_stat_user_functions
		 WHERE schemaname = 'engineering' AND funcname = '_evaluate_slo_alerts'"),
	'the worker evaluates SLO alerts');

# --- a rate-limited source resumes after the reset, unprompted ---------------
$mock->fault(match => { vendor => 'github' }, kind => 'rate_limit', status => 403, reset_in => 3, count => 1);
$node->safe_psql('postgres', "SELECT engineering.alter_source('gh', enabled => true)");
ok($node->poll_query_until('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE status = 'rate_limited'", '1'),
	'the worker hit the rate limit');
my ($limited_id, $retry_at) = split /\|/, $node->safe_psql('postgres',
	"SELECT id, extract(epoch FROM next_sync_at) FROM engineering.sync_runs WHERE status = 'rate_limited'");
ok($node->poll_query_until('postgres',
		"SELECT count(*) > 0 FROM engineering.sync_runs WHERE id > $limited_id AND status = 'ok'"),
	'the worker came back by itself');
my $resumed = $node->safe_psql('postgres',
	"SELECT extract(epoch FROM min(started_at)) FROM engineering.sync_runs WHERE id > $limited_id");
ok($resumed >= $retry_at - 0.5 && $resumed < $retry_at + 1800,
	sprintf('at the reset (%.1f s after it), not before and not a naptime (an hour) later', $resumed - $retry_at));

# --- DROP DATABASE ----------------------------------------------------------
$node->safe_psql('postgres', 'CREATE DATABASE other');
$node->safe_psql('postgres', 'DROP DATABASE other');
pass('another database can be dropped');

$node->safe_psql('postgres', 'CREATE DATABASE emdb');
$node->safe_psql('emdb', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('emdb', "SELECT engineering.add_source('gh', 'github', '$url', '$config', poll_interval => '1 hour')");
$node->safe_psql('postgres',
	"ALTER SYSTEM SET engineering_metrics.database = 'emdb';
	 ALTER SYSTEM SET engineering_metrics.naptime = '1s'; SELECT pg_reload_conf()");
ok($node->poll_query_until('emdb', "SELECT count(*) > 0 FROM engineering.sync_runs WHERE status = 'ok'"),
	'the worker follows engineering_metrics.database once the setting is reloaded');
$offset = -s $node->logfile;
my ($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE emdb');
is($ret, 0, "the worker's database can be dropped while it is idle") or diag($err);
ok(wait_for(sub { log_since($offset) =~ /database "emdb" does not exist/ }, 30), 'the launcher notices');
sleep 4;    # an observation window of a few naptimes: slowness only weakens it
my @said = log_since($offset) =~ /database "emdb" does not exist/g;
is(scalar @said, 1, 'and says so once, not every naptime');
is(launcher_pid() ne '', 1, 'the launcher keeps running');

# WITH (FORCE) in the middle of a transfer: the worker leaves at once
$node->safe_psql('postgres', 'CREATE DATABASE emdb2');
$node->safe_psql('emdb2', 'CREATE EXTENSION engineering_metrics');
$mock->fault(match => { vendor => 'github' }, kind => 'slow', delay => 30, count => 1);
$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.database = 'emdb2'; SELECT pg_reload_conf()");
$node->safe_psql('emdb2', "SELECT engineering.add_source('gh', 'github', '$url', '$config')");
ok($node->poll_query_until('postgres',
		"SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'engineering_metrics sync'
		   AND datname = 'emdb2' AND query LIKE 'engineering_metrics: syncing source \"gh\"%'", '1'),
	'pg_stat_activity shows the worker syncing');
$t0 = time;
($ret, $out, $err) = $node->psql('postgres', 'DROP DATABASE emdb2 WITH (FORCE)');
my $took = time - $t0;
is($ret, 0, 'DROP DATABASE ... WITH (FORCE) succeeds mid-transfer') or diag($err);
# the reply would take 30 s (and the transfer times out at 30 s): well below
# that, the drop did not wait for the transfer
cmp_ok($took, '<', 25, sprintf('in %.1f s: the transfer was interrupted', $took));
$mock->clear_faults;

# --- SIGTERM: the launcher is restarted ------------------------------------
$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.database = 'postgres'; SELECT pg_reload_conf()");
my $pid = launcher_pid();
kill 'TERM', $pid;
ok(wait_for(sub { my $p = launcher_pid(); $p ne '' && $p ne $pid }, 30), 'a new launcher replaces a terminated one');
my $runs = $node->safe_psql('postgres', "SELECT count(*) FROM engineering.sync_runs WHERE status = 'ok'");
$node->safe_psql('postgres', "SELECT engineering.alter_source('gh', enabled => true)");
ok($node->poll_query_until('postgres', "SELECT count(*) > $runs FROM engineering.sync_runs WHERE status = 'ok'"),
	'and syncs again');

# --- the sync history is pruned: first after a start, then hourly -----------
sub add_old_runs
{
	my @ages = @_;
	my $values = join(', ', map { "(interval '$_')" } @ages);
	$node->safe_psql('postgres',
		"INSERT INTO engineering.sync_runs (source_id, source, started_at, finished_at, status)
		 SELECT id, name, now() - age, now() - age, 'ok'
		 FROM engineering.sources, (VALUES $values) v(age) WHERE name = 'gh'");
}

my $slo_evaluations = "SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
	 WHERE schemaname = 'engineering' AND funcname = '_evaluate_slo_alerts'";

$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.sync_runs_retention = '1d'");
add_old_runs('3 days', '2 days', '12 hours');
$node->restart;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM engineering.sync_runs WHERE finished_at < now() - interval '1 day'"),
	'after a start the worker prunes the runs older than engineering_metrics.sync_runs_retention');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs
		 WHERE finished_at BETWEEN now() - interval '13 hours' AND now() - interval '11 hours'"),
	'1', 'and keeps the younger ones');

$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.sync_runs_retention = 0");
add_old_runs('5 days');
$node->restart;
my $evaluations = $node->safe_psql('postgres', $slo_evaluations);
ok($node->poll_query_until('postgres', "SELECT ($slo_evaluations) > $evaluations + 1"),
	'the worker made passes after the next start');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE finished_at < now() - interval '4 days'"),
	'1', 'engineering_metrics.sync_runs_retention = 0 keeps every run');

# --- switched off -----------------------------------------------------------
# (a restart, so that the launcher surely runs with the setting off; the
# sleep below is an observation window: a slow machine can only make the
# assertion weaker, never fail it)
$node->safe_psql('postgres', "ALTER SYSTEM SET engineering_metrics.enabled = off");
$node->restart;
$runs = $node->safe_psql('postgres', 'SELECT count(*) FROM engineering.sync_runs');
$node->safe_psql('postgres', "SELECT engineering.alter_source('gh', enabled => true)");
sleep 3;
is($node->safe_psql('postgres', 'SELECT count(*) FROM engineering.sync_runs'), $runs,
	'engineering_metrics.enabled = off stops syncing');

$t0 = time;
$node->stop('fast');
cmp_ok(time - $t0, '<', 60, 'the server stops promptly with the workers (no worker holds it up)');
$mock->stop;
done_testing();
