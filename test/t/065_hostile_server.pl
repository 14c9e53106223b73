# A hostile or broken server never wedges a source: a \u0000 escape in a
# kept field, the same item twice on a page, a Link rel="next" pointing at
# the page itself, a body that drips below the transfer timeout, a megabyte
# of headers, JSON nested 100,000 deep, a number like 1e400 where a time
# belongs, timestamps without a zone or out of range, a ten-year
# Retry-After, and 429s on every request for more than an hour of
# simulated time.  Each case ends with the server up, another source
# (another vendor on the same mock) syncing, nothing of the bad page
# stored, and a sync_runs row saying what happened; then the fault goes and
# the next sync recovers everything.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);

my $mock = EMMock->new(generate => [
		'github:runs=150,deployments=2,pulls=2,seed=5,span_days=5,rerun_ratio=0',
		'gitlab:pipelines=20,deployments=2,merge_requests=2,seed=6,span_days=5,running=0,deploys_running=0' ]);
my $world = $mock->world('github');
my @runs = sort {
	iso_epoch($b->{created_at}) <=> iso_epoch($a->{created_at}) || $b->{id} <=> $a->{id}
} @{ $world->{repos}{'acme/shop'}{runs} };
my @page1 = sort map { "$_->{id}/1" } @runs[ 0 .. 99 ];
my @all = sort map { "$_->{id}/1" } @runs;

my $node = PostgreSQL::Test::Cluster->new('hostile');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
# short timeouts under test keep the slow cases quick
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
	ALTER DATABASE postgres SET engineering_metrics.http_timeout = '1s';
});
my $url = $mock->url('github');
my $page2 = { vendor => 'github', path => 'actions/runs$', query => '(^|&)page=2(&|$)' };

$node->safe_psql('postgres',
	"SELECT engineering.add_source('bystander', 'gitlab', '" . $mock->url('gitlab')
	  . "', '{\"project\": \"acme/shop\", \"since\": \"2024-01-01\"}')");

sub runs_of
{
	my ($source) = @_;
	return [ map { $_->[0] } @{ db_rows($node,
		"SELECT external_id FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = '$source' ORDER BY 1") } ];
}

