# Remote faults while the background worker syncs (011 proves the same
# faults against engineering.sync(); here the worker meets them on its own,
# with a transaction per page): 500, 502 and 503 beyond the quick retries, a
# reply that hangs past the timeout, a body over max_response_size, invalid
# UTF-8, a wrong content type, truncated JSON, a connection closed mid-body,
# and the mock disappearing altogether.  After each: the server is up, a
# sync_runs row written by the worker says what happened, the worker syncs
# the source again by itself once the fault is gone, and the event tables
# hold exactly what the API holds (nothing lost, nothing twice), the other
# sources included.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch github_expect check_github wait_for);

my $spec = 'github:runs=260,deployments=4,pulls=4,seed=62,span_days=20,rerun_ratio=0.05';
my $mock = EMMock->new(generate => [$spec]);
my $port = ($mock->base_url =~ /:(\d+)$/)[0];
my $since = iso_epoch('2024-01-01T00:00:00Z');

my $node = PostgreSQL::Test::Cluster->new('worker_faults');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
engineering_metrics.http_retries = 0
engineering_metrics.http_timeout = '2s'
engineering_metrics.max_response_size = '2MB'
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
my $page2 = { vendor => 'github', path => 'actions/runs$', query => '(^|&)page=2(&|$)' };

sub sql { return $node->safe_psql('postgres', $_[0]); }

my %checked;    # source name => id, re-checked after every later scenario

sub scenario
{
	my (%s) = @_;
	my $name = $s{name};
	$mock->clear_faults;
	$mock->fault(match => $page2, count => -1, %{ $s{fault} }) if $s{fault};
	sql("SELECT engineering.add_source('$name', 'github', '" . $mock->url('github') . "',
		  '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}', poll_interval => '1 hour')");
	my $sid = sql("SELECT id FROM engineering.sources WHERE name = '$name'");

	$s{during}->() if $s{during};
	ok($node->poll_query_until('postgres',
			"SELECT count(*) > 0 FROM engineering.sync_runs WHERE source_id = $sid AND status = 'error'"),
		"$name: the worker recorded a failed run");
	my ($by, $error) = split /\|/, sql("SELECT started_by, error FROM engineering.sync_runs
		WHERE source_id = $sid AND status = 'error' ORDER BY id LIMIT 1"), 2;
	is($by, 'worker', "$name: written by the worker");
	like($error, $s{error}, "$name: sync_runs says what happened");
	is(sql('SELECT 1'), '1', "$name: the server is up");
	cmp_ok(sql("SELECT count(*) FROM engineering.pipeline_runs WHERE source_id = $sid"), '<',
		scalar(keys %{ github_expect($mock->world('github'), 'acme/shop', since => $since)->{runs} }),
		"$name: the backfill stopped at the fault") unless $s{mock_gone};

	# the fault goes away; the source is due again at once instead of after
	# its backoff, and the worker finishes the backfill by itself
	$s{after}->() if $s{after};
	$mock->clear_faults;
	sql("SELECT engineering.alter_source('$name', enabled => true)");
	ok($node->poll_query_until('postgres',
			"SELECT pending_tasks = 0 AND last_status = 'ok' FROM engineering.source_status WHERE id = $sid"),
		"$name: the worker synced the source again");
	is(sql("SELECT count(*) FROM engineering.sync_runs WHERE source_id = $sid AND started_by <> 'worker'"),
		'0', "$name: every run was the worker's");
	is(sql("SELECT count(*) FROM engineering.sync_runs WHERE status = 'running'"), '0',
		"$name: no run is left running");
	my $e = github_expect($mock->world('github'), 'acme/shop', since => $since);
	check_github($node, $sid, $e, $name);
	$checked{$name} = $sid;
	return;
}

scenario(name => 'http500', fault => { kind => 'status', status => 500 },
	error => qr/^HTTP 500 \(GET http:.*page=2.*\): .*Server Error/);
scenario(name => 'http502', fault => { kind => 'status', status => 502, body => 'Bad Gateway', bare => 1 },
	error => qr/^HTTP 502 \(GET .*\): Bad Gateway/);
scenario(name => 'http503', fault => { kind => 'status', status => 503, body => { message => 'Service Unavailable' } },
	error => qr/^HTTP 503 \(GET .*\): .*Service Unavailable/);
scenario(name => 'hang', fault => { kind => 'slow', delay => 6 },
	error => qr/^timeout: .*\(GET http:.*page=2/);
scenario(name => 'oversized', fault => { kind => 'oversized', size => 3_000_000 },
	error => qr/^response too large: response body exceeds engineering_metrics\.max_response_size/);
scenario(name => 'utf8', fault => { kind => 'invalid_utf8' },
	error => qr/^response body is not valid UTF-8 \(GET .*page=2/);
scenario(name => 'html', fault => { kind => 'content_type', content_type => 'text/html' },
	error => qr/^unexpected content type "text\/html", expected JSON/);
scenario(name => 'truncated', fault => { kind => 'truncate', mode => 'json' },
	error => qr/^bad response body \(GET .*\): invalid input syntax for type json/);
scenario(name => 'cut', fault => { kind => 'truncate', mode => 'close' },
	error => qr/^transport error: /);

# The mock disappears: every page slows down so that the worker is caught
# mid-backfill, then the process is killed; connections are refused until a
# new mock (same world, same port) comes up.
scenario(name => 'gone', mock_gone => 1,
	fault => { kind => 'slow', delay => 0.3, match => { vendor => 'github' } },
	during => sub {
		ok(wait_for(sub {
			sql("SELECT count(*) FROM engineering.pipeline_runs p JOIN engineering.sources s
			   ON s.id = p.source_id WHERE s.name = 'gone'") > 0 }, 60),
			'gone: the worker is in the middle of the backfill');
		$mock->stop;
	},
	after => sub { $mock = EMMock->new(generate => [$spec], port => $port); },
	error => qr/^transport error: .*(Failed to connect|Connection refused|Could not connect|Connection reset)/i);

# nothing that happened to one source disturbed the sources synced before
my $e = github_expect($mock->world('github'), 'acme/shop', since => $since);
check_github($node, $checked{$_}, $e, "$_, at the end") for qw(http500 hang utf8);
is(sql("SELECT count(DISTINCT source_id) FROM engineering.sync_runs WHERE status = 'error'"),
	scalar(keys %checked), 'each source recorded its fault');

$node->stop;
$mock->stop;
done_testing();
