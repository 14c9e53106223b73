# A call that carries a token and fails leaves the token nowhere: every way
# add_source and set_source_token can refuse a call (bad kind, URL, config,
# interval, duplicate name, missing source, bad token, token_file without
# the right, not an admin, by SET ROLE and by login) is made in one session,
# and the token is looked for in the server log, in pg_stat_activity while
# that session stays connected, and in sync_runs and sources.  Each call must
# really have failed, and its error must be in the log, so that finding
# nothing means something.  What no function can prevent (a statement that
# fails before the function runs) is shown to be logged, as README says.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('token_errors');
$node->init;
$node->append_conf('postgresql.conf', q{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.http_retries = 0
log_error_verbosity = verbose
# the test framework logs every statement; no function can hide a
# statement from log_statement (README "Tokens")
log_statement = 'none'
log_min_messages = debug1
});
$node->start;
$node->safe_psql('postgres', q{
CREATE EXTENSION engineering_metrics;
CREATE ROLE em_reader_login LOGIN IN ROLE engineering_reader;
CREATE ROLE em_writer_login LOGIN IN ROLE engineering_writer;
CREATE ROLE em_admin_login LOGIN IN ROLE engineering_admin, em_reader_login, em_writer_login;
SELECT engineering.add_source('taken', 'github', 'http://127.0.0.1:1', '{"repository": "acme/shop"}',
                              poll_interval => '1 day');
});

my $n = 0;
my %token_of;    # label => the token its call carried
sub token_for
{
	my ($label) = @_;
	$n++;
	return $token_of{$label} = "tok_EMerr${n}Zq8Vx3N5mK2pW7";
}

my %calls = (
	'bad kind' => sub {
		"SELECT engineering.add_source('k', 'nosuchvendor', NULL, '{}', token => '$_[0]')" },
	'bad URL' => sub {
		"SELECT engineering.add_source('u', 'github', 'ftp://127.0.0.1/', '{\"repository\": \"a/b\"}', token => '$_[0]')" },
	'URL with credentials' => sub {
		"SELECT engineering.add_source('u', 'github', 'http://user:$_[0]\@127.0.0.1/', '{\"repository\": \"a/b\"}')" },
	'URL with a query' => sub {
		"SELECT engineering.add_source('u', 'gitlab', 'http://127.0.0.1/?private_token=$_[0]', '{\"project\": \"a/b\"}')" },
	'alter_source: URL with credentials' => sub {
		"SELECT engineering.alter_source('taken', base_url => 'http://user:$_[0]\@127.0.0.1/')" },
	'bad config' => sub {
		"SELECT engineering.add_source('c', 'github', NULL, '{\"repository\": 5}', token => '$_[0]')" },
	'bad config of another vendor' => sub {
		"SELECT engineering.add_source('c', 'pagerduty', NULL, '{\"service_ids\": []}', token => '$_[0]')" },
	'bad interval' => sub {
		"SELECT engineering.add_source('i', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]', poll_interval => interval '1 second')" },
	'duplicate name' => sub {
		"SELECT engineering.add_source('taken', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]')" },
	'duplicate in one statement' => sub {
		"SELECT engineering.add_source('twice', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]') FROM generate_series(1, 2)" },
	'no name' => sub {
		"SELECT engineering.add_source(NULL, 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]')" },
	'token with control characters' => sub {
		"SELECT engineering.add_source('t', 'github', NULL, '{\"repository\": \"a/b\"}', token => E'$_[0]\\r\\nX-Injected: 1')" },
	'token_file without the right' => sub {
		"SELECT engineering.add_source('f', 'github', NULL, '{\"repository\": \"a/b\", \"token_file\": \"/etc/passwd\"}', token => '$_[0]')" },
	'not an admin (SET ROLE reader)' => sub {
		"SET ROLE em_reader_login; SELECT engineering.add_source('r', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]')" },
	'not an admin (SET ROLE writer)' => sub {
		"SET ROLE em_writer_login; SELECT engineering.add_source('w', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$_[0]')" },
	'set_source_token: no such source' => sub {
		"SELECT engineering.set_source_token('nosuchsource', '$_[0]')" },
	'set_source_token: control characters' => sub {
		"SELECT engineering.set_source_token('taken', E'$_[0]\\x01')" },
	'set_source_token: not an admin' => sub {
		"SET ROLE em_reader_login; SELECT engineering.set_source_token('taken', '$_[0]')" },
);
my %expected_error = (
	'bad kind' => qr/invalid source kind "nosuchvendor"/,
	'bad URL' => qr/base_url/,
	'URL with credentials' => qr/invalid base_url "http:\/\/\*\*\*\@127\.0\.0\.1\/"/,
	'URL with a query' => qr/invalid base_url "http:\/\/127\.0\.0\.1\/\?\*\*\*"/,
	'alter_source: URL with credentials' => qr/invalid base_url "http:\/\/\*\*\*\@127\.0\.0\.1\/"/,
	'bad config' => qr/config repository/,
	'bad config of another vendor' => qr/config service_ids/,
	'bad interval' => qr/poll_interval/,
	'duplicate name' => qr/source "taken" already exists/,
	'duplicate in one statement' => qr/source "twice" already exists/,
	'no name' => qr/a source needs a name and a kind/,
	'token with control characters' => qr/token must not contain control characters/,
	'token_file without the right' => qr/permission denied to use token_file or token_env/,
	'not an admin (SET ROLE reader)' => qr/permission denied for function add_source/,
	'not an admin (SET ROLE writer)' => qr/permission denied for function add_source/,
	'set_source_token: no such source' => qr/source "nosuchsource" does not exist/,
	'set_source_token: control characters' => qr/token must not contain control characters/,
	'set_source_token: not an admin' => qr/permission denied for function set_source_token/,
);

