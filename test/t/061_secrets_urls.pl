# Tokens and URLs, for every connector (014 proves the worker side for
# GitHub; this extends it to each auth style and to sessions calling
# sync()):
#   - tokens read from server files and environment variables (none passes
#     through SQL) for GitHub (Bearer), GitLab (PRIVATE-TOKEN), Jenkins
#     (HTTP Basic), PagerDuty (Token token=) and Opsgenie (GenieKey), used by
#     sync() in ordinary sessions and by the worker, through successes, a
#     wrong token and error pages that repeat the request headers: no token
#     in the server log (log_statement = all, debug1, verbose errors), in
#     what the clients received, in sync_runs, sources, source_status,
#     sync_tasks, in pg_stat_activity sampled while a slow sync() runs, nor
#     anywhere in the data directory's files (heap, WAL);
#   - redirects to another port, another scheme (https, ftp, file) or a URL
#     with credentials are refused, and the other origin (a second mock)
#     never receives a request, so a token cannot follow; a queued task
#     pointing at a file:// URL is refused before any request.
use strict;
use warnings;
use File::Find;
use MIME::Base64 qw(encode_base64);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use EMMock;
use EMSyncTest qw(wait_for);

my %token = (
	github => 'ghp_Rel061GithubTok9Q',
	gitlab => 'glpat-Rel061GitlabTok8W',
	jenkins => 'Rel061JenkinsTok7E',
	pagerduty => 'Rel061PagerdutyTok6R',
	opsgenie => 'Rel061OpsgenieKey5T',
);
my $wrong = 'Rel061WrongTok4Y';
# HTTP Basic sends user:token in base64: that form must not leak either
$token{jenkins_basic} = encode_base64("ci-bot:$token{jenkins}", '');
my $mock = EMMock->new(generate => [
		"github:runs=150,deployments=2,pulls=2,seed=611,span_days=5,rerun_ratio=0,token=$token{github}",
		"gitlab:pipelines=60,deployments=3,merge_requests=3,seed=612,span_days=5,token=$token{gitlab}",
		"jenkins:builds=60,deploys=4,seed=613,span_days=5,user=ci-bot,token=$token{jenkins}",
		"pagerduty:incidents=40,open=2,seed=614,start=2025-06-01T00:00:00Z,span_days=30,token=$token{pagerduty}",
		"opsgenie:incidents=40,open=2,seed=615,start=2025-06-01T00:00:00Z,span_days=30,token=$token{opsgenie}" ]);
my $elsewhere = EMMock->new;    # another origin: must never be asked anything

my $node = PostgreSQL::Test::Cluster->new('secrets_urls');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
engineering_metrics.http_retries = 0
log_statement = 'all'
log_min_messages = debug1
log_min_error_statement = debug1
log_error_verbosity = verbose
log_connections = on
max_worker_processes = 16
});
my %file;
for my $kind (qw(github pagerduty))
{
	$file{$kind} = $node->basedir . "/$kind.token";
	append_to_file($file{$kind}, "$token{$kind}\n");
}
$file{wrong} = $node->basedir . '/wrong.token';
append_to_file($file{wrong}, $wrong);
{
	local $ENV{EM_TOKEN_GITLAB} = $token{gitlab};
	local $ENV{EM_TOKEN_JENKINS} = $token{jenkins};
	local $ENV{EM_TOKEN_OPSGENIE} = $token{opsgenie};
	$node->start;
}
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

my $client_output = '';    # everything the clients were told

sub sql
{
	my ($q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $q);
	$client_output .= "$out\n$err\n";
	die "query failed: $q\n$err" if $ret != 0;
	return $out;
}

my %config = (
	github => qq({"repository": "acme/shop", "since": "2024-01-01", "token_file": "$file{github}"}),
	gitlab => q({"project": "acme/shop", "since": "2024-01-01", "token_env": "EM_TOKEN_GITLAB"}),
	jenkins => q({"job": "shop/build", "user": "ci-bot", "since": "2020-01-01", "token_env": "EM_TOKEN_JENKINS"}),
	pagerduty => qq({"since": "2025-06-01", "token_file": "$file{pagerduty}"}),
	opsgenie => q({"query": "*", "since": "2025-06-01", "token_env": "EM_TOKEN_OPSGENIE"}),
);

