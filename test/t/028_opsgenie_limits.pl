# The Opsgenie connector at the API's limits: rate limits as Opsgenie
# signals them (429 with X-RateLimit-Period-In-Sec and no reset time: the
# source waits one period and resumes where it stopped), 5xx, malformed and
# truncated bodies (an error row, the failing page leaves nothing), a
# refused query (422), a paging.next pointing at another host (refused
# before any request), and a wrong key (401, "Could not authenticate").
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);
use EMIncidentTest qw(opsgenie_expect incident_rows);

my $since = iso_epoch('2025-03-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'opsgenie:incidents=640,open=5,seed=51,start=2025-03-01T00:00:00Z,span_days=120,services=2' ]);
my $url = $mock->url('opsgenie');

my $node = PostgreSQL::Test::Cluster->new('opsgenie_limits');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
});

sub add
{
	my ($name, %opt) = @_;
	my $query = $opt{query} // '*';
	my $token = defined $opt{token} ? ", token => '$opt{token}'" : '';
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$name', 'opsgenie', '$url', '{\"query\": \"$query\", \"since\": \"2025-03-01\"}' $token)");
}

sub sync_row
{
	my ($name) = @_;
	return @{ db_rows($node,
		"SELECT status, coalesce(error, ''), extract(epoch FROM next_sync_at - finished_at)::int
		 FROM engineering.sync('$name')")->[0] };
}

sub stored
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.incidents i JOIN engineering.sources s ON s.id = i.source_id WHERE s.name = '$name'");
}

my $e = opsgenie_expect($mock->world('opsgenie'), since => $since);
is(scalar(keys %$e), 640, '640 incidents since 2025-03-01');

# --- rate limits ---------------------------------------------------------------
# 2 requests per 2-second bucket: each sync gets two pages in, then a 429
# carrying only X-RateLimit-Period-In-Sec: 2 (no Retry-After, no reset).
$mock->mutate('opsgenie', op => 'set', key => 'rate_limit', value => { limit => 2, period => 2 });
add('limited');
my @runs;
# bounded by a number of syncs, not by wall time: a slow machine takes
# longer, never fails (waiting for next_sync_at only saves requests; a
# sync made early is one more 429)
for (1 .. 200)
{
	my ($st, $err, $delay) = sync_row('limited');
	push @runs, [ $st, $err, $delay ];
	last if $st ne 'rate_limited';
	my $wait = $node->safe_psql('postgres',
		"SELECT greatest(extract(epoch FROM next_sync_at - clock_timestamp()), 0) FROM engineering.sources WHERE name = 'limited'");
	sleep($wait + 0.05);
}
my @limited = grep { $_->[0] eq 'rate_limited' } @runs;
is($runs[-1][0], 'ok', 'the rate-limited source finished after ' . scalar(@runs) . ' syncs');
ok(@limited >= 2, 'it was rate limited on the way (' . scalar(@limited) . ' times)');
like($limited[0][1], qr{^rate limited: HTTP 429 \(GET http://127\.0\.0\.1:\d+/opsgenie/v1/incidents\?.*\); retrying in 2 s$},
	'the run says it was rate limited');
is_deeply([ map { $_->[2] } @limited ], [ map { 2 } @limited ],
	'each wait was the throttled period (2 s), not the 60 s fallback');
is_deeply(incident_rows($node, 'limited'), $e, 'nothing was lost or doubled across the interruptions');
my $log = $mock->requests(vendor => 'opsgenie');
ok((grep { $_->{status} == 429 } @$log), 'the mock answered 429');
$mock->mutate('opsgenie', op => 'set', key => 'rate_limit', value => undef);

# --- failures: an error row, the failing page leaves nothing ---------------------
my $second_page = { vendor => 'opsgenie', path => '/v1/incidents$', query => '(^|&)offset=100(&|$)' };
my $n = 0;
for my $case (
	[ '5xx', { kind => 'status', status => 503, count => -1, body => { message => 'Service Unavailable', took => 0.0 } },
	  qr/^HTTP 503 \(GET .*offset=100.*\): .*"message":"Service Unavailable"/ ],
	[ 'malformed body', { kind => 'malformed' }, qr/^bad response body \(GET .*offset=100.*\): invalid input syntax for type json/ ],
	[ 'truncated body', { kind => 'truncate', mode => 'json' }, qr/^bad response body / ],
	[ 'a body without data', { kind => 'status', status => 200, body => { message => 'ok', took => 0.0 } },
	  qr/^ingest failed \(GET .*offset=100.*\): unexpected Opsgenie response: no data array/ ])
{
	my ($label, $fault, $pattern) = @$case;
	my $name = 'fail' . ++$n;
	add($name);
	$mock->clear_faults;
	$mock->fault(match => $second_page, %$fault);
	my ($st, $err) = sync_row($name);
	is($st, 'error', "$label: an error run");
	like($err, $pattern, "$label: the error says what happened");
	is(stored($name), 100, "$label: exactly the first page is stored, nothing of the failing one");
	$mock->clear_faults;
	($st) = sync_row($name);
	is($st, 'ok', "$label: the next sync recovers");
	is_deeply(incident_rows($node, $name), $e, "$label: and stores everything");
}

# a refused query: Opsgenie's 422 message in the error row
add('badquery', query => 'colour:red');
my ($st, $err) = sync_row('badquery');
is($st, 'error', 'a query Opsgenie refuses is an error');
like($err, qr/^HTTP 422 .*Invalid query: unknown field \[colour\]/, 'with Opsgenie\'s message');

# a paging.next on another host is refused before the key goes there
my $elsewhere = $mock->base_url =~ s{127\.0\.0\.1}{127.0.0.2}r;
add('hijack', token => 'og-secret-key-77');
$mock->fault(match => { vendor => 'opsgenie', path => '/v1/incidents$', query => '(^|&)offset=0(&|$)' },
	kind => 'status', status => 200,
	body => { data => [ { id => 'x1', status => 'open', createdAt => '2026-01-01T00:00:00Z' } ],
		paging => { next => "$elsewhere/opsgenie/v1/incidents?query=*&offset=100" }, took => 0.0 });
$mock->clear_requests;
($st, $err) = sync_row('hijack');
is($st, 'error', 'a paging.next on another origin fails');
like($err, qr/points outside the source's scheme, host and port; refused/, 'and says why');
is(scalar(@{ $mock->requests(vendor => 'opsgenie') }), 1, 'only the first page was requested');
$mock->clear_faults;

# --- authentication ----------------------------------------------------------------
$mock->mutate('opsgenie', op => 'set', key => 'token', value => 'og-right-key-42');
add('auth', token => 'og-wrong-key-41');
($st, $err) = sync_row('auth');
is($st, 'error', 'a wrong key fails');
like($err, qr/^HTTP 401 \(GET .*\): \{.*"message":"Could not authenticate"/, 'with Opsgenie\'s message');
is(stored('auth'), 0, 'nothing stored');
$node->safe_psql('postgres', "SELECT engineering.set_source_token('auth', 'og-right-key-42')");
($st) = sync_row('auth');
is($st, 'ok', 'the right key works');
is_deeply(incident_rows($node, 'auth'), $e, 'and reads everything');

$mock->fault(match => { vendor => 'opsgenie' }, kind => 'echo_headers');
add('echo', token => 'og-right-key-42');
($st, $err) = sync_row('echo');
like($err, qr/"authorization":"GenieKey \*+"/, 'an error page repeating the headers shows the key masked');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error ~ '(right|wrong|secret)-key'"),
	'0', 'no run row keeps a key');
$mock->clear_faults;

$node->stop;
$mock->stop;
done_testing();
