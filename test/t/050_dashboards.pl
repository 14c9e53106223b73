# Every query of the Grafana dashboards (dashboards/*.json) runs, as
# Grafana would run it, against a database filled like the demo's: the
# mock API serves a generated organisation (test/mock/org.py, 50 days
# instead of 180), test/demo/register.sql registers its sources and SLOs,
# engineering.sync() pulls everything, and the DORA and SLO steps of the
# demo follow (link_changes, attribute_incidents, _evaluate_slo_alerts),
# then its people and surveys (test/demo/people.sql).
#
# EMGrafana expands template variables and macros the way Grafana does
# (its header lists what is supported; anything else fails), then checks
# each result against what its panel needs: a sorted time column and
# numeric values for time series, a number for stat panels, columns for
# every override, and, with the dashboards' default variables, data: no
# empty panel.  Two more scenarios (the first service; the first two)
# must run without errors and return the right columns.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);
use EMMock;
use EMGrafana qw(load_dashboards check_dashboard);

my $root = File::Spec->rel2abs(dirname(__FILE__) . '/../..');
my $mock = EMMock->new(org => 'seed=11,days=50,sli_days=10');

my $node = PostgreSQL::Test::Cluster->new('dashboards');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.enabled = off
timezone = 'UTC'
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

# --- the demo's sources, synced --------------------------------------------
my $manifest = JSON::PP->new->canonical->encode($mock->org_manifest);
my ($ret, $out, $err) = $node->psql('postgres', '', on_error_stop => 1,
	extra_params => [ '-v', 'mock=' . $mock->base_url, '-v', "manifest=$manifest",
		'-f', "$root/test/demo/register.sql" ]);
is($ret, 0, 'register.sql registers the organisation') or diag($err);
my @kinds = split /\n/, $node->safe_psql('postgres', 'SELECT DISTINCT kind FROM engineering.sources ORDER BY 1');
is_deeply(\@kinds, [qw(backstage github gitlab jenkins opsgenie pagerduty prometheus)],
	'one kind of source per vendor the mock serves');

my $start = time;
for my $round (1 .. 100)
{
	my @due = split /\n/, $node->safe_psql('postgres', q{
		SELECT name FROM engineering.source_status
		WHERE last_synced_at IS NULL OR pending_tasks > 0 ORDER BY id});
	last unless @due;
	for my $name (@due)
	{
		my $status = $node->safe_psql('postgres', qq{
			SET engineering_metrics.max_pages_per_run = 10000;
			SELECT status || coalesce(': ' || error, '') FROM engineering.sync('$name')});
		is($status, 'ok', "sync of $name") if $status ne 'ok';
	}
}
is($node->safe_psql('postgres', q{
	SELECT count(*) FROM engineering.source_status
	WHERE last_synced_at IS NULL OR pending_tasks > 0 OR last_status <> 'ok'}),
	'0', sprintf('every source synced (%.0f s)', time - $start));
$node->safe_psql('postgres', q{
	SELECT engineering.link_changes(), engineering.attribute_incidents();
	SELECT engineering._evaluate_slo_alerts();});
# the organisation's people, bots and two surveys, as the demo records them
($ret, $out, $err) = $node->psql('postgres', '', on_error_stop => 1,
	extra_params => [ '-v', "manifest=$manifest", '-f', "$root/test/demo/people.sql" ]);
is($ret, 0, 'people.sql records people, bots and surveys') or diag($err);

# the data the panels need is there, as in the demo
my $counts = $node->safe_psql('postgres', q{
	SELECT (SELECT count(DISTINCT service) FROM engineering.deployments WHERE status = 'success'),
	       (SELECT count(*) > 1000 FROM engineering.pipeline_runs),
	       (SELECT count(*) > 0 FROM engineering.deployment_changes WHERE linked_by = 'inferred'),
	       (SELECT count(*) > 5 FROM engineering.incidents WHERE cause_deployment_id IS NOT NULL),
	       (SELECT count(DISTINCT slo_id) FROM engineering.slo_measurements),
	       (SELECT bool_or(slo = 'checkout-availability' AND severity = 'page')
	               AND bool_or(slo = 'search-latency' AND severity = 'ticket')
	        FROM engineering.slo_alerts() WHERE firing)});
is($counts, '8|t|t|t|3|t',
	'eight deploying services, pipeline runs, inferred change links, attributed incidents, three SLOs fed by Prometheus, a page and a ticket firing');

# --- provisioning -----------------------------------------------------------
my $dashboards = load_dashboards("$root/dashboards");
cmp_ok(scalar @$dashboards, '>=', 4, 'four dashboards or more');
my $ds_file = slurp_file("$root/dashboards/provisioning/datasources/engineering_metrics.yaml");
my ($ds_uid) = $ds_file =~ /^\s*uid:\s*(\S+)/m;
like($ds_file, qr/^\s*type:\s*grafana-postgresql-datasource\b/m, 'the provisioned data source is PostgreSQL');
like(slurp_file("$root/dashboards/provisioning/dashboards/engineering_metrics.yaml"),
	qr/^\s*path:\s*\$\{EM_DASHBOARDS_DIR\}/m, 'the dashboard provider reads EM_DASHBOARDS_DIR');
