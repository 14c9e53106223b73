# engineering.sync() in a server without the background worker: a GitHub
# backfill over several pages and split windows, exactly the rows the API
# holds (times with Z and +02:00 included), incremental re-syncs that fetch
# only what changed and update what moved on, and the per-source lock.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch github_expect db_rows db_map);
use POSIX qw(strftime);

my $mock = EMMock->new(generate => [
		'github:runs=1300,deployments=8,pulls=10,seed=11,span_days=30,in_progress=2,rerun_ratio=0.1,deploys_pending=1'
]);
my $since = iso_epoch('2024-01-01T00:00:00Z');

my $node = PostgreSQL::Test::Cluster->new('sync_function');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000');
my $url = $mock->url('github');
$node->safe_psql('postgres',
	"SELECT engineering.add_source('gh', 'github', '$url', '{\"repository\": \"acme/shop\", \"since\": \"2024-01-01\"}')");

like($node->safe_psql('postgres', 'SELECT engineering.build_info()'),
	qr/not preloaded/, 'this server has no background worker');

# --- backfill ---------------------------------------------------------------
my $run = $node->safe_psql('postgres',
	"SELECT status, started_by, pages > 10, http_requests = pages, items_upserted > 0, error IS NULL
	 FROM engineering.sync('gh')");
is($run, 'ok|sync|t|t|t|t', 'sync() ran the backfill to the end');

my $world = $mock->world('github');
my $e = github_expect($world, 'acme/shop', since => $since);

my $runs = db_map($node,
	"SELECT external_id, status FROM engineering.pipeline_runs WHERE source_id = 1");
is_deeply($runs, { map { $_ => $e->{runs}{$_}{status} } keys %{ $e->{runs} } },
	'pipeline_runs hold every attempt of every run, with its status, and nothing else');
ok((grep { m{/2$} } keys %$runs) > 50, 're-run attempts are kept as separate rows');

my $log = $mock->requests(vendor => 'github');
my @run_lists = grep { $_->{path} =~ m{/actions/runs$} } @$log;
ok((grep { $_->{query} =~ /(^|&)page=2(&|$)/ } @run_lists), 'run lists were followed over several pages');
ok((grep { $_->{query} =~ /created=2024/ && $_->{query} !~ /(^|&)page=/ } @run_lists) > 2,
	'the window over the 1,000-result cap was split into smaller ones');
ok(!(grep { $_->{query} =~ /page=1[1-9]/ } @run_lists), 'no page beyond the cap was requested');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'every request was accepted by the API');

