# Remote failures become sync_runs rows, never partial data: a fault on the
# second page of runs (5xx, a reply slower than the timeout, truncated,
# malformed, non-UTF-8 or oversized bodies, a wrong content type, a dropped
# connection, redirects, 401/403/404, rate limits) leaves exactly the first
# page, an error or rate_limited row with a redacted message and a backoff;
# the next sync recovers everything.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);

my $mock = EMMock->new(generate => [
		'github:runs=150,deployments=2,pulls=2,seed=5,span_days=5,rerun_ratio=0' ]);
my $world = $mock->world('github');
my @runs = sort {
	iso_epoch($b->{created_at}) <=> iso_epoch($a->{created_at}) || $b->{id} <=> $a->{id}
} @{ $world->{repos}{'acme/shop'}{runs} };
my @page1 = sort map { "$_->{id}/1" } @runs[ 0 .. 99 ];
my @all = sort map { "$_->{id}/1" } @runs;

my $node = PostgreSQL::Test::Cluster->new('sync_errors');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
	ALTER DATABASE postgres SET engineering_metrics.http_timeout = '1s';
});
my $url = $mock->url('github');
my $page2 = { vendor => 'github', path => 'actions/runs$', query => '(^|&)page=2(&|$)' };

sub runs_of
{
	my ($source) = @_;
	return [ map { $_->[0] } @{ db_rows($node,
		"SELECT external_id FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = '$source' ORDER BY 1") } ];
}

