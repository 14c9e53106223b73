# GitLab failures become sync_runs rows, never partial data: a fault on the
# second page of pipelines (or on a pipeline's detail) leaves exactly what
# was committed before it; GitLab's rate limits (429 "Retry later" with
# Retry-After, RateLimit-Reset as epoch seconds, or no header at all) and a
# throttling proxy's 503 with Retry-After make the source wait instead of
# failing; 401 and 403 are errors that never repeat the token; the next
# sync recovers everything.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);

my $token = 'glpat-Fault-0042-token';
my $mock = EMMock->new(generate => [
		"gitlab:pipelines=150,deployments=4,merge_requests=3,seed=9,span_days=10,token=$token" ]);
my $world = $mock->world('gitlab');
my @pipelines = @{ $world->{projects}{'acme/shop'}{pipelines} };
# GitLab's order for order_by=updated_at&sort=asc: oldest update first, newest id first among equals
my @by_update = sort { iso_epoch($a->{updated_at}) <=> iso_epoch($b->{updated_at}) || $b->{id} <=> $a->{id} } @pipelines;
my @page1 = sort map { $_->{id} } @by_update[ 0 .. 99 ];
my @all = sort map { $_->{id} } @pipelines;

my $node = PostgreSQL::Test::Cluster->new('gitlab_faults');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
});
my $url = $mock->url('gitlab');
# the second request for a list of pipelines
my $page2 = { match => { vendor => 'gitlab', path => '/pipelines$' }, skip => 1 };

sub pipelines_of
{
	my ($source) = @_;
	return [ sort map { $_->[0] } @{ db_rows($node,
		"SELECT external_id FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = '$source'") } ];
}