sub sync_row
{
	my ($source) = @_;
	return @{ db_rows($node,
		  "SELECT status, coalesce(error, ''), extract(epoch FROM next_sync_at - finished_at)::int
		   FROM engineering.sync('$source')")->[0] };
}

my $n = 0;
sub scenario
{
	my (%s) = @_;
	my $source = 'src' . ++$n;
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$source', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}')");
	$mock->clear_faults;
	$mock->fault(match => $s{match} // $page2, %{ $s{fault} });
	$mock->clear_requests;

	my ($status, $error, $delay) = sync_row($source);
	is($status, $s{status} // 'error', "$s{name}: status");
	like($error, $s{error}, "$s{name}: sync_runs says what happened") if $s{error};
	$s{check}->($source, $error, $delay) if $s{check};
	is_deeply(runs_of($source), $s{stored} // \@page1, "$s{name}: nothing of the bad page is stored");
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "$s{name}: the server is up");
	is((sync_row('bystander'))[0], 'ok', "$s{name}: another source keeps syncing");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM engineering.sync_runs WHERE status = 'running'"), '0',
		"$s{name}: no run is left running");

	$mock->clear_faults;
	($status) = sync_row($source);
	is($status, 'ok', "$s{name}: once the server behaves, the next sync recovers");
	is_deeply(runs_of($source), \@all, "$s{name}: and stores everything");
	return $source;
}

# \u0000 in a kept field: jsonb refuses it, so it becomes U+FFFD
scenario(name => 'a \u0000 escape in a run name',
	fault => { kind => 'rewrite', pattern => '"name":"([^"]*)"', replacement => '"name":"\1\\\\u0000tail"' },
	status => 'ok', stored => \@all,
	check => sub {
		is($node->safe_psql('postgres',
				"SELECT count(*) FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
				 WHERE s.name = '$_[0]' AND p.pipeline LIKE '%' || U&'\\FFFD' || 'tail'"),
			'1', 'the character is stored as U+FFFD, the rest of the name kept');
	});
# an escaped backslash before "u0000" is plain text and stays so
scenario(name => 'an escaped backslash before u0000',
	fault => { kind => 'rewrite', pattern => '"name":"([^"]*)"', replacement => '"name":"\1\\\\\\\\u0000"' },
	status => 'ok', stored => \@all,
	check => sub {
		is($node->safe_psql('postgres',
				"SELECT count(*) FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
				 WHERE s.name = '$_[0]' AND p.pipeline LIKE E'%\\\\\\\\u0000'"),
			'1', 'stored as written');
	});

# the same run twice on one page: written once
scenario(name => 'the same item twice on a page',
	fault => { kind => 'duplicate', key => 'workflow_runs' },
	status => 'ok', stored => \@all);

# Link rel="next" at the page itself: one request, then an error naming the loop
scenario(name => 'a next link pointing at the page itself',
	fault => { kind => 'self_link', count => -1 },
	error => qr/^ingest failed \(GET .*page=2.*\): pagination loop: the next page of stream "runs" is the page itself/,
	check => sub {
		is(scalar(grep { $_->{path} =~ /actions\/runs$/ && $_->{query} =~ /(^|&)page=2(&|$)/ }
				  @{ $mock->requests(vendor => 'github') }),
			1, 'the page was requested once: the run stopped at the first repetition');
	});

# a body that drips one byte at a time: the transfer deadline (1 s under
# test) ends it, not the idle timeout that each byte would reset
scenario(name => 'a body that drips slowly',
	fault => { kind => 'drip', interval => 0.02 },
	error => qr/^timeout: .*\(GET http:.*page=2/);

scenario(name => 'a megabyte of headers',
	fault => { kind => 'big_headers', size => 1_048_576 },
	error => qr/^response too large: response headers exceed 256 kB \(GET .*page=2/);

scenario(name => 'JSON nested 100,000 deep',
	fault => { kind => 'deep', depth => 100_000 },
	error => qr/^ingest failed \(GET .*page=2.*\): stack depth limit exceeded/);

scenario(name => 'a number like 1e400 where a time belongs',
	fault => { kind => 'rewrite', pattern => '"created_at":"[^"]*"', replacement => '"created_at":1e400' },
	error => qr/^ingest failed \(GET .*page=2.*\): epoch milliseconds out of range/);

scenario(name => 'a timestamp without a zone',
	fault => { kind => 'rewrite', pattern => '"created_at":"([^"]*)Z"', replacement => '"created_at":"\1"' },
	error => qr/^ingest failed \(GET .*page=2.*\): invalid vendor timestamp: "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d"/);

scenario(name => 'a timestamp out of range',
	fault => { kind => 'rewrite', pattern => '"created_at":"[^"]*"', replacement => '"created_at":"0000-12-31T23:59:59Z"' },
	error => qr/^ingest failed \(GET .*page=2.*\): invalid vendor timestamp: "0000-12-31T23:59:59Z"/);

# a ten-year Retry-After is capped at a day
scenario(name => 'Retry-After of ten years',
	fault => { kind => 'status', status => 429, body => 'slow down', headers => { 'Retry-After' => '315360000' }, bare => 1 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[2], '==', 86400, 'the wait is capped at a day') });

# 429 on every request of one source for more than an hour of simulated
# time (sync() does not wait for next_sync_at): the source backs off,
# doubling from a minute up to the hour cap, is never counted as an error,
# and the other source syncs every time
$node->safe_psql('postgres',
	"SELECT engineering.add_source('throttled', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}')");
$mock->clear_faults;
$mock->fault(match => { vendor => 'github' }, kind => 'status', status => 429, body => 'Too Many Requests', bare => 1,
	count => -1);
my (@delays, @bystander);
my $simulated = 0;
while ($simulated < 3600)
{
	my ($status, $error, $delay) = sync_row('throttled');
	last if $status ne 'rate_limited';
	push @delays, $delay;
	$simulated += $delay;
	push @bystander, (sync_row('bystander'))[0];
}
is_deeply(\@delays, [ 60, 120, 240, 480, 960, 1920 ], 'the throttled source backed off 60 s doubling')
  or diag explain \@delays;
my (undef, undef, $capped) = sync_row('throttled');
is($capped, 3600, 'then waits the hour cap');
is($node->safe_psql('postgres', "SELECT consecutive_failures FROM engineering.sources WHERE name = 'throttled'"),
	'7', 'seven consecutive rate limits');
is($node->safe_psql('postgres',
		"SELECT count(*) FILTER (WHERE status = 'error'), count(*) FILTER (WHERE status = 'rate_limited')
		 FROM engineering.sync_runs r JOIN engineering.sources s ON s.id = r.source_id WHERE s.name = 'throttled'"),
	'0|7', 'every run says rate_limited, none error');
is_deeply(\@bystander, [ ('ok') x 6 ], 'the other source synced every time');
is_deeply(runs_of('throttled'), [], 'nothing was stored for the throttled source');
$mock->clear_faults;
is((sync_row('throttled'))[0], 'ok', 'when the limit lifts, the source syncs');
is_deeply(runs_of('throttled'), \@all, 'and stores everything');

$node->stop;
$mock->stop;
done_testing();