my %uids;
for my $d (@$dashboards)
{
	my $dash = $d->{dashboard};
	ok(!$uids{ $dash->{uid} }++, "$dash->{uid}: a uid of its own");
	my ($dsvar) = grep { $_->{type} eq 'datasource' } @{ $dash->{templating}{list} };
	is($dsvar && $dsvar->{current}{value}, $ds_uid, "$dash->{uid}: its data source defaults to the provisioned one");
}

# --- the DORA overview shows each graded figure with its own level -----------
# (README, "DORA overview": the stat row shows every figure of dora() with
# its *_level): a stat panel per figure that has a level column, selecting
# that figure and that level, not another one's.
{
	my ($overview) = grep { $_->{dashboard}{uid} eq 'em-dora-overview' } @$dashboards;
	my @graded = split /\n/, $node->safe_psql('postgres', q{
		SELECT a.attname FROM pg_attribute a
		WHERE a.attrelid = 'engineering.dora_report'::regclass AND a.attnum > 0
		  AND EXISTS (SELECT 1 FROM pg_attribute l WHERE l.attrelid = a.attrelid
		              AND l.attname = a.attname || '_level')
		ORDER BY a.attnum});
	cmp_ok(scalar @graded, '>=', 4, 'dora_report has four figures with a level column of the same name or more');
	my @stats = grep { $_->{type} eq 'stat' } @{ $overview->{dashboard}{panels} };
	for my $figure (@graded)
	{
		my @showing = grep {
			my $sql = join "\n", map { $_->{rawSql} // '' } @{ $_->{targets} };
			my %levels = map { $_ => 1 } $sql =~ /\bd\.(\w+)_level\b/g;
			$sql =~ /\bd\.\Q$figure\E\b(?!_)/ && $levels{$figure} && keys(%levels) == 1
		} @stats;
		is(scalar @showing, 1, "em-dora-overview: one stat panel shows $figure with ${figure}_level");
	}
}

# --- every query of every dashboard, in three scenarios ----------------------
my $psql = sub { my ($script) = @_; return $node->psql('postgres', $script); };
my $to = time;
my $from = $to - 45 * 86400;
for my $d (@$dashboards)
{
	my $uid = $d->{dashboard}{uid};
	for my $scenario (qw(default one two))
	{
		my @results = check_dashboard($d->{dashboard}, $psql, $from, $to, $scenario);
		cmp_ok(scalar @results, '>', 5, "$uid [$scenario]: queries found");
		for my $r (@results)
		{
			ok(!@{ $r->{problems} }, "$uid [$scenario] $r->{label}")
			  or diag(join("\n", @{ $r->{problems} }) . "\n-- as run:\n$r->{sql}");
		}
	}
}

# --- the expander itself, on Grafana's own examples ---------------------------
{
	use EMGrafana qw(expand_macros interpolate rfc3339);
	my ($f, $t) = (1492750877, 1492751177.5);
	is(rfc3339($t), '2017-04-21T05:06:17.5Z', 'RFC 3339 with the fraction Go keeps');
	is(expand_macros('WHERE $__timeFilter(created_at)', $f, $t),
		"WHERE created_at BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17.5Z'", '$__timeFilter');
	is(expand_macros(q{SELECT $__timeGroupAlias(ts, '5m'), $__timeGroup(ts,'1h') FROM x}, $f, $t),
		q{SELECT floor(extract(epoch from ts)/300)*300 AS "time", floor(extract(epoch from ts)/3600)*3600 FROM x},
		'$__timeGroupAlias and $__timeGroup');
	is(expand_macros('SELECT $__timeGroup(ts,1d), 1', $f, $t),
		q{SELECT floor(extract(epoch from ts)/86400)*86400 AS "time", 1}, '$__timeGroup followed by a comma is aliased');
	is(expand_macros('$__unixEpochFilter(t) $__timeFrom() $__timeTo()', $f, $t),
		"t >= 1492750877 AND t <= 1492751177 '2017-04-21T05:01:17Z' '2017-04-21T05:06:17.5Z'", 'epoch filters');
	# as in Grafana, arguments end at the first ")" (here "coalesce(a" and
	# "b", of which the column is the first): the SQL comes out broken
	is(expand_macros('$__timeFilter(coalesce(a, b))', $f, $t),
		"coalesce(a BETWEEN '2017-04-21T05:01:17Z' AND '2017-04-21T05:06:17.5Z')",
		'a macro argument cannot hold parentheses');
	ok(!eval { expand_macros('$__timeSomething(x)', $f, $t) }, 'an unknown macro fails');
	my %vars = (s => { multi => 1, include_all => 1, values => [ 'a', "o'b" ] },
		e => { multi => 0, include_all => 0, values => ['prod'] },
		x => { multi => 1, include_all => 1, values => [], all => 1, all_value => 'SELECT $e' });
	is(interpolate(q{IN ($s) AND e = '$e' AND ${s:sqlstring} ${e:sqlstring} [[e]] ${s:csv} IN ($x)}, \%vars),
		q{IN ('a','o''b') AND e = 'prod' AND 'a','o''b' 'prod' prod a,o'b IN (SELECT prod)}, 'variable formats');
	ok(!eval { interpolate('$__interval', \%vars) }, '$__interval is not covered and fails');
	ok(!eval { interpolate('${s:json}', \%vars) }, 'an unknown format fails');
}

$node->stop;
done_testing();
