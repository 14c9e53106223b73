# The background worker syncs a GitLab and a Jenkins source of one database
# by itself: the GitLab source is rate limited (429, Retry-After) and
# resumes once the wait is over, not before; the worker is killed with
# SIGKILL while it waits for a slow Jenkins page, and after the server's
# crash recovery the sync picks up where it stopped; a Jenkins source with a
# wrong token keeps failing without holding up the others.  In the end the
# tables hold exactly what the APIs hold, and no token was logged.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows db_map wait_for);
use EMCicdTest qw(ms gitlab_expect jenkins_expect);

my $gl_token = 'glpat-Worker-1357-token';
my ($jk_user, $jk_token) = ('ci-bot', 'Jenkins-Worker-2468-token');
my $mock = EMMock->new(generate => [
		"gitlab:pipelines=120,deployments=6,merge_requests=5,seed=21,span_days=10,running=1,token=$gl_token",
		"jenkins:builds=150,deploys=10,seed=22,span_days=10,user=$jk_user,token=$jk_token" ]);

my $node = PostgreSQL::Test::Cluster->new('cicd_worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.naptime = 1
restart_after_crash = on
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

# faults, armed before the sources exist: GitLab throttles the second list
# of pipelines; Jenkins is slow to give the second page ({100,200}) of shop/build
$mock->fault(match => { vendor => 'gitlab', path => '/pipelines$' }, skip => 1,
	kind => 'rate_limit', style => 'gitlab', status => 429, reset_in => 600, retry_after => 3);
$mock->fault(match => { vendor => 'jenkins', path => '/job/shop/job/build/api/json$', query => '%7B100%2C200%7D' },
	kind => 'slow', delay => 6);

my $log_offset = -s $node->logfile;
my ($gl, $jk) = ($mock->url('gitlab'), $mock->url('jenkins'));
$node->safe_psql('postgres', qq{
	SELECT engineering.add_source('gl', 'gitlab', '$gl', '{"project": "acme/shop", "since": "2024-01-01"}',
	                              '$gl_token', poll_interval => '1 hour');
	SELECT engineering.add_source('jk', 'jenkins', '$jk', '{"job": "shop/build", "user": "$jk_user", "since": "2020-01-01"}',
	                              '$jk_token', poll_interval => '1 hour');
	SELECT engineering.add_source('broken', 'jenkins', '$jk', '{"job": "shop/build", "user": "$jk_user"}',
	                              'not-the-token', poll_interval => '1 hour');
});
my $setup_end = -s $node->logfile;

# --- SIGKILL while the worker waits for the slow page ----------------------
my $pid;
ok(wait_for(sub {
			$pid = $node->safe_psql('postgres',
				q{SELECT pid FROM pg_stat_activity WHERE backend_type = 'engineering_metrics sync'
				  AND query LIKE '%syncing source "jk" (builds, page 2)%'});
			return $pid ne '';
		}, 60),
	'the worker is waiting for the second page of Jenkins builds');
my $before_kill = $node->safe_psql('postgres', q{SELECT count(*) FROM engineering.pipeline_runs r
	JOIN engineering.sources s ON s.id = r.source_id WHERE s.name = 'jk'});
is($before_kill, '100', 'the first page of builds is committed');
kill 'KILL', $pid;
ok(wait_for(sub {
			my ($ret) = $node->psql('postgres', 'SELECT 1');
			return $ret == 0 && slurp_file($node->logfile, $setup_end) =~ /terminated by signal 9/;
		}, 60),
	'the server went through crash recovery and accepts connections again');

# --- everything settles -----------------------------------------------------
my $done = sub {
	my ($name, $count) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT (SELECT count(*) FROM engineering.pipeline_runs r WHERE r.source_id = s.id) = $count
		   AND NOT EXISTS (SELECT 1 FROM engineering.sync_tasks t WHERE t.source_id = s.id)
		   AND s.last_error IS NULL AND s.last_synced_at IS NOT NULL
		FROM engineering.sources s WHERE s.name = '$name'}) eq 't';
};
ok(wait_for(sub { $done->('gl', 120) && $done->('jk', 150) }, 120), 'the worker synced both sources to the end')
  or diag($node->safe_psql('postgres', 'SELECT source, status, error FROM engineering.sync_runs ORDER BY id'));