sub sync_row
{
	my ($source, $settings) = @_;
	return @{ db_rows($node, ($settings // '') .
		  "SELECT status, coalesce(error, ''), extract(epoch FROM next_sync_at - finished_at)::int
		   FROM engineering.sync('$source')")->[0] };
}

my $n = 0;
sub scenario
{
	my (%s) = @_;
	my $source = 'gl' . ++$n;
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$source', 'gitlab', '$url', '{\"project\": \"acme/shop\", \"since\": \"2024-01-01\"}', '"
		  . ($s{token} // $token) . "')");
	$mock->clear_faults;
	$mock->fault(%{ $s{where} // $page2 }, %{ $s{fault} }) if $s{fault};

	my ($status, $error, $delay) = sync_row($source, $s{settings});
	is($status, $s{status} // 'error', "$s{name}: status");
	like($error, $s{error}, "$s{name}: the error says what happened") if $s{error};
	unlike($error, qr/\Q$token\E|Fault-0042/, "$s{name}: the error does not repeat the token");
	$s{check}->($error, $delay) if $s{check};
	my $stored = pipelines_of($source);
	if (ref $s{stored} eq 'CODE') { $s{stored}->($stored); }
	else { is_deeply($stored, $s{stored} // \@page1, "$s{name}: exactly what was committed before the fault is stored"); }

	$mock->clear_faults;
	$s{before_recovery}->($source) if $s{before_recovery};
	($status) = sync_row($source);
	is($status, 'ok', "$s{name}: the next sync recovers");
	is_deeply(pipelines_of($source), \@all, "$s{name}: and stores every pipeline");
	is($node->safe_psql('postgres',
			"SELECT count(*) FROM engineering.sync_tasks t JOIN engineering.sources s ON s.id = t.source_id WHERE s.name = '$source'"),
		'0', "$s{name}: nothing is left in the queue");
	return $source;
}

scenario(name => '500s beyond the quick retries',
	fault => { kind => 'status', status => 500, count => 3, body => { message => '500 Internal Server Error' } },
	settings => 'SET engineering_metrics.http_retries = 2;',
	error => qr/^HTTP 500 \(GET http:.*\/pipelines\?.*\): \{"message":"500 Internal Server Error"\}/,
	check => sub { is($_[1], 30, '500s: the first error backs off 30 s') });
scenario(name => 'a 502 that a retry gets past',
	fault => { kind => 'status', status => 502, count => 1, body => 'Bad Gateway' },
	settings => 'SET engineering_metrics.http_retries = 1;',
	status => 'ok', stored => \@all);
scenario(name => 'a malformed page',
	fault => { kind => 'malformed' },
	error => qr/^bad response body \(GET .*\/pipelines\?.*stream pipelines\): invalid input syntax for type json/);
scenario(name => 'a truncated page',
	fault => { kind => 'truncate', mode => 'json' },
	error => qr/^bad response body .*invalid input syntax for type json/);
scenario(name => 'a page that is not a list',
	fault => { kind => 'status', status => 200, body => { message => 'unexpected' } },
	error => qr/^ingest failed \(GET .*, stream pipelines\): unexpected GitLab response: expected a JSON array of pipelines/);
scenario(name => 'a malformed pipeline detail',
	where => { match => { vendor => 'gitlab', path => '/pipelines/\d+$' }, skip => 10 },
	fault => { kind => 'malformed' },
	error => qr/^bad response body \(GET .*\/pipelines\/\d+, stream pipeline\)/,
	stored => sub { is(scalar @{ $_[0] }, 10, 'a malformed pipeline detail: the ten details before it are stored') });

# rate limits: the source waits instead of counting an error
scenario(name => 'a 429 with Retry-After',
	fault => { kind => 'rate_limit', style => 'gitlab', status => 429, reset_in => 600, retry_after => 2 },
	status => 'rate_limited',
	error => qr/^rate limited: HTTP 429 \(GET .*\); retrying in \d+ s$/,
	check => sub { cmp_ok($_[1], '==', 2, 'Retry-After wins over RateLimit-Reset') });
# an epoch reset fixed by the test; the wait is bounded by clock readings
# taken around the sync, so no scheduling delay can break it
my $reset_at = time + 600;
my $t0 = time;
scenario(name => 'a 429 with RateLimit-Reset only',
	fault => { kind => 'rate_limit', style => 'gitlab', status => 429, reset_at => $reset_at },
	status => 'rate_limited',
	check => sub {
		my $t1 = time;
		ok($_[1] >= $reset_at - $t1 - 1 && $_[1] <= $reset_at - $t0 + 1,
			"RateLimit-Reset is read as epoch seconds ($_[1] s)");
	});
scenario(name => 'a 429 without any header',
	fault => { kind => 'status', status => 429, body => "Retry later\n", bare => 1 },
	status => 'rate_limited',
	check => sub { is($_[1], 60, 'no header: the fallback waits 60 s') });
scenario(name => 'a throttling proxy: 503 with Retry-After',
	fault => { kind => 'status', status => 503, body => 'Service Unavailable', headers => { 'Retry-After' => '9' }, bare => 1 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[1], '==', 9, '503 with Retry-After waits as told') });
scenario(name => 'a 503 without Retry-After',
	fault => { kind => 'status', status => 503, body => 'Service Unavailable', bare => 1 },
	error => qr/^HTTP 503 .*Service Unavailable/);
scenario(name => 'a 403',
	fault => { kind => 'status', status => 403, body => { message => '403 Forbidden' } },
	error => qr/^HTTP 403 .*403 Forbidden/);

# a wrong token: refused on the first request, nothing stored
scenario(name => 'a wrong token',
	token => 'glpat-Wrong-0000-token',
	error => qr/^HTTP 401 \(GET .*\): \{"message":"401 Unauthorized"\}$/,
	stored => [],
	before_recovery => sub { $node->safe_psql('postgres', "SELECT engineering.set_source_token('$_[0]', '$token')"); });
my $log = $mock->requests(vendor => 'gitlab');
ok((grep { !$_->{auth_ok} && $_->{status} == 401 } @$log), 'the mock refused the wrong token');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error LIKE '%Fault-0042%' OR error LIKE '%Wrong-0000%'"),
	'0', 'no run row keeps a token');

$node->stop;
$mock->stop;
done_testing();