# times: every run's creation instant, whether GitHub wrote Z or +02:00
my %created = map { ("$_->{id}/" . ($_->{run_attempt} // 1)) => iso_epoch($_->{created_at}) }
  @{ $world->{repos}{'acme/shop'}{runs} };
my $queued = db_map($node,
	"SELECT external_id, extract(epoch FROM queued_at)::float8 FROM engineering.pipeline_runs
	 WHERE source_id = 1 AND attempt = 1 AND queued_at IS NOT NULL");
my @offset_runs = grep { $_->{created_at} =~ /\+02:00$/ } @{ $world->{repos}{'acme/shop'}{runs} };
ok(@offset_runs > 100, 'the world writes many times with +02:00');
my @wrong = grep { $created{$_} != $queued->{$_} } grep { exists $created{$_} } keys %$queued;
is(scalar(@wrong), 0, 'queued_at is the creation instant for Z and +02:00 alike')
  or diag("first mismatch: $wrong[0]: $created{$wrong[0]} vs $queued->{$wrong[0]}");

# deployments: status and deploy time from the first success status
my $deps = db_rows($node,
	"SELECT external_id, status, coalesce(extract(epoch FROM finished_at)::float8::text, ''), environment
	 FROM engineering.deployments WHERE source_id = 1");
is_deeply({ map { $_->[0] => [ $_->[1], $_->[2], $_->[3] ] } @$deps },
	{ map { my $d = $e->{deployments}{$_}; $_ => [ $d->{status}, $d->{finished} // '', $d->{environment} ] }
		  keys %{ $e->{deployments} } },
	'deployments: status, deploy time and environment as the statuses say');

# commits shipped by each deployment
my $links = db_rows($node,
	"SELECT d.external_id, string_agg(c.commit_sha, ',' ORDER BY c.committed_at, c.commit_sha)
	 FROM engineering.deployment_changes dc
	 JOIN engineering.deployments d ON d.id = dc.deployment_id
	 JOIN engineering.changes c ON c.id = dc.change_id
	 WHERE d.source_id = 1 GROUP BY 1");
my %expect_links = map { $_ => join(',', @{ $e->{links}{$_} }) }
  grep { @{ $e->{links}{$_} } } keys %{ $e->{links} };
is_deeply({ map { $_->[0] => $_->[1] } @$links }, \%expect_links,
	'each deployment is linked to the commits since the previous successful one (none for the first)');
ok(keys %expect_links >= 3, 'several deployments shipped commits');

# merged pull requests with the author date of their first commit
my $pulls = db_rows($node,
	"SELECT number, extract(epoch FROM merged_at)::float8, extract(epoch FROM first_commit_at)::float8
	 FROM engineering.pull_requests WHERE source_id = 1");
is_deeply({ map { $_->[0] => [ $_->[1], $_->[2] ] } @$pulls },
	{ map { $_ => [ $e->{pulls}{$_}{merged}, $e->{pulls}{$_}{first_commit} ] } keys %{ $e->{pulls} } },
	'merged pull requests, with first_commit_at from their commits');

# --- incremental ------------------------------------------------------------
$mock->clear_requests;
$run = $node->safe_psql('postgres',
	"SELECT status, items_upserted FROM engineering.sync('gh')");
is($run, 'ok|0', 'an unchanged API changes nothing');
$log = $mock->requests(vendor => 'github');
my @paths = sort map { $_->{path} =~ s{^/github/repos/acme/shop}{}r } @$log;
my @in_progress = sort map { "/actions/runs/$_->{id}" }
  grep { $_->{status} ne 'completed' } @{ $world->{repos}{'acme/shop'}{runs} };
my ($pending) = map { "/deployments/$_->{id}/statuses" }
  grep { @{ $_->{statuses} } == 1 } @{ $world->{repos}{'acme/shop'}{deployments} };
is_deeply(\@paths, [ sort('/actions/runs', @in_progress, '/deployments', $pending, '/pulls') ],
	'a re-sync asks for the newest runs, unfinished runs and deployments, and the first page of lists');

# things move on: a run completes, a new run, a new deployment, a merged pull request
my $now = time;
my $iso = sub { strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($_[0])) };
my $repo = $world->{repos}{'acme/shop'};
my ($running) = grep { $_->{status} ne 'completed' } @{ $repo->{runs} };
my $head = $repo->{commits}[-1]{sha};
$mock->mutate('github', op => 'upsert', repo => 'acme/shop', collection => 'runs', items => [
		{ id => $running->{id}, status => 'completed', conclusion => 'success',
		  updated_at => $iso->(iso_epoch($running->{run_started_at}) + 300) },
		{ id => 2000001, name => 'CI', path => '.github/workflows/ci.yml', workflow_id => 101,
		  head_branch => 'main', head_sha => $head, run_number => 9999, event => 'push',
		  status => 'in_progress', conclusion => undef, run_attempt => 1,
		  created_at => $iso->($now - 60), run_started_at => $iso->($now - 50), updated_at => $iso->($now - 50) } ]);
$mock->mutate('github', op => 'upsert', repo => 'acme/shop', collection => 'deployments', items => [
		{ id => 600001, sha => $head, ref => 'main', task => 'deploy', environment => 'production',
		  created_at => $iso->($now - 30), updated_at => $iso->($now - 20),
		  statuses => [ { id => 990001, state => 'success', created_at => $iso->($now - 20) } ] } ]);
$mock->mutate('github', op => 'upsert', repo => 'acme/shop', collection => 'pulls', items => [
		{ number => 500, title => 'Fresh PR', state => 'closed', user => 'dev1',
		  created_at => $iso->($now - 3600), updated_at => $iso->($now - 10), closed_at => $iso->($now - 15),
		  merged_at => $iso->($now - 15), merge_commit_sha => $head, base_ref => 'main', head_ref => 'fresh',
		  head_sha => $head, commits => [$head] } ]);
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, error FROM engineering.sync('gh')");
is($run, 'ok|', 'the incremental sync succeeded');

is($node->safe_psql('postgres',
		"SELECT status, finished_at IS NOT NULL FROM engineering.pipeline_runs
		 WHERE source_id = 1 AND external_id = '$running->{id}/1'"),
	'success|t', 'a run that was in progress is now complete');
is($node->safe_psql('postgres',
		"SELECT status FROM engineering.pipeline_runs WHERE source_id = 1 AND external_id = '2000001/1'"),
	'running', 'a new run was fetched');
is($node->safe_psql('postgres',
		"SELECT d.status, count(dc.change_id) > 0
		 FROM engineering.deployments d LEFT JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
		 WHERE d.source_id = 1 AND d.external_id = '600001' GROUP BY 1"),
	'success|t', 'a new deployment was fetched and linked to its commits');
is($node->safe_psql('postgres',
		"SELECT title, first_commit_at IS NOT NULL FROM engineering.pull_requests WHERE source_id = 1 AND number = 500"),
	'Fresh PR|t', 'a newly merged pull request was fetched');
$log = $mock->requests(vendor => 'github');
is(scalar(grep { $_->{path} =~ m{/actions/runs$} } @$log), 1, 'one page of runs was enough');
is(scalar(grep { $_->{path} =~ m{/deployments/\d+/statuses$} } @$log), 2,
	'statuses were fetched only for the new and the unfinished deployment');

# the new run fails, then is re-run successfully: the next sync keeps both attempts
$mock->mutate('github', op => 'upsert', repo => 'acme/shop', collection => 'runs', items => [
		{ id => 2000001, status => 'completed', conclusion => 'failure', updated_at => $iso->($now - 20) } ]);
$mock->mutate('github', op => 'rerun', repo => 'acme/shop', id => 2000001, status => 'completed',
	conclusion => 'success', run_started_at => $iso->($now - 5), updated_at => $iso->($now - 1));
$node->safe_psql('postgres', "SELECT engineering.sync('gh')");
is_deeply(db_map($node,
		"SELECT external_id, status FROM engineering.pipeline_runs WHERE source_id = 1 AND external_id LIKE '2000001/%'"),
	{ '2000001/1' => 'failure', '2000001/2' => 'success' },
	'a re-run adds a row for the new attempt and the first attempt keeps its own outcome');

# --- one sync per source at a time ----------------------------------------
my $holder = $node->background_psql('postgres');
$holder->query_safe('SELECT pg_advisory_lock(1162695513, 1)');
my ($ret, $stdout, $stderr) = $node->psql('postgres', "SELECT engineering.sync('gh')");
isnt($ret, 0, 'sync() refuses a source another session is syncing');
like($stderr, qr/source "gh" is being synced by another process/, 'and says why');
$holder->quit;

# sync() is not re-entrant and rolls back with its transaction
($ret, $stdout, $stderr) = $node->psql('postgres',
	"BEGIN; SELECT count(*) FROM engineering.sync('gh'); ROLLBACK; SELECT count(*) FROM engineering.sync_runs WHERE source_id = 1");
is($stdout, "1\n4", 'a sync inside a rolled-back transaction leaves no run row');

$node->stop;
$mock->stop;
done_testing();