# exactly what the APIs hold
my $ge = gitlab_expect($mock->world('gitlab'), 'acme/shop', since => iso_epoch('2024-01-01T00:00:00Z'));
is_deeply(db_map($node,
		"SELECT r.external_id, concat_ws(' ', r.status, coalesce((extract(epoch FROM r.finished_at) * 1000)::bigint::text, ''))
		 FROM engineering.pipeline_runs r JOIN engineering.sources s ON s.id = r.source_id WHERE s.name = 'gl'"),
	{ map { $_ => join(' ', $ge->{pipelines}{$_}{status}, $ge->{pipelines}{$_}{finished} // '') } keys %{ $ge->{pipelines} } },
	'GitLab: every pipeline once, with its status and end');
is_deeply(db_map($node,
		"SELECT d.external_id, d.status FROM engineering.deployments d JOIN engineering.sources s ON s.id = d.source_id
		 WHERE s.name = 'gl'"),
	{ map { $_ => $ge->{deployments}{$_}{status} } keys %{ $ge->{deployments} } },
	'GitLab: every deployment');
my $je = jenkins_expect($mock->world('jenkins'), roots => ['shop/build'], since_ms => 0);
is_deeply(db_map($node,
		"SELECT r.external_id, concat_ws(' ', r.status, (extract(epoch FROM r.started_at) * 1000)::bigint,
		                                coalesce((extract(epoch FROM r.finished_at) * 1000)::bigint::text, ''))
		 FROM engineering.pipeline_runs r JOIN engineering.sources s ON s.id = r.source_id WHERE s.name = 'jk'"),
	{ map { $_ => join(' ', $je->{runs}{$_}{status}, $je->{runs}{$_}{started}, $je->{runs}{$_}{finished} // '') }
		  keys %{ $je->{runs} } },
	'Jenkins: every build once, nothing lost or doubled by the kill');

# how the runs went
my $runs = db_rows($node, q{
	SELECT r.source, r.status, coalesce(r.error, ''), r.started_by,
	       extract(epoch FROM r.started_at)::float8, extract(epoch FROM r.next_sync_at)::float8
	FROM engineering.sync_runs r ORDER BY r.id});
my @gl = grep { $_->[0] eq 'gl' } @$runs;
my ($limited) = grep { $_->[1] eq 'rate_limited' } @gl;
ok($limited, 'GitLab: a run was rate limited') and
  like($limited->[2], qr/^rate limited: HTTP 429 .*retrying in [1-3] s$/, 'by the 429, waiting as Retry-After says');
my ($resumed) = grep { $_->[4] > $limited->[4] } @gl;
ok($resumed && $resumed->[4] >= $limited->[5] - 0.01,
	'the next GitLab run started once the wait was over, not before');
is(scalar(grep { $_->[3] ne 'worker' } @$runs), 0, 'every run was started by the worker');
ok((grep { $_->[0] eq 'jk' && $_->[1] eq 'error' && $_->[2] =~ /^interrupted/ } @$runs),
	'Jenkins: the killed run was closed as interrupted');
my @broken = grep { $_->[0] eq 'broken' } @$runs;
ok(@broken && !(grep { $_->[1] ne 'error' } @broken), 'the source with a wrong token only failed');
like($broken[0][2], qr/^HTTP 401 .*Invalid password\/token for user: ci-bot/, 'with the 401 Jenkins gave');
is($node->safe_psql('postgres', q{SELECT count(*) FROM engineering.pipeline_runs r
	JOIN engineering.sources s ON s.id = r.source_id WHERE s.name = 'broken'}), '0', 'and stored nothing');

my $server_log = slurp_file($node->logfile, $setup_end);
like($server_log, qr/sync of source "broken" ended with status error/, 'the worker logged the failing source');
unlike($server_log, qr/\Q$gl_token\E|\Q$jk_token\E|not-the-token/, 'no token appears in the server log');

$node->stop;
$mock->stop;
done_testing();
