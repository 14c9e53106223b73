# GitLab connector end to end with engineering.sync() against the mock
# GitLab API: a backfill over several pages of pipelines, deployments and
# merged merge requests stores exactly what the API holds (times written
# with Z, milliseconds and +02:00 alike), without x-total; the pages are
# re-anchored on updated_at; a re-sync of an unchanged API asks for one
# page per list; a later sync fetches only what changed and updates what
# moved on (a pipeline that finished, a deployment that succeeded).
use strict;
use warnings;
use utf8;
use Encode qw(decode);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use HTTP::Tiny;
use POSIX qw(strftime);
use EMMock;
use EMSyncTest qw(iso_epoch db_rows db_map);
use EMCicdTest qw(ms gitlab_expect query_param);

my $token = 'glpat-Secret-4711-token';
my $mock = EMMock->new(generate => [
		"gitlab:pipelines=260,deployments=14,merge_requests=25,seed=5,span_days=30,running=2,deploys_running=1,offset_every=7,count_limit=50,token=$token"
]);
my $since = iso_epoch('2024-01-01T00:00:00Z');

# one merge request with 130 commits, so that its commits take two pages
my $world = $mock->world('gitlab');
my $p = $world->{projects}{'acme/shop'};
$mock->mutate('gitlab', op => 'upsert', project => 'acme/shop', collection => 'merge_requests', items => [
		{ iid => 900, title => 'Big refactoring', state => 'merged', author => 'dev2',
		  created_at => '2024-01-20T10:00:00.000Z', updated_at => '2024-01-25T10:00:01.000Z',
		  merged_at => '2024-01-25T10:00:00.000Z', merge_commit_sha => $p->{commits}[-1]{id},
		  sha => $p->{commits}[-1]{id}, target_branch => 'main', source_branch => 'refactor',
		  commits => [ map { $_->{id} } @{ $p->{commits} }[ 0 .. 129 ] ] } ]);
$world = $mock->world('gitlab');
$p = $world->{projects}{'acme/shop'};

my $node = PostgreSQL::Test::Cluster->new('gitlab_sync');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000');
my $url = $mock->url('gitlab');
$node->safe_psql('postgres',
	"SELECT engineering.add_source('gl', 'gitlab', '$url', '{\"project\": \"acme/shop\", \"since\": \"2024-01-01\"}', '$token')");
# the statement above is logged with the token (log_statement = all): what
# the extension itself logs comes after it
my $log_offset = -s $node->logfile;

# the mock behaves as GitLab does above count_limit records: no totals
my $res = HTTP::Tiny->new->get("$url/projects/acme%2Fshop/pipelines?per_page=100",
	{ headers => { 'PRIVATE-TOKEN' => $token } });
is($res->{status}, 200, 'the mock answers a list of pipelines');
ok(!exists $res->{headers}{'x-total'} && !exists $res->{headers}{'x-total-pages'},
	'above count_limit records the list has no x-total and no x-total-pages');
is($res->{headers}{'x-next-page'}, '2', 'but says which page is next');
unlike($res->{headers}{link}, qr/rel="last"/, 'and its Link has no rel="last"');
$res = HTTP::Tiny->new->get("$url/projects/acme/shop/pipelines", { headers => { 'PRIVATE-TOKEN' => $token } });
is($res->{status}, 404, 'a project path must be URL-encoded, as on GitLab');
$mock->clear_requests;

