# The background worker syncs incident sources by itself: one database with
# a PagerDuty, an Opsgenie and a GitHub source, all served by the loopback
# mock, holds exactly the rows the APIs hold without anyone calling sync();
# on the next polls it picks up what moved on (a PagerDuty incident
# acknowledged then resolved, an Opsgenie incident closed); tokens never
# reach the server log.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch github_expect db_rows db_map wait_for);
use EMIncidentTest qw(pagerduty_expect opsgenie_expect incident_rows iso_z);

my $since = iso_epoch('2025-06-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'pagerduty:incidents=180,open=5,seed=61,start=2025-06-01T00:00:00Z,span_days=200,time_zone=-07:00,token=pd-worker-token-1',
		'opsgenie:incidents=150,open=4,seed=62,start=2025-06-01T00:00:00Z,span_days=200,token=og-worker-key-2',
		'github:runs=120,deployments=3,pulls=3,seed=63,start=2025-06-01T00:00:00Z,span_days=30,rerun_ratio=0,token=gh-worker-token-3'
]);

my $node = PostgreSQL::Test::Cluster->new('incident_worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.database = 'postgres'
engineering_metrics.naptime = 1
log_min_messages = debug1
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
like($node->safe_psql('postgres', 'SELECT engineering.build_info()'), qr/preloaded \(background worker registered\)/, 'the worker is preloaded');

my $pd = $mock->url('pagerduty');
my $og = $mock->url('opsgenie');
my $gh = $mock->url('github');
$node->safe_psql('postgres', qq{
	SELECT engineering.add_source('pd', 'pagerduty', '$pd', '{"since": "2025-06-01"}',
	                              token => 'pd-worker-token-1', poll_interval => '10 seconds');
	SELECT engineering.add_source('og', 'opsgenie', '$og', '{"query": "*", "since": "2025-06-01"}',
	                              token => 'og-worker-key-2', poll_interval => '10 seconds');
	SELECT engineering.add_source('gh', 'github', '$gh', '{"repository": "acme/shop", "since": "2025-06-01"}',
	                              token => 'gh-worker-token-3', poll_interval => '10 seconds');
});

# (the statement above is in the log because the test harness logs every
# statement; what the extension writes comes after it)
my $log_start = -s $node->logfile;

my $pd_e = pagerduty_expect($mock->world('pagerduty'), since => $since);
my $og_e = opsgenie_expect($mock->world('opsgenie'), since => $since);
my $gh_e = github_expect($mock->world('github'), 'acme/shop', since => $since);

ok(wait_for(sub {
			$node->safe_psql('postgres',
				"SELECT count(DISTINCT source_id) FROM engineering.sync_runs WHERE started_by = 'worker' AND status = 'ok'
				 AND source_id IS NOT NULL") eq '3'
			  && $node->safe_psql('postgres', 'SELECT count(*) FROM engineering.sync_tasks') eq '0';
		}, 120),
	'the worker synced the three sources by itself');
is($node->safe_psql('postgres', "SELECT count(*) FROM engineering.sync_runs WHERE started_by = 'sync'"),
	'0', 'nobody called sync()');
is($node->safe_psql('postgres', "SELECT count(*) FROM engineering.sync_runs WHERE status <> 'ok' AND status <> 'running'"),
	'0', 'no run failed');

is_deeply(incident_rows($node, 'pd', 1), $pd_e, 'PagerDuty incidents as the API holds them (times written at -07:00)');
is_deeply(incident_rows($node, 'og'), $og_e, 'Opsgenie incidents as the API holds them');
is_deeply(db_map($node,
		"SELECT external_id, status FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = 'gh'"),
	{ map { $_ => $gh_e->{runs}{$_}{status} } keys %{ $gh_e->{runs} } },
	'GitHub runs as the API holds them, in the same database');
is($node->safe_psql('postgres',
		"SELECT string_agg(DISTINCT s.kind, ',' ORDER BY s.kind) FROM engineering.incidents i JOIN engineering.sources s ON s.id = i.source_id"),
	'opsgenie,pagerduty', 'incidents come from both incident tools');

# things move on; the worker notices on its next polls
my $now = time;
my ($pd_open) = grep { $_->{status} eq 'triggered' } @{ $mock->world('pagerduty')->{incidents} };
my ($og_open) = grep { $_->{status} eq 'open' } @{ $mock->world('opsgenie')->{incidents} };
$mock->mutate('pagerduty', op => 'acknowledge', id => $pd_open->{id}, at => iso_z($now - 20), agent => 'Barbara');
$mock->mutate('pagerduty', op => 'resolve', id => $pd_open->{id}, at => iso_z($now - 10));
$mock->mutate('opsgenie', op => 'close', id => $og_open->{id}, at => iso_z($now - 15));
ok(wait_for(sub {
			$node->safe_psql('postgres',
				"SELECT string_agg(status || ':' || coalesce(extract(epoch FROM acknowledged_at)::bigint::text, '-'), ',' ORDER BY external_id)
				 FROM engineering.incidents WHERE external_id IN ('$pd_open->{id}', '$og_open->{id}')")
			  eq join(',', map { $_->[1] } sort { $a->[0] cmp $b->[0] }
				  ([ $pd_open->{id}, 'resolved:' . ($now - 20) ], [ $og_open->{id}, 'resolved:-' ]));
		}, 60),
	'the worker picked up a resolved PagerDuty incident (with its first acknowledgement) and a closed Opsgenie one');
is_deeply(incident_rows($node, 'pd', 1), pagerduty_expect($mock->world('pagerduty'), since => $since),
	'PagerDuty incidents still match the API');
is_deeply(incident_rows($node, 'og'), opsgenie_expect($mock->world('opsgenie'), since => $since),
	'Opsgenie incidents still match the API');

$node->stop;
my $server_log = substr(slurp_file($node->logfile), $log_start);
like($server_log, qr/engineering_metrics: source "pd" synced/, 'the worker logged its syncs (debug1)');
unlike($server_log, qr/worker-token|worker-key/, 'no token in what the server logged since');
$mock->stop;
done_testing();
