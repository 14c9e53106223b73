# Tokens never leak: read from a server file or environment variable (so
# no SQL text carries them), sent only as the Authorization header, and
# absent from the server log (log_statement = all, debug1), sync_runs,
# sources.last_error and pg_stat_activity, even when a wrong token is
# refused or an error page repeats the request headers.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(wait_for);

my $token = 'ghp_EMtestQz8Vx3N5mK2pW7';
my $wrong = 'ghp_EMwrongLr4Tb9Q1wXc6';
my $mock = EMMock->new(generate => [ "github:runs=60,deployments=2,pulls=2,seed=41,span_days=3,token=$token" ]);
my $url = $mock->url('github');

my $node = PostgreSQL::Test::Cluster->new('secrets');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
engineering_metrics.http_retries = 0
log_statement = 'all'
log_min_messages = debug1
max_worker_processes = 16
});
my $token_file = $node->basedir . '/github_token';
append_to_file($token_file, "$token\n");
my $wrong_file = $node->basedir . '/wrong_token';
append_to_file($wrong_file, " $wrong \n");
{
	local $ENV{EM_TEST_GITHUB_TOKEN} = $token;
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

sub status_of
{
	my ($name) = @_;
	return $node->safe_psql('postgres',
		"SELECT last_status FROM engineering.source_status WHERE name = '$name'");
}

sub add
{
	my ($name, $extra) = @_;
	$node->safe_psql('postgres',
		"SELECT engineering.add_source('$name', 'github', '$url',
		   '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\", $extra}', poll_interval => '1 hour')");
}

add('from_file', "\"token_file\": \"$token_file\"");
ok(wait_for(sub { status_of('from_file') eq 'ok' }, 60), 'a token read from a server file works');
add('from_env', '"token_env": "EM_TEST_GITHUB_TOKEN"');
ok(wait_for(sub { status_of('from_env') eq 'ok' }, 60), 'a token read from an environment variable works');
my $log = $mock->requests(vendor => 'github');
ok(@$log > 10 && !(grep { !$_->{auth_ok} } @$log), 'every request carried the right token');

add('wrong', "\"token_file\": \"$wrong_file\"");
ok(wait_for(sub { status_of('wrong') eq 'error' }, 60), 'a wrong token is an error row');
like($node->safe_psql('postgres', "SELECT last_error FROM engineering.sources WHERE name = 'wrong'"),
	qr/^HTTP 401 .*Bad credentials/, 'which says the credentials were refused');

add('missing_file', '"token_file": "/nonexistent/token"');
ok(wait_for(sub { status_of('missing_file') eq 'error' }, 60), 'an unreadable token file is an error row');
like($node->safe_psql('postgres', "SELECT last_error FROM engineering.sources WHERE name = 'missing_file'"),
	qr{could not open token_file "/nonexistent/token": No such file}, 'naming the file');

# an error page that repeats the request headers
$mock->fault(match => { vendor => 'github' }, kind => 'echo_headers', count => 1);
$node->safe_psql('postgres', "SELECT engineering.alter_source('from_file', enabled => true)");
ok(wait_for(sub { status_of('from_file') eq 'error' }, 60), 'an error page echoing the headers is an error row');
like($node->safe_psql('postgres', "SELECT last_error FROM engineering.sources WHERE name = 'from_file'"),
	qr/"authorization":"Bearer \*+"/, 'with the credentials masked');

# while a request is in flight, pg_stat_activity says what the worker does
$mock->fault(match => { vendor => 'github' }, kind => 'slow', delay => 4, count => 1);
$node->safe_psql('postgres', "SELECT engineering.alter_source('from_env', enabled => true)");
my $activity = '';
ok(wait_for(sub {
			$activity = $node->safe_psql('postgres',
				"SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a WHERE backend_type = 'engineering_metrics sync'");
			$activity =~ /syncing source ""?from_env/;    # quotes are doubled in record text
		}, 30),
	'pg_stat_activity shows the source being synced');
unlike($activity, qr/\Q$token\E/, 'but not its token');
ok(wait_for(sub { status_of('from_env') eq 'ok' }, 60), 'the slow request completed');

# nowhere to be found
my $everything = $node->safe_psql('postgres',
	"SELECT string_agg(r::text, E'\\n') FROM engineering.sync_runs r
	 UNION ALL SELECT string_agg(s::text, E'\\n') FROM engineering.sources s
	 UNION ALL SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a");
unlike($everything, qr/\Q$token\E|\Q$wrong\E/, 'no token in sync_runs, sources or pg_stat_activity');
is($node->safe_psql('postgres', 'SELECT count(*) FROM engineering.source_secrets'), '0',
	'and none stored in the database');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/statement: SELECT engineering.add_source/, 'the server log has every statement');
like($server_log, qr/DEBUG:  engineering_metrics: source "from_file" synced/, 'and the worker\'s debug messages');
unlike($server_log, qr/\Q$token\E/, 'the token is not in the server log');
unlike($server_log, qr/\Q$wrong\E/, 'nor the wrong one');

$mock->stop;
done_testing();
