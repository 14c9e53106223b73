# The PagerDuty connector at the API's limits: more than 10,000 incidents in
# one window (offset + limit must stay <= 10,000: the window is continued
# from the newest incident instead), rate limits (429 with ratelimit-reset:
# the source waits for the reset and resumes where it stopped; a 429
# without headers falls back to 60 s), 5xx, malformed and truncated bodies
# (an error row, the failing page leaves nothing), a wrong token (401) and
# an error page repeating the request headers (the token is masked).
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(sleep time);
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);
use EMIncidentTest qw(pagerduty_expect incident_rows);

my $since = iso_epoch('2025-05-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'pagerduty:incidents=150,burst=10100,open=4,seed=31,start=2025-06-01T00:00:00Z,span_days=60,services=2' ]);
my $url = $mock->url('pagerduty');

my $node = PostgreSQL::Test::Cluster->new('pagerduty_limits');
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
	my $config = $opt{config} // '{"since": "2025-05-01", "log_entries": false}';
	my $token = defined $opt{token} ? ", token => '$opt{token}'" : '';
	$node->safe_psql('postgres', "SELECT engineering.add_source('$name', 'pagerduty', '$url', '$config' $token)");
}

sub sync_row
{
	my ($name) = @_;
	return @{ db_rows($node,
		"SELECT status, coalesce(error, ''), extract(epoch FROM next_sync_at - finished_at)::int, items_upserted
		 FROM engineering.sync('$name')")->[0] };
}

sub stored
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.incidents i JOIN engineering.sources s ON s.id = i.source_id WHERE s.name = '$name'");
}

# --- more than 10,000 incidents in one window ------------------------------------
add('big');
my ($status, $error) = sync_row('big');
is($status, 'ok', 'a window with 10,250 incidents synced');
my $world = $mock->world('pagerduty');
is_deeply(incident_rows($node, 'big', 1), pagerduty_expect($world, since => $since, log_entries => 0),
	'every incident is stored once, as the API says');
my $log = $mock->requests(vendor => 'pagerduty');
my @lists = grep { $_->{path} eq '/pagerduty/incidents' } @$log;
is(scalar(grep { $_->{status} != 200 } @$log), 0, 'no request was refused (no offset + limit > 10,000)');
my ($deepest) = sort { $b <=> $a } map { /(?:^|&)offset=(\d+)/ ? $1 : 0 } map { $_->{query} } @lists;
is($deepest, 9900, 'paging went down to offset 9,900 and no further');
my @rewindows = grep {
	$_->{query} =~ /(?:^|&)offset=0(?:&|$)/ && $_->{query} =~ /since=2025-07-01T/
} @lists;
is(scalar(@rewindows), 1, 'then one window continued from the newest incident seen (mid-July, in the burst)');
cmp_ok(scalar(@lists), '<=', 115, 'about one request per 100 incidents (' . scalar(@lists) . ')');

# --- rate limits ---------------------------------------------------------------
# 2 requests per 4-second window; each sync gets two pages in, then a 429
# whose ratelimit-reset says when the window reopens.
$mock->generate('pagerduty', incidents => 450, seed => 32, start => '2025-06-01T00:00:00Z', span_days => 40,
	services => 2);
$mock->mutate('pagerduty', op => 'set', key => 'rate_limit', value => { limit => 2, period => 4 });
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
	# wait for next_sync_at, as the worker would
	my $wait = $node->safe_psql('postgres',
		"SELECT greatest(extract(epoch FROM next_sync_at - clock_timestamp()), 0) FROM engineering.sources WHERE name = 'limited'");
	sleep($wait + 0.05);
}
my @limited = grep { $_->[0] eq 'rate_limited' } @runs;
is($runs[-1][0], 'ok', 'the rate-limited source finished after ' . scalar(@runs) . ' syncs');
ok(@limited >= 2, 'it was rate limited on the way (' . scalar(@limited) . ' times)');
like($limited[0][1], qr{^rate limited: HTTP 429 \(GET http://127\.0\.0\.1:\d+/pagerduty/.*\); retrying in \d+ s$},
	'the run says it was rate limited');
ok(!(grep { $_->[2] < 1 || $_->[2] > 4 } @limited), 'each wait was the ratelimit-reset the API gave (1..4 s)');
is_deeply(incident_rows($node, 'limited', 1), pagerduty_expect($mock->world('pagerduty'), since => $since, log_entries => 0),
	'and nothing was lost or doubled across the interruptions');
ok(!(grep { $_->[0] eq 'error' } @runs), 'no rate limit counted as an error');

# a 429 without its headers (some are sent that way): 60 s, the engine's fallback
$mock->mutate('pagerduty', op => 'set', key => 'rate_limit', value => { limit => 0, period => 60, headers_on_429 => 0 });
add('bare429');
my ($st, $err, $delay) = sync_row('bare429');
is($st, 'rate_limited', 'a 429 without headers is still a rate limit');
is($delay, 60, 'and waits the 60 s fallback');
is(stored('bare429'), 0, 'nothing stored');
$mock->mutate('pagerduty', op => 'set', key => 'rate_limit', value => undef);
my $body429 = $mock->requests(vendor => 'pagerduty');
ok((grep { $_->{status} == 429 } @$body429), 'the mock answered 429');

# --- failures: an error row, the failing page leaves nothing ---------------------
$mock->generate('pagerduty', incidents => 250, open => 5, seed => 33, start => '2025-06-01T00:00:00Z', span_days => 30);
my $e = pagerduty_expect($mock->world('pagerduty'), since => $since, log_entries => 0);
my $second_page = { vendor => 'pagerduty', path => '/incidents$', query => '(^|&)offset=100(&|$)' };
my $n = 0;
for my $case (
	[ '5xx', { kind => 'status', status => 503, count => -1, body => { error => { message => 'Service Unavailable', code => 2999 } } },
	  qr/^HTTP 503 \(GET .*offset=100.*\): \{"error":\{.*"message":"Service Unavailable"/ ],
	[ 'malformed body', { kind => 'malformed' }, qr/^bad response body \(GET .*offset=100.*\): invalid input syntax for type json/ ],
	[ 'truncated body', { kind => 'truncate', mode => 'json' }, qr/^bad response body / ],
	[ 'a 400', { kind => 'status', status => 400, body => { error => { message => 'Invalid Input Provided', code => 2001 } } },
	  qr/^HTTP 400 .*Invalid Input Provided/ ])
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
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM engineering.sync_tasks t JOIN engineering.sources s ON s.id = t.source_id
			 WHERE s.name = '$name' AND t.url LIKE '%offset=100%'"),
		'1', "$label: the failing request stays queued");
	$mock->clear_faults;
	($st) = sync_row($name);
	is($st, 'ok', "$label: the next sync recovers");
	is_deeply(incident_rows($node, $name, 1), $e, "$label: and stores everything");
}

# a 502 that one quick retry gets past is no failure at all
add('retried');
$mock->fault(match => $second_page, kind => 'status', status => 502, count => 1);
($st, $err) = @{ db_rows($node,
	"SET engineering_metrics.http_retries = 1; SELECT status, http_requests - pages FROM engineering.sync('retried')")->[0] };
is("$st|$err", 'ok|1', 'a 502 is retried once (one request more than pages) and the sync succeeds');
is_deeply(incident_rows($node, 'retried', 1), $e, 'with everything stored');
$mock->clear_faults;

# a malformed answer to an incident fetched again: its row keeps its last state
my ($open) = grep { $_->{status} eq 'triggered' } @{ $mock->world('pagerduty')->{incidents} };
$mock->mutate('pagerduty', op => 'resolve', id => $open->{id}, at => '2025-06-20T00:00:00Z');
$mock->fault(match => { vendor => 'pagerduty', path => "/incidents/$open->{id}\$" }, kind => 'malformed');
($st, $err) = sync_row('fail1');
is($st, 'error', 'a malformed incident is an error');
is($node->safe_psql('postgres', "SELECT status FROM engineering.incidents WHERE external_id = '$open->{id}' AND source_id = (SELECT id FROM engineering.sources WHERE name = 'fail1')"),
	'open', 'and the incident keeps its last known state');
$mock->clear_faults;
($st) = sync_row('fail1');
is($node->safe_psql('postgres', "SELECT status FROM engineering.incidents WHERE external_id = '$open->{id}' AND source_id = (SELECT id FROM engineering.sources WHERE name = 'fail1')"),
	'resolved', 'until the next sync reads it');

# --- authentication ----------------------------------------------------------------
$mock->mutate('pagerduty', op => 'set', key => 'token', value => 'pd-right-token-42');
add('auth', token => 'pd-wrong-token-41');
($st, $err) = sync_row('auth');
is($st, 'error', 'a wrong token fails');
like($err, qr/^HTTP 401 \(GET .*\): \{"error":\{"message":"Unauthorized","code":2006\}\}$/,
	'with PagerDuty\'s error object');
is(stored('auth'), 0, 'nothing stored');
$node->safe_psql('postgres', "SELECT engineering.set_source_token('auth', 'pd-right-token-42')");
($st) = sync_row('auth');
is($st, 'ok', 'the right token works');

add('echo', token => 'pd-right-token-42');
$mock->fault(match => { vendor => 'pagerduty' }, kind => 'echo_headers');
($st, $err) = sync_row('echo');
like($err, qr/"authorization":"Token token=\*+"/, 'an error page repeating the headers shows the token masked');
unlike($err, qr/right-token/, 'and never the token itself');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error LIKE '%right-token%' OR error LIKE '%wrong-token%'"),
	'0', 'no run row keeps a token');
$mock->clear_faults;

$node->stop;
$mock->stop;
done_testing();
