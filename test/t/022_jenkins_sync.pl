# Jenkins connector end to end with engineering.sync() against the mock
# Jenkins: a folder and a multibranch project expand into their jobs;
# allBuilds is paged with {M,N} ranges down to the backfill start; builds
# become exactly the pipeline_runs (epoch milliseconds to the millisecond)
# and deployments the API describes; a re-sync asks for one page per job and
# the builds still running; later syncs pick up new builds, finish running
# ones (fetched by number once they are below the watermark) and give up
# those Jenkins deleted.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows db_map);
use EMCicdTest qw(jenkins_expect query_param);

my ($user, $token) = ('ci-bot', '11a2b3c4d5e6f7a8b9c0Jenkins');
my $mock = EMMock->new(generate => [
		"jenkins:builds=260,deploys=40,running=1,seed=4,span_days=20,user=$user,token=$token" ]);
my $since_ms = iso_epoch('2024-01-05T00:00:00Z') * 1000;
my %opt = (roots => [ 'shop', 'web' ], since_ms => $since_ms, deployment_jobs => qr{/deploy-},
	environment_parameter => 'ENVIRONMENT');

my $node = PostgreSQL::Test::Cluster->new('jenkins_sync');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000');
my $url = $mock->url('jenkins');
$node->safe_psql('postgres', qq{
	SELECT engineering.add_source('jk', 'jenkins', '$url', '{"jobs": ["shop", "web"], "user": "$user",
	    "service": "shop", "service_map": {"web": "storefront"}, "deployment_jobs": "/deploy-",
	    "environment_parameter": "ENVIRONMENT", "since": "2024-01-05"}', '$token')});
my $log_offset = -s $node->logfile;

# --- backfill ---------------------------------------------------------------
my $run = $node->safe_psql('postgres',
	"SELECT status, error IS NULL, http_requests = pages, items_upserted > 300 FROM engineering.sync('jk')");
is($run, 'ok|t|t|t', 'sync() ran the backfill to the end');

my $world = $mock->world('jenkins');
my $e = jenkins_expect($world, %opt);
my $fmt = sub { join ' ', map { $_ // '' } @_ };
my $runs = db_map($node,
	"SELECT external_id, concat_ws(' ', status, (extract(epoch FROM started_at) * 1000)::bigint,
	                              coalesce((extract(epoch FROM finished_at) * 1000)::bigint::text, ''),
	                              coalesce((extract(epoch FROM queued_at) * 1000)::bigint::text, ''),
	                              coalesce(commit_sha, ''), coalesce(branch, ''))
	 FROM engineering.pipeline_runs WHERE source_id = 1");
is_deeply($runs,
	{ map { my $x = $e->{runs}{$_};
			$_ => $fmt->($x->{status}, $x->{started}, $x->{finished}, $x->{queued}, $x->{sha}, $x->{branch}) }
		  keys %{ $e->{runs} } },
	'pipeline_runs: every build since the backfill start, its status, times to the millisecond, sha and branch');
my %per_job;
$per_job{ $_ =~ s/#\d+$//r }++ for keys %$runs;
is_deeply([ sort keys %per_job ], [ 'shop/build', 'shop/deploy-prod', 'web/feature%2Flogin', 'web/main' ],
	'the folder and the multibranch project were expanded into their jobs');
ok($per_job{'shop/build'} > 200 && $per_job{'shop/build'} < 260, "the backfill start cut the history ($per_job{'shop/build'} of 260)");

is_deeply(db_map($node, "SELECT DISTINCT pipeline, service FROM engineering.pipeline_runs WHERE source_id = 1"),
	{ 'shop/build' => 'shop', 'shop/deploy-prod' => 'shop', 'web/main' => 'storefront', 'web/feature%2Flogin' => 'storefront' },
	'services: service_map of the configured path, else config service');

my $deps = db_map($node,
	"SELECT external_id, concat_ws(' ', status, environment,
	                              coalesce((extract(epoch FROM finished_at) * 1000)::bigint::text, ''))
	 FROM engineering.deployments WHERE source_id = 1");
is_deeply($deps,
	{ map { my $x = $e->{deployments}{$_}; $_ => $fmt->($x->{status}, $x->{environment}, $x->{finished}) }
		  keys %{ $e->{deployments} } },
	'deployments: the builds of deployment jobs, environment from the ENVIRONMENT parameter');
is_deeply(db_map($node, "SELECT environment, count(*) > 0 FROM engineering.deployments GROUP BY 1"),
	{ production => 't', staging => 't' }, 'both environments occur');

my $log = $mock->requests(vendor => 'jenkins');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'every request carried the right user and API token');
my @ranges = map { (query_param($_->{query}, 'tree') // '') =~ /\{(\d+),(\d+)\}$/ ? "$1,$2" : 'none' }
  grep { $_->{path} eq '/jenkins/job/shop/job/build/api/json' } @$log;
is_deeply(\@ranges, [ '0,100', '100,200', '200,300' ],
	'allBuilds was paged with {M,N} ranges and stopped at the page that reached the backfill start');
ok((grep { $_->{path} eq '/jenkins/job/web/job/feature%252Flogin/api/json' } @$log),
	'a branch job of a multibranch project is addressed with its name encoded once more');

is_deeply(db_map($node, "SELECT key, (value->>'number')::int FROM engineering.sources, jsonb_each(cursor->'jobs')"),
	{ map { my $j = $_; $j => (sort { $b <=> $a } map { $_->{number} } @{ $world->{jobs}{$j}{builds} })[0] }
		  'shop/build', 'shop/deploy-prod', 'web/main', 'web/feature%2Flogin' },
	'each job has a watermark at its newest build');

# --- incremental ------------------------------------------------------------
my @running = sort grep { $e->{runs}{$_}{status} eq 'running' } keys %{ $e->{runs} };
is(scalar(@running), 3, 'three builds are still running');
my $build_path = sub { my ($job, $n) = split /#/, $_[0]; '/jenkins' . join('', map { "/job/$_" } split m{/}, $job) . "/$n/api/json" };
my $lists = [ map { "/jenkins$_/api/json" } '/job/shop', '/job/shop/job/build', '/job/shop/job/deploy-prod',
	'/job/web', '/job/web/job/main', '/job/web/job/feature%252Flogin' ];

$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted FROM engineering.sync('jk')");
is($run, 'ok|0', 'an unchanged Jenkins changes nothing');
is_deeply([ sort map { $_->{path} } @{ $mock->requests(vendor => 'jenkins') } ],
	[ sort(@$lists, map { $build_path->($_) } @running) ],
	'a re-sync asks for the first page of each job and for each running build by number');

# a new build starts while the old one still runs; the running deployment succeeds
my ($b260) = grep { $_->{number} == 260 } @{ $world->{jobs}{'shop/build'}{builds} };
ok($b260->{building}, 'build 260 of shop/build is running');
my ($running_deploy) = grep { $_->{building} } @{ $world->{jobs}{'shop/deploy-prod'}{builds} };
my $t = $b260->{timestamp} + 600_000;
$mock->mutate('jenkins', op => 'upsert_builds', job => 'shop/build', builds => [
		{ number => 261, result => undef, building => \1, timestamp => $t, duration => 0,
		  sha => 'c0ffee' . ('0' x 34), branch => 'refs/remotes/origin/main', queuing_ms => 1500 } ]);
$mock->mutate('jenkins', op => 'upsert_builds', job => 'shop/deploy-prod', builds => [
		{ number => $running_deploy->{number}, result => 'SUCCESS', building => \0, duration => 123_456 } ]);
$mock->clear_requests;
is($node->safe_psql('postgres', "SELECT status FROM engineering.sync('jk')"), 'ok', 'the next sync succeeded');
is($node->safe_psql('postgres',
		"SELECT status, (extract(epoch FROM queued_at) * 1000)::bigint FROM engineering.pipeline_runs WHERE external_id = 'shop/build#261'"),
	'running|' . ($t - 1500), 'the new build was fetched');
is($node->safe_psql('postgres',
		"SELECT status, (extract(epoch FROM finished_at) * 1000)::bigint FROM engineering.deployments
		 WHERE external_id = 'shop/deploy-prod#$running_deploy->{number}'"),
	'success|' . ($running_deploy->{timestamp} + 123_456), 'the running deployment has succeeded');
is($node->safe_psql('postgres', "SELECT cursor->'jobs'->'shop/build'->>'number' FROM engineering.sources"),
	'261', 'the watermark moved to the new build');

# build 260 (now below the watermark) fails; 261 is deleted while running
$mock->mutate('jenkins', op => 'upsert_builds', job => 'shop/build', builds => [
		{ number => 260, result => 'FAILURE', building => \0, duration => 77_000 } ]);
$mock->mutate('jenkins', op => 'delete_build', job => 'shop/build', number => 261);
$mock->clear_requests;
is($node->safe_psql('postgres', "SELECT status FROM engineering.sync('jk')"), 'ok', 'the following sync succeeded');
is_deeply(db_map($node,
		"SELECT external_id, concat_ws(' ', status, coalesce((extract(epoch FROM finished_at) * 1000)::bigint::text, ''),
		                                coalesce(attributes->>'jenkins_missing', ''))
		 FROM engineering.pipeline_runs WHERE external_id IN ('shop/build#260', 'shop/build#261')"),
	{ 'shop/build#260' => 'failure ' . ($b260->{timestamp} + 77_000) . ' ',
	  'shop/build#261' => 'cancelled  true' },
	'the build below the watermark was fetched by number and has failed; the deleted one is given up');
$log = $mock->requests(vendor => 'jenkins');
ok((grep { $_->{path} eq '/jenkins/job/shop/job/build/260/api/json' && $_->{status} == 200 } @$log)
	  && (grep { $_->{path} eq '/jenkins/job/shop/job/build/261/api/json' && $_->{status} == 404 } @$log),
	'both were asked for by number');
$mock->clear_requests;
$node->safe_psql('postgres', "SELECT engineering.sync('jk')");
ok(!(grep { $_->{path} =~ m{/job/build/26[01]/} } @{ $mock->requests(vendor => 'jenkins') }),
	'final builds are not asked for again');

# the token never reached the server log
my $server_log = slurp_file($node->logfile, $log_offset);
like($server_log, qr/engineering\.sync\('jk'\)/, 'the server log covers the syncs');
unlike($server_log, qr/\Q$token\E/, 'the token does not appear in the server log');

$node->stop;
$mock->stop;
done_testing();