# --- backfill ---------------------------------------------------------------
my $run = $node->safe_psql('postgres',
	"SELECT status, error IS NULL, pages > 20, http_requests = pages, items_upserted > 250
	 FROM engineering.sync('gl')");
is($run, 'ok|t|t|t|t', 'sync() ran the backfill to the end');

my $e = gitlab_expect($world, 'acme/shop', since => $since);
my $fmt = sub { join ' ', map { $_ // '' } @_ };
my $runs = db_map($node,
	"SELECT external_id, concat_ws(' ', status, coalesce((extract(epoch FROM queued_at) * 1000)::bigint::text, ''),
	                                coalesce((extract(epoch FROM started_at) * 1000)::bigint::text, ''),
	                                coalesce((extract(epoch FROM finished_at) * 1000)::bigint::text, ''))
	 FROM engineering.pipeline_runs WHERE source_id = 1");
is_deeply($runs,
	{ map { my $x = $e->{pipelines}{$_}; $_ => $fmt->($x->{status}, $x->{queued}, $x->{started}, $x->{finished}) }
		  keys %{ $e->{pipelines} } },
	'pipeline_runs: every pipeline with its status and times to the millisecond, and nothing else');
is(scalar(keys %$runs), 260, 'all 260 pipelines');
ok((grep { $_->{created_at} =~ /\+02:00$/ } @{ $p->{pipelines} }) > 20, 'the world writes many times with +02:00');

my $deps = db_map($node,
	"SELECT external_id, concat_ws(' ', status, environment,
	                                coalesce((extract(epoch FROM finished_at) * 1000)::bigint::text, ''))
	 FROM engineering.deployments WHERE source_id = 1");
is_deeply($deps,
	{ map { my $x = $e->{deployments}{$_}; $_ => $fmt->($x->{status}, $x->{environment}, $x->{finished}) }
		  keys %{ $e->{deployments} } },
	'deployments: status, environment and deploy time as the API says');

my $links = db_rows($node,
	"SELECT d.external_id, string_agg(c.commit_sha, ',' ORDER BY c.committed_at, c.commit_sha)
	 FROM engineering.deployment_changes dc
	 JOIN engineering.deployments d ON d.id = dc.deployment_id
	 JOIN engineering.changes c ON c.id = dc.change_id
	 WHERE d.source_id = 1 GROUP BY 1");
my %commit_time = map { $_->{id} => iso_epoch($_->{committed_date}) } @{ $p->{commits} };
my %expect_links = map {
	$_ => join(',', sort { $commit_time{$a} <=> $commit_time{$b} || $a cmp $b } @{ $e->{links}{$_} })
} grep { @{ $e->{links}{$_} } } keys %{ $e->{links} };
is_deeply({ map { $_->[0] => $_->[1] } @$links }, \%expect_links,
	'each successful deployment is linked to the commits since the previous one of its environment');
ok(keys %expect_links >= 5, 'several deployments shipped commits');
my $first_of_env = grep { !exists $e->{links}{$_} && $e->{deployments}{$_}{status} eq 'success' } keys %{ $e->{deployments} };
is($first_of_env, 2, 'the first success of each environment (production, staging) records nothing');

my $mrs = db_map($node,
	"SELECT number, concat_ws(' ', (extract(epoch FROM merged_at) * 1000)::bigint, merge_commit_sha,
	                          coalesce((extract(epoch FROM first_commit_at) * 1000)::bigint::text, ''))
	 FROM engineering.pull_requests WHERE source_id = 1");
is_deeply($mrs,
	{ map { my $x = $e->{merge_requests}{$_}; $_ => $fmt->($x->{merged}, $x->{sha}, $x->{first_commit}) }
		  keys %{ $e->{merge_requests} } },
	'merged merge requests with the landed commit (merge, squash or head) and their first commit');

# how it was read
my $log = $mock->requests(vendor => 'gitlab');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'every request carried the right PRIVATE-TOKEN');
my @lists = grep { $_->{path} =~ m{/pipelines$} } @$log;
ok(@lists >= 3, 'pipelines were read over several pages (' . scalar(@lists) . ' requests)');
my @after = map { query_param($_->{query}, 'updated_after') } @lists;
is_deeply(\@after, [ sort @after ], 'each page starts after the newest update of the page before');
ok(!(grep { defined query_param($_->{query}, 'page') } @lists), 'no page was asked for by offset');
ok((grep { query_param($_->{query}, 'order_by') eq 'updated_at' && query_param($_->{query}, 'sort') eq 'asc' } @lists) == @lists,
	'lists are read oldest update first');
is(scalar(grep { $_->{path} =~ m{/pipelines/\d+$} } @$log), 260, 'one detail request per pipeline');
ok((grep { $_->{path} =~ m{/merge_requests/900/commits$} && (query_param($_->{query}, 'page') // '') eq '2' } @$log),
	'the commits of a merge request were followed to their second page by x-next-page');
is(scalar(grep { $_->{path} =~ m{/repository/compare$} } @$log), scalar(keys %{ $e->{links} }),
	'one compare per successful deployment after the first of its environment');

my $cursor = $node->safe_psql('postgres',
	"SELECT cursor->>'pipelines_updated', cursor->>'deployments_updated', cursor->>'merge_requests_updated'
	 FROM engineering.sources WHERE name = 'gl'");
my ($newest_pipeline) = sort { $b <=> $a } map { iso_epoch($_->{updated_at}) } @{ $p->{pipelines} };
like($cursor, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\|.+\|.+$/, 'every stream has a watermark');
is(iso_epoch((split /\|/, $cursor)[0]), $newest_pipeline, 'the pipelines watermark is the newest update read');

# --- incremental ------------------------------------------------------------
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted FROM engineering.sync('gl')");
is($run, 'ok|0', 'an unchanged API changes nothing');
$log = $mock->requests(vendor => 'gitlab');
is_deeply([ sort map { $_->{path} =~ s{^/gitlab/projects/acme%2Fshop}{}r } @$log ],
	[ '/deployments', '/merge_requests', '/pipelines' ],
	'a re-sync asks for one page of each list and nothing else');

# things move on: a running pipeline finishes, a new one starts, the
# running deployment succeeds, a merge request is merged
my $now = time;
my $iso = sub { strftime('%Y-%m-%dT%H:%M:%S.000Z', gmtime($_[0])) };
my ($running) = grep { $_->{status} eq 'running' } @{ $p->{pipelines} };
my ($pending_dep) = grep { $_->{status} eq 'running' } @{ $p->{deployments} };
my $head = $p->{commits}[-1]{id};
$mock->mutate('gitlab', op => 'upsert', project => 'acme/shop', collection => 'pipelines', items => [
		{ id => $running->{id}, status => 'success', started_at => $iso->($now - 700),
		  finished_at => $iso->($now - 100), duration => 600, updated_at => $iso->($now - 99) },
		{ id => 7999999, iid => 9999, status => 'running', source => 'push', ref => 'main', sha => $head,
		  created_at => $iso->($now - 60), started_at => $iso->($now - 50), updated_at => $iso->($now - 50) } ]);
$mock->mutate('gitlab', op => 'upsert', project => 'acme/shop', collection => 'deployments', items => [
		{ id => $pending_dep->{id}, status => 'success', updated_at => $iso->($now - 30),
		  job => { %{ $pending_dep->{job} }, status => 'success', finished_at => $iso->($now - 31) } } ]);
$mock->mutate('gitlab', op => 'upsert', project => 'acme/shop', collection => 'merge_requests', items => [
		{ iid => 901, title => 'Fresh ✓', state => 'merged', author => 'dev1', created_at => $iso->($now - 3600),
		  updated_at => $iso->($now - 10), merged_at => $iso->($now - 15), merge_commit_sha => $head,
		  sha => $head, target_branch => 'main', source_branch => 'fresh', commits => [$head] } ]);
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, error FROM engineering.sync('gl')");
is($run, 'ok|', 'the incremental sync succeeded');

is($node->safe_psql('postgres',
		"SELECT status, (extract(epoch FROM finished_at))::bigint FROM engineering.pipeline_runs
		 WHERE source_id = 1 AND external_id = '$running->{id}'"),
	'success|' . ($now - 100), 'a pipeline that was running has finished');
is($node->safe_psql('postgres',
		"SELECT status, attributes->>'iid' FROM engineering.pipeline_runs WHERE source_id = 1 AND external_id = '7999999'"),
	'running|9999', 'a new pipeline was fetched');
my ($prev_success) = map { $_->{sha} }
  sort { iso_epoch($b->{job}{finished_at}) <=> iso_epoch($a->{job}{finished_at}) }
  grep { $_->{status} eq 'success' && ($_->{environment} // 'production') eq ($pending_dep->{environment} // 'production') }
  @{ $p->{deployments} };
my %pos = map { $p->{commits}[$_]{id} => $_ } 0 .. $#{ $p->{commits} };
my $shipped = $pos{ $pending_dep->{sha} } - $pos{$prev_success};
is($node->safe_psql('postgres',
		"SELECT d.status, count(dc.change_id)
		 FROM engineering.deployments d LEFT JOIN engineering.deployment_changes dc ON dc.deployment_id = d.id
		 WHERE d.source_id = 1 AND d.external_id = '$pending_dep->{id}' GROUP BY 1"),
	"success|$shipped", "the deployment that was running succeeded and is linked to the $shipped commits it shipped");
is(decode('UTF-8', $node->safe_psql('postgres',
		"SELECT title, first_commit_at IS NOT NULL FROM engineering.pull_requests WHERE source_id = 1 AND number = 901")),
	'Fresh ✓|t', 'a newly merged merge request was fetched with its commits');
$log = $mock->requests(vendor => 'gitlab');
is_deeply([ sort map { $_->{path} =~ s{^/gitlab/projects/acme%2Fshop}{}r } @$log ],
	[ sort('/deployments', '/merge_requests', '/merge_requests/901/commits', '/pipelines',
		"/pipelines/$running->{id}", '/pipelines/7999999', ($shipped ? ('/repository/compare') : ())) ],
	'the sync asked only for the lists, the details of what changed, the new compare and the new commits');

# a pipeline deleted in GitLab while it was listed is deleted here too
$mock->mutate('gitlab', op => 'upsert', project => 'acme/shop', collection => 'pipelines', items => [
		{ id => 7999999, status => 'success', finished_at => $iso->($now - 5), updated_at => $iso->($now - 4) } ]);
$mock->fault(match => { vendor => 'gitlab', path => '/pipelines/7999999$' }, kind => 'status', status => 404,
	body => { message => '404 Not found' });
is($node->safe_psql('postgres', "SELECT status FROM engineering.sync('gl')"), 'ok', 'a 404 on a detail is not an error');
is($node->safe_psql('postgres', "SELECT count(*) FROM engineering.pipeline_runs WHERE external_id = '7999999'"),
	'0', 'the deleted pipeline is gone');
$mock->clear_faults;

# the token never reached the server log
my $server_log = slurp_file($node->logfile, $log_offset);
like($server_log, qr/engineering\.sync\('gl'\)/, 'the server log covers the syncs');
unlike($server_log, qr/\Q$token\E/, 'the token does not appear in the server log');

$node->stop;
$mock->stop;
done_testing();