sub sync_row
{
	my ($source, $settings) = @_;
	my $row = db_rows($node, ($settings // '') .
		  "SELECT status, coalesce(error, ''), extract(epoch FROM next_sync_at - finished_at)::int
		   FROM engineering.sync('$source')")->[0];
	return @$row;
}

# One scenario: a fresh source, a fault, one sync that must fail in the
# expected way with only the first page stored, then a sync that recovers.
my $n = 0;
sub scenario
{
	my (%s) = @_;
	my $source = 'src' . ++$n;
	my $token = defined $s{token} ? ", token => '$s{token}'" : '';
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$source', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}' $token)");
	$mock->clear_faults;
	$mock->fault(match => $page2, %{ $s{fault} }) if $s{fault};

	my ($status, $error, $delay) = sync_row($source, $s{settings});
	is($status, $s{status} // 'error', "$s{name}: status");
	like($error, $s{error}, "$s{name}: the error says what happened") if $s{error};
	$s{check}->($error, $delay) if $s{check};
	is_deeply(runs_of($source), $s{stored} // \@page1, "$s{name}: the failed page left nothing behind");
	is($node->safe_psql('postgres',
			"SELECT last_error IS NOT NULL, consecutive_failures FROM engineering.sources WHERE name = '$source'"),
		($status eq 'ok' ? 'f|0' : 't|1'), "$s{name}: the source records the failure");

	$mock->clear_faults;
	$s{before_recovery}->($source) if $s{before_recovery};
	($status) = sync_row($source);
	is($status, 'ok', "$s{name}: the next sync recovers");
	is_deeply(runs_of($source), \@all, "$s{name}: and stores everything");
	is($node->safe_psql('postgres',
			"SELECT last_error IS NULL, consecutive_failures FROM engineering.sources WHERE name = '$source'"),
		't|0', "$s{name}: the failure is forgotten after a success");
	return $source;
}

scenario(name => '500s beyond the quick retries',
	fault => { kind => 'status', status => 500, count => 3 },
	settings => 'SET engineering_metrics.http_retries = 2;',
	error => qr/^HTTP 500 \(GET http:.*page=2.*\): .*Server Error/,
	check => sub { cmp_ok($_[1], '==', 30, '500s: the first error backs off 30 s') });
scenario(name => 'a 500 that a retry gets past',
	fault => { kind => 'status', status => 502, count => 1 },
	settings => 'SET engineering_metrics.http_retries = 1;',
	status => 'ok', stored => \@all);
scenario(name => 'a reply slower than the timeout',
	fault => { kind => 'slow', delay => 3 },
	error => qr/^timeout: .*\(GET http:.*page=2/);
scenario(name => 'a body cut short by a closed connection',
	fault => { kind => 'truncate', mode => 'close' },
	error => qr/^transport error: /);
scenario(name => 'a truncated JSON body',
	fault => { kind => 'truncate', mode => 'json' },
	error => qr/^bad response body \(GET .*\): invalid input syntax for type json/);
scenario(name => 'a malformed body',
	fault => { kind => 'malformed' },
	error => qr/^bad response body .*invalid input syntax for type json/);
scenario(name => 'invalid UTF-8',
	fault => { kind => 'invalid_utf8' },
	error => qr/^response body is not valid UTF-8/);
scenario(name => 'an HTML page instead of JSON',
	fault => { kind => 'content_type', content_type => 'text/html; charset=utf-8' },
	error => qr/^unexpected content type "text\/html; charset=utf-8", expected JSON/);
scenario(name => 'a body over max_response_size',
	fault => { kind => 'oversized', size => 3_000_000 },
	settings => q{SET engineering_metrics.max_response_size = '2MB';},
	error => qr/^response too large: response body exceeds engineering_metrics.max_response_size/);
# (curl itself retries once when a reused connection turns out closed)
scenario(name => 'a dropped connection',
	fault => { kind => 'drop', count => 5 },
	error => qr/^transport error: /);
my $elsewhere = $mock->base_url =~ s{127\.0\.0\.1}{127.0.0.2}r;
scenario(name => 'a redirect to another host',
	fault => { kind => 'redirect', status => 302, location => "$elsewhere/github/repos/acme/shop/actions/runs?page=2" },
	error => qr/^redirect refused: redirect to a different scheme, host or port refused/);
scenario(name => 'a redirect on the same host',
	fault => { kind => 'redirect', status => 301,
		location => "$url/repos/acme/shop/actions/runs?per_page=100&page=2&moved=1" },
	status => 'ok', stored => \@all);
ok((grep { $_->{query} =~ /moved=1/ && $_->{status} == 200 } @{ $mock->requests(vendor => 'github') }),
	'the same-host redirect was followed');
scenario(name => 'a 404',
	fault => { kind => 'status', status => 404, body => { message => 'Not Found' } },
	error => qr/^HTTP 404 \(GET .*\): \{"message":"Not Found"\}/);
scenario(name => 'a plain 403',
	fault => { kind => 'status', status => 403, body => { message => 'Resource not accessible by integration' } },
	error => qr/^HTTP 403 .*Resource not accessible/);

# Rate limits: the source waits for the reset instead of counting an
# error.  Where the wait depends on the clock (an epoch reset), the reset is
# fixed by the test and the wait is bounded by clock readings taken before
# and after the sync, so no scheduling delay can break the assertion.
my $reset_at = time + 600;
my $t0 = time;
my $t1;
scenario(name => 'a primary rate limit (403, remaining 0)',
	fault => { kind => 'rate_limit', status => 403, reset_at => $reset_at },
	status => 'rate_limited',
	error => qr/^rate limited: HTTP 403 \(GET .*\); retrying in \d+ s$/,
	check => sub {
		$t1 = time;
		ok($_[1] >= $reset_at - $t1 - 1 && $_[1] <= $reset_at - $t0 + 1,
			"primary rate limit: next try at the reset ($_[1] s, reset ${\($reset_at - $t1)}..${\($reset_at - $t0)} s away)");
	});
scenario(name => 'a 429 with Retry-After',
	fault => { kind => 'rate_limit', status => 429, reset_in => 600, retry_after => 7 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[1], '==', 7, 'Retry-After wins over the reset') });
# a secondary limit leaves quota: its x-ratelimit-reset is the primary
# window's (here this very second) and must not be taken
scenario(name => 'a secondary rate limit',
	fault => { kind => 'rate_limit', status => 403, secondary => 1, reset_in => 0 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[1], '==', 60, 'a secondary limit with quota left: 60 s for a first failure') });
scenario(name => 'a secondary rate limit an hour before the primary reset',
	fault => { kind => 'rate_limit', status => 403, secondary => 1, reset_in => 3600 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[1], '==', 60, 'a secondary limit ignores the primary window\'s reset') });

# Authentication: a wrong token is an error on the first request (nothing
# stored), the right one works.  The message never repeats a token.
$mock->load_world(github => { %$world, token => 'right-token-0123456789' });
scenario(name => 'a wrong token',
	token => 'wrong-token-0123456789',
	status => 'error',
	error => qr/^HTTP 401 \(GET .*\): \{"message":"Bad credentials"/,
	stored => [],
	before_recovery => sub {
		$node->safe_psql('postgres', "SELECT engineering.set_source_token('$_[0]', 'right-token-0123456789')");
	});
my $log = $mock->requests(vendor => 'github');
ok((grep { !$_->{auth_ok} && $_->{status} == 401 } @$log) && (grep { $_->{auth_ok} } @$log),
	'the mock saw the wrong token refused and the right one accepted');

$mock->load_world(github => { %$world, token => undef });
my $echo = scenario(name => 'an error page that repeats the request headers',
	token => 'tok-ECHO-5551234567',
	fault => { kind => 'echo_headers' },
	error => qr/^HTTP 500 .*"authorization":"Bearer \*+"/,
	check => sub { unlike($_[0], qr/ECHO-5551234567/, 'the token is masked in the message') });
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error LIKE '%5551234567%'
		 UNION ALL SELECT count(*) FROM engineering.sources WHERE last_error LIKE '%5551234567%'"),
	"0\n0", 'no run row or source keeps the token');

# a source whose task points at another host is refused before any request
$node->safe_psql('postgres', "SELECT engineering.add_source('hijack', 'github', '$url', '{\"repository\": \"acme/shop\"}', token => 'secret-hijack-1')");
$node->safe_psql('postgres',
	"INSERT INTO engineering.sync_tasks (source_id, stream, url) SELECT id, 'runs', '$elsewhere/steal' FROM engineering.sources WHERE name = 'hijack'");
$mock->clear_requests;
my ($status, $error) = sync_row('hijack');
is($status, 'error', 'a task on another origin fails');
like($error, qr/points outside the source's scheme, host and port; refused/, 'and says why');
is(scalar @{ $mock->requests }, 0, 'no request was made');

# errors accumulate: the backoff doubles per consecutive failure
$node->safe_psql('postgres', "DELETE FROM engineering.sync_tasks WHERE url LIKE '%/steal'");
$mock->fault(match => { vendor => 'github' }, kind => 'status', status => 503, count => -1);
my @delays = map { (sync_row('hijack'))[2] } 1 .. 3;
is_deeply(\@delays, [ 60, 120, 240 ], 'consecutive failures back off 60, 120, 240 s (after a first 30 s)');
$mock->clear_faults;

$node->stop;
$mock->stop;
done_testing();