# One session makes every call and stays connected, so that
# pg_stat_activity still shows its last statement when it is looked at.
my $session = $node->background_psql('postgres', on_error_stop => 0,
	extra_params => [ '-U', 'em_admin_login' ]);
my $pid = $session->query_safe('SELECT pg_backend_pid()');
for my $label (sort keys %calls)
{
	my $token = token_for($label);
	$session->{stderr} = '';
	my (undef, $failed) = $session->query($calls{$label}->($token));
	my $error = $session->{stderr};
	$session->{stderr} = '';
	$session->query_safe('RESET ROLE');
	ok($failed, "$label: the call fails");
	like($error, $expected_error{$label}, "$label: with its own error");
	unlike($error, qr/\Q$token\E/, "$label: the error does not repeat the token");
	my $activity = $node->safe_psql('postgres',
		"SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a WHERE pid <> pg_backend_pid()");
	# alter_source takes no token: only the log is kept clean of a URL it
	# refuses (README "Tokens")
	next if $label =~ /^alter_source/;
	unlike($activity, qr/\Q$token\E/, "$label: pg_stat_activity does not show it");
}

# not an admin by login (session user), in a session of its own
my $by_login = token_for('not an admin (login)');
my ($login_rc, $login_out, $login_err) = $node->psql('postgres',
	"SELECT engineering.add_source('l', 'github', NULL, '{\"repository\": \"a/b\"}', token => '$by_login')",
	extra_params => [ '-U', 'em_writer_login' ]);
isnt($login_rc, 0, 'not an admin (login): the call fails');
like($login_err, qr/permission denied for function add_source/, 'not an admin (login): with its own error');
$expected_error{'not an admin (login)'} = qr/permission denied for function add_source/;

# the session's last call through a function shows the note in its place
$session->query("SELECT engineering.set_source_token('nosuchsource', 'x')");
$session->{stderr} = '';
like($node->safe_psql('postgres', "SELECT query FROM pg_stat_activity WHERE pid = $pid"),
	qr/engineering\.set_source_token\(\.\.\.\): statement text hidden/,
	'pg_stat_activity shows a note instead of the statement');

# a call that succeeds, then syncs and fails: no token in sync_runs or sources
my $stored = token_for('stored and synced');
$session->query_safe("SELECT engineering.add_source('dead', 'github', 'http://127.0.0.1:1', '{\"repository\": \"a/b\"}', token => '$stored', poll_interval => '1 day')");
unlike($node->safe_psql('postgres', "SELECT query FROM pg_stat_activity WHERE pid = $pid"),
	qr/\Q$stored\E/, 'a call that succeeds is hidden too');
$session->{stderr} = '';
$session->query("SELECT engineering.sync('dead')");
$session->{stderr} = '';
is($node->safe_psql('postgres',
		"SELECT status FROM engineering.sync_runs WHERE source = 'dead' ORDER BY id DESC LIMIT 1"),
	'error', 'a sync of the stored token\'s source failed');
$session->quit;

# a control: an ordinary failing statement is logged with its text, so the
# absence of the calls' statements below is the functions' doing
my ($rc) = $node->psql('postgres', "SELECT 1/0 AS em_control_statement");
isnt($rc, 0, 'the control statement fails');

# what no function can prevent: a statement refused before the function
# runs (its argument does not even parse as jsonb) is logged whole
my $unparsed = token_for('refused before the function runs');
($rc) = $node->psql('postgres',
	"SELECT engineering.add_source('p', 'github', NULL, '{not json', token => '$unparsed')");
isnt($rc, 0, 'a call with an argument that does not parse fails');

my $everything = $node->safe_psql('postgres',
	"SELECT string_agg(r::text, E'\\n') FROM engineering.sync_runs r
	 UNION ALL SELECT string_agg(s::text, E'\\n') FROM engineering.sources s
	 UNION ALL SELECT string_agg(t::text, E'\\n') FROM engineering.sync_tasks t
	 UNION ALL SELECT string_agg(a::text, E'\\n') FROM pg_stat_activity a");
for my $label (sort keys %token_of)
{
	next if $label eq 'refused before the function runs';
	unlike($everything, qr/\Q$token_of{$label}\E/, "$label: not in sync_runs, sources, sync_tasks or pg_stat_activity");
}

$node->stop;
my $log = slurp_file($node->logfile);
like($log, qr/STATEMENT:  SELECT 1\/0 AS em_control_statement/, 'the control statement is in the log');
like($log, qr/STATEMENT:  SELECT engineering\.add_source\('p'.*\Q$unparsed\E/,
	'a statement that fails before the function runs is logged, token and all (README says so)');
for my $label (sort keys %token_of)
{
	next if $label eq 'refused before the function runs';
	unlike($log, qr/\Q$token_of{$label}\E/, "$label: the token is not in the server log");
}
for my $label (sort keys %expected_error)
{
	like($log, $expected_error{$label}, "$label: the error itself is logged");
}

done_testing();
