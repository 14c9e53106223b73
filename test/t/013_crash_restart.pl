# A crash or a restart in the middle of a sync loses nothing and duplicates
# nothing: after a kill -9 of the sync worker, and after an immediate
# shutdown, the worker carries on from its queue and the event tables end
# up holding exactly what the API holds.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch github_expect check_github wait_for);

my $since = iso_epoch('2024-01-01T00:00:00Z');
my $node = PostgreSQL::Test::Cluster->new('crash');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
engineering_metrics.max_pages_per_run = 20
max_worker_processes = 16
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

# Hold the seventh list page for up to the transfer timeout (30 s) so that
# the worker is surely in the middle of the backfill when the test strikes,
# however the machine schedules it; slow the other pages a little.
sub slow_lists
{
	my ($mock) = @_;
	$mock->fault(match => { vendor => 'github', path => '/actions/runs$' }, kind => 'slow',
		delay => 3600, skip => 6, count => 1);
	$mock->fault(match => { vendor => 'github', path => '/actions/runs$' }, kind => 'slow',
		delay => 0.25, count => -1);
}

sub runs_of
{
	my ($name) = @_;
	my $n = $node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = '$name'");
	return $n;
}

# (identity values jump after a crash: sequences are logged ahead)
sub source_id
{
	my ($name) = @_;
	return $node->safe_psql('postgres', "SELECT id FROM engineering.sources WHERE name = '$name'");
}

sub wait_done
{
	my ($name) = @_;
	return $node->poll_query_until('postgres',
		"SELECT pending_tasks = 0 AND last_status = 'ok' FROM engineering.source_status WHERE name = '$name'");
}

# --- kill -9 of the sync worker ------------------------------------------
my $shop = EMMock->new(generate => [
		'github:repo=acme/shop,runs=3000,deployments=12,pulls=15,seed=31,span_days=60,rerun_ratio=0.05' ]);
slow_lists($shop);
my $url = $shop->url('github');
$node->safe_psql('postgres',
	"SELECT engineering.add_source('shop', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}')");
ok(wait_for(sub { runs_of('shop') > 300 }, 60), 'the worker is in the middle of the backfill');
my $pid = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'engineering_metrics sync'");
ok($pid =~ /^\d+$/, 'the sync worker is running');
my $before = runs_of('shop');
kill 'KILL', $pid;
ok($node->poll_query_until('postgres', 'SELECT 1', '1'), 'the server came back after the crash');
$shop->clear_faults;
ok(wait_done('shop'), 'the worker finished the backfill after the crash');
my $e = github_expect($shop->world('github'), 'acme/shop', since => $since);
cmp_ok($before, '<', scalar(keys %{ $e->{runs} }), "the crash happened mid-way ($before runs stored)");
check_github($node, source_id('shop'), $e, 'after kill -9');
is($node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM engineering.sync_runs WHERE status = 'error' AND error LIKE 'interrupted:%'"),
	't', 'the interrupted run is recorded as such');
is($node->safe_psql('postgres', "SELECT count(*) FROM engineering.sync_runs WHERE status = 'running'"),
	'0', 'no run is left running');

# --- immediate shutdown and restart ---------------------------------------
my $api = EMMock->new(generate => [
		'github:repo=acme/api,runs=2500,deployments=10,pulls=12,seed=32,span_days=50,rerun_ratio=0.05' ]);
slow_lists($api);
$url = $api->url('github');
$node->safe_psql('postgres',
	"SELECT engineering.add_source('api', 'github', '$url', '{\"repository\": \"acme/api\", \"since\": \"2024-01-01\"}')");
ok(wait_for(sub { runs_of('api') > 300 }, 60), 'the worker is in the middle of the second backfill');
$before = runs_of('api');
$node->stop('immediate');
$node->start;
$api->clear_faults;
ok(wait_done('api'), 'the worker finished the backfill after the restart');
$e = github_expect($api->world('github'), 'acme/api', since => $since);
cmp_ok($before, '<', scalar(keys %{ $e->{runs} }), "the restart happened mid-way ($before runs stored)");
check_github($node, source_id('api'), $e, 'after an immediate shutdown');

# the first source was not disturbed by any of it
check_github($node, source_id('shop'), github_expect($shop->world('github'), 'acme/shop', since => $since),
	'the other source');

$node->stop;
$shop->stop;
$api->stop;
done_testing();