# every source disabled, so that only the sessions below sync them at first
for my $kind (sort keys %config)
{
	sql("BEGIN;
	     SELECT engineering.add_source('$kind', '$kind', '" . $mock->url($kind) . "', '$config{$kind}');
	     SELECT engineering.alter_source('$kind', enabled => false);
	     COMMIT;");
}
sql("BEGIN;
     SELECT engineering.add_source('wrong', 'github', '" . $mock->url('github') . "',
       '{\"repository\": \"acme/shop\", \"token_file\": \"$file{wrong}\"}');
     SELECT engineering.alter_source('wrong', enabled => false);
     COMMIT;");

# --- sync() in sessions ------------------------------------------------------
for my $kind (sort keys %config)
{
	is(sql("SET engineering_metrics.max_pages_per_run = 1000; SELECT status FROM engineering.sync('$kind')"),
		'ok', "$kind: sync() with a token from a server file or variable");
}
my $log = $mock->requests;
ok(@$log > 20 && !(grep { !$_->{auth_ok} } @$log), 'every request carried the right credentials');
like(sql("SELECT status || ' ' || error FROM engineering.sync('wrong')"), qr/^error HTTP 401/,
	'a wrong token is an error row');

# error pages that repeat the request headers, for each auth style
for my $kind (sort keys %config)
{
	$mock->fault(match => { vendor => $kind }, kind => 'echo_headers', count => 1);
	my $row = sql("SELECT status || ' ' || error FROM engineering.sync('$kind')");
	like($row, qr/^error HTTP 500/, "$kind: an error page echoing the headers is an error row");
	unlike($row, qr/\Q$token{$kind}\E/, "$kind: without the token");
}

# an error page whose excerpt (the first 200 characters) ends in the middle
# of the token: the piece that is left must not show either
my $cut = 8;
$mock->fault(match => { vendor => 'github' }, kind => 'status', status => 500, count => 1,
	body => ('A' x (200 - $cut)) . $token{github} . ' and more');
my $row = sql("SELECT status || ' ' || error FROM engineering.sync('github')");
like($row, qr/^error HTTP 500 .*AAAA/, 'an error page cut in the middle of the token is an error row');
unlike($row, qr/\Q${\ substr($token{github}, 0, 5)}\E/, 'without the piece of the token before the cut');

# pg_stat_activity while a session waits for a slow page; and a second
# session trying the same source is told so, without a token
$mock->fault(match => { vendor => 'jenkins' }, kind => 'slow', delay => 3, count => 1);
sql("SELECT engineering.alter_source('jenkins', config => '$config{jenkins}'::jsonb || '{\"since\": \"2020-01-02\"}')");
my ($out, $err) = ('', '');
my $h = IPC::Run::start([ 'psql', '-X', '-At', '-d', $node->connstr('postgres'), '-c',
		"SELECT status FROM engineering.sync('jenkins')" ], '>', \$out, '2>', \$err);
my $activity = '';
ok(wait_for(sub {
			$activity .= sql("SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a") . "\n";
			$activity =~ /engineering\.sync\('jenkins'\)/;
		}, 30),
	'pg_stat_activity shows the session in sync()');
my ($ret, $o, $e) = $node->psql('postgres', "SELECT engineering.sync('jenkins')");
$client_output .= "$o\n$e\n";
like($e, qr/source "jenkins" is being synced by another process/, 'a second session is refused');
$h->finish;
$client_output .= "$out\n$err\n";
is($out, "ok\n", 'the slow sync() finished');

# --- then the worker -----------------------------------------------------------
sql("SELECT engineering.alter_source(name, enabled => true) FROM engineering.sources WHERE name <> 'wrong'");
$mock->fault(match => { vendor => $_ }, kind => 'echo_headers', count => 1) for sort keys %config;
ok($node->poll_query_until('postgres',
		"SELECT count(DISTINCT source_id) FROM engineering.sync_runs
		 WHERE started_by = 'worker' AND status = 'error' AND error LIKE 'HTTP 500%'", '5'),
	'the worker met an echoing error page on every source');
# (due at once rather than after the 30 s backoff)
sql("SELECT engineering.alter_source(name, enabled => true) FROM engineering.sources WHERE name <> 'wrong'");
ok($node->poll_query_until('postgres',
		"SELECT count(*) FROM engineering.source_status WHERE name <> 'wrong' AND last_status = 'ok'", '5'),
	'and synced every source afterwards');

# --- nowhere to be found ------------------------------------------------------
my $everything = sql("SELECT string_agg(r::text, E'\\n') FROM engineering.sync_runs r
	UNION ALL SELECT string_agg(s::text, E'\\n') FROM engineering.sources s
	UNION ALL SELECT string_agg(st::text, E'\\n') FROM engineering.source_status st
	UNION ALL SELECT string_agg(t::text, E'\\n') FROM engineering.sync_tasks t
	UNION ALL SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a");
like($everything, qr/echo|HTTP 500/, 'the tables hold the error rows');
is(sql('SELECT count(*) FROM engineering.source_secrets'), '0', 'no token is stored in the database');
$node->stop;
my $server_log = slurp_file($node->logfile);
like($server_log, qr/statement: SELECT engineering\.sync/, 'the server log has every statement');
like($server_log, qr/DEBUG:  (?:00000: )?engineering_metrics: source "opsgenie" synced/, 'and the worker\'s debug messages');

# the data directory, byte by byte: heap files, WAL, everything
my $datadir_hits = '';
find(sub {
		return unless -f $_;
		open(my $fh, '<:raw', $_) or return;
		local $/;
		my $bytes = <$fh>;
		close $fh;
		for my $t (values %token, $wrong)
		{
			$datadir_hits .= "$File::Find::name " if index($bytes, $t) >= 0;
		}
	}, $node->data_dir);

for my $kind (sort keys %token)
{
	unlike($server_log, qr/\Q$token{$kind}\E/, "$kind: the token is not in the server log");
	unlike($client_output, qr/\Q$token{$kind}\E/, "$kind: nor in anything a client was told");
	unlike($everything, qr/\Q$token{$kind}\E/, "$kind: nor in sync_runs, sources, sync_tasks or pg_stat_activity");
	unlike($activity, qr/\Q$token{$kind}\E/, "$kind: nor in pg_stat_activity during a sync() in a session");
}
unlike($server_log . $client_output . $everything, qr/\Q$wrong\E/, 'the wrong token appears nowhere either');
is($datadir_hits, '', 'no file of the data directory contains a token');

# --- redirects and task URLs ---------------------------------------------------
$node->start;
my $gh = $mock->url('github');
my ($port) = $mock->base_url =~ /:(\d+)$/;
my $other = $elsewhere->base_url;
my $n = 0;
for my $case (
	[ 'another port', "$other/github/repos/acme/shop/actions/runs" ],
	[ 'https on the same port', "https://127.0.0.1:$port/github/repos/acme/shop/actions/runs" ],
	[ 'ftp', "ftp://127.0.0.1:$port/github" ],
	[ 'a file', 'file:///etc/passwd' ],
	[ 'credentials in the URL', "http://user:pw\@127.0.0.1:$port/github/repos/acme/shop/actions/runs" ],
	[ 'a scheme-relative URL to another port', '//' . ($other =~ s{^http://}{}r) . '/github' ])
{
	my ($label, $location) = @$case;
	my $name = 'redirect' . ++$n;
	$mock->clear_faults;
	$mock->fault(match => { vendor => 'github' }, kind => 'redirect', status => 302, location => $location);
	# (in one transaction: the worker must not take the source first)
	$node->safe_psql('postgres',
		"BEGIN;
		 SELECT engineering.add_source('$name', 'github', '$gh', '{\"repository\": \"acme/shop\"}',
		   token => '$token{github}', poll_interval => '1 hour');
		 SELECT engineering.alter_source('$name', enabled => false);
		 COMMIT;");
	like($node->safe_psql('postgres', "SELECT status || ' ' || error FROM engineering.sync('$name')"),
		qr/^error redirect refused: redirect to a different scheme, host or port refused/,
		"a redirect to $label is refused");
}
is(scalar @{ $elsewhere->requests }, 0, 'the other origin never received a request');

# a queued task pointing at a file is refused before any request
$mock->clear_faults;
$mock->clear_requests;
$node->safe_psql('postgres',
	"BEGIN;
	 SELECT engineering.add_source('filetask', 'github', '$gh', '{\"repository\": \"acme/shop\"}', poll_interval => '1 hour');
	 SELECT engineering.alter_source('filetask', enabled => false);
	 INSERT INTO engineering.sync_tasks (source_id, stream, url)
	 SELECT id, 'runs', 'file:///etc/passwd' FROM engineering.sources WHERE name = 'filetask';
	 COMMIT;");
like($node->safe_psql('postgres', "SELECT error FROM engineering.sync('filetask')"),
	qr/points outside the source's scheme, host and port; refused/, 'a task with a file:// URL is refused');
is(scalar @{ $mock->requests }, 0, 'before any request');

$node->stop;
$mock->stop;
$elsewhere->stop;
done_testing();
