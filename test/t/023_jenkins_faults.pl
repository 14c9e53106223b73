# Jenkins failures become sync_runs rows, never partial data: a fault on the
# second {M,N} page of a job leaves exactly the first page; 429s and a
# proxy's 503 with Retry-After make the source wait; Jenkins' HTML error
# pages (401 for a wrong API token, 403 without one, 404 for a job that does
# not exist) are errors whose message names the problem and never the
# token; the next sync recovers everything.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(db_rows);

my ($user, $token) = ('ci-bot', 'Jenkins-Api-Token-7f3e9a');
my $mock = EMMock->new(generate => [ "jenkins:builds=150,deploys=0,seed=8,span_days=10,user=$user,token=$token" ]);
my $world = $mock->world('jenkins');
my @builds = sort { $b->{number} <=> $a->{number} } @{ $world->{jobs}{'shop/build'}{builds} };
my @page1 = sort map { "shop/build#$_->{number}" } @builds[ 0 .. 99 ];
my @all = sort map { "shop/build#$_->{number}" } @builds;

my $node = PostgreSQL::Test::Cluster->new('jenkins_faults');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
});
my $url = $mock->url('jenkins');
my $page2 = { match => { vendor => 'jenkins', path => '/job/shop/job/build/api/json$' }, skip => 1 };

sub builds_of
{
	my ($source) = @_;
	return [ sort map { $_->[0] } @{ db_rows($node,
		"SELECT external_id FROM engineering.pipeline_runs p JOIN engineering.sources s ON s.id = p.source_id
		 WHERE s.name = '$source'") } ];
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
	my $source = 'jk' . ++$n;
	my $job = $s{job} // 'shop/build';
	my $tok = exists $s{token} ? $s{token} : $token;
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$source', 'jenkins', '$url', '{\"job\": \"$job\", \"user\": \"$user\", \"since\": \"2020-01-01\"}'"
		  . (defined $tok ? ", '$tok'" : '') . ')');
	$mock->clear_faults;
	$mock->fault(%$page2, %{ $s{fault} }) if $s{fault};

	my ($status, $error, $delay) = sync_row($source);
	is($status, $s{status} // 'error', "$s{name}: status");
	like($error, $s{error}, "$s{name}: the error says what happened") if $s{error};
	unlike($error, qr/Api-Token-7f3e9a|Wrong-Token/, "$s{name}: the error does not repeat a token");
	$s{check}->($error, $delay) if $s{check};
	is_deeply(builds_of($source), $s{stored} // \@page1, "$s{name}: exactly what was committed before the fault is stored");

	$mock->clear_faults;
	$s{before_recovery}->($source) if $s{before_recovery};
	($status) = sync_row($source);
	is($status, 'ok', "$s{name}: the next sync recovers");
	is_deeply(builds_of($source), \@all, "$s{name}: and stores every build");
	return $source;
}

scenario(name => 'a 500 page',
	fault => { kind => 'status', status => 500, content_type => 'text/html;charset=utf-8',
		body => '<html><body><h2>HTTP ERROR 500 java.lang.NullPointerException</h2></body></html>' },
	error => qr/^HTTP 500 \(GET http:.*\/job\/shop\/job\/build\/api\/json\?tree=.*%7B100%2C200%7D\): .*NullPointerException/);
scenario(name => 'a malformed page',
	fault => { kind => 'malformed' },
	error => qr/^bad response body \(GET .*, stream builds\): invalid input syntax for type json/);
scenario(name => 'a truncated page',
	fault => { kind => 'truncate', mode => 'close' },
	error => qr/^transport error: /);
scenario(name => 'a login page instead of JSON',
	fault => { kind => 'content_type', content_type => 'text/html;charset=utf-8' },
	error => qr/^unexpected content type "text\/html;charset=utf-8", expected JSON/);
scenario(name => 'a 429 from a proxy with Retry-After',
	fault => { kind => 'status', status => 429, body => 'Too Many Requests', headers => { 'Retry-After' => '5' }, bare => 1 },
	status => 'rate_limited',
	error => qr/^rate limited: HTTP 429 .*retrying in \d+ s$/,
	check => sub { cmp_ok($_[1], '==', 5, '429: next try as Retry-After says') });
scenario(name => 'a 503 with Retry-After',
	fault => { kind => 'status', status => 503, body => 'Service Unavailable', headers => { 'Retry-After' => '12' }, bare => 1 },
	status => 'rate_limited',
	check => sub { cmp_ok($_[1], '==', 12, '503: next try as Retry-After says') });
scenario(name => 'Jenkins restarting (503 without Retry-After)',
	fault => { kind => 'status', status => 503, content_type => 'text/html', body => '<html>Jenkins is getting ready to work</html>' },
	error => qr/^HTTP 503 .*getting ready to work/,
	check => sub { is($_[1], 30, 'an error backs off 30 s') });

# credentials: nothing is stored until Jenkins accepts them
scenario(name => 'a wrong API token',
	token => 'Wrong-Token-000',
	error => qr/^HTTP 401 .*Invalid password\/token for user: ci-bot/,
	stored => [],
	before_recovery => sub { $node->safe_psql('postgres', "SELECT engineering.set_source_token('$_[0]', '$token')"); });
scenario(name => 'no API token',
	token => undef,
	error => qr/^HTTP 403 .*Authentication required/,
	stored => [],
	before_recovery => sub { $node->safe_psql('postgres', "SELECT engineering.set_source_token('$_[0]', '$token')"); });
my $log = $mock->requests(vendor => 'jenkins');
ok((grep { !$_->{auth_ok} && $_->{status} == 401 } @$log) && (grep { !$_->{auth_ok} && $_->{status} == 403 } @$log),
	'the mock refused the wrong token and the missing one');

# a job that does not exist
$node->safe_psql('postgres',
	"SELECT engineering.add_source('nojob', 'jenkins', '$url', '{\"job\": \"shop/nope\", \"user\": \"$user\"}', '$token')");
my ($status, $error) = sync_row('nojob');
is($status, 'error', 'a job that does not exist is an error');
like($error, qr/^HTTP 404 \(GET .*\/job\/shop\/job\/nope\/api\/json.*Not Found/, 'which names the URL');
$node->safe_psql('postgres', q{SELECT engineering.alter_source('nojob', config => '{"job": "shop/build", "user": "ci-bot", "since": "2020-01-01"}')});
is($node->safe_psql('postgres', q{SELECT count(*) FROM engineering.sync_tasks t JOIN engineering.sources s ON s.id = t.source_id
		WHERE s.name = 'nojob'}), '0', 'changing the config drops the requests queued from the old one');
($status) = sync_row('nojob');
is($status, 'ok', 'once config job is fixed, the source syncs');
is_deeply(builds_of('nojob'), \@all, 'and stores every build');

is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error LIKE '%7f3e9a%' OR error LIKE '%Wrong-Token%'"),
	'0', 'no run row keeps a token');

$node->stop;
$mock->stop;
done_testing();
