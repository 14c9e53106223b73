# From Prometheus to a page, with nobody calling anything: the background
# worker syncs a prometheus source from the loopback mock into
# slo_measurements (exactly the mock's counts), keeps re-syncing it, and
# evaluates the SLO alert rules once a minute.  When the mock's series start
# burning the error budget in the last hour, the worker's re-sync (its
# lookback covers the hour) brings the burn in, page-1h-5m starts firing and
# a session that LISTENs on engineering_slo_alerts receives exactly one
# notification, naming the SLO, severity, burn rates, threshold and state;
# later evaluations that change nothing send nothing; when the burn ends
# (the last ten minutes clean) it receives exactly one "resolved".
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch wait_for);
use EMPrometheus qw(prom_expect prom_rows iso_z minute_floor);

my $json = JSON::PP->new->canonical;
my $good_q = 'sum(increase(http_requests_total{job="checkout",code!~"5.."}[1m]))';
my $total_q = 'sum(increase(http_requests_total{job="checkout"}[1m]))';

# two days of clean traffic and the next hours: 1,000, 1,050 or 1,100
# requests a minute (multiples of 50, so that a 2% burn is whole requests)
my $since = minute_floor(time) - 2 * 86400;
my (%totals, %goods);
for (my $t = $since - 3600; $t <= minute_floor(time) + 4 * 3600; $t += 60)
{
	$totals{$t} = 1000 + 50 * (($t / 60) % 3);
	$goods{$t} = $totals{$t};
}
my $mock = EMMock->new;
$mock->load_world(prometheus => {
		queries => {
			$total_q => { values => \%totals, series => 2 },
			$good_q => { values => \%goods, series => 2 } } });
my $url = $mock->url('prometheus');

my $node = PostgreSQL::Test::Cluster->new('prometheus_worker');
$node->init;
$node->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'engineering_metrics'
engineering_metrics.database = 'postgres'
engineering_metrics.naptime = 1
engineering_metrics.slo_evaluation_interval = 5
timezone = 'UTC'
track_functions = 'all'
});
$node->start;

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sql('CREATE EXTENSION engineering_metrics');
sql(q{INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999)});

my $listener = $node->background_psql('postgres');
# the test takes several minutes (the worker evaluates once a minute)
$listener->set_query_timer_restart();
$listener->query_safe('LISTEN engineering_slo_alerts');

# what the listener has received since its last command (psql prints
# pending notifications after each command it runs)
sub received
{
	my $out = $listener->query_safe('SELECT 1');
	my @payloads;
	while ($out =~
		/Asynchronous notification "engineering_slo_alerts" with payload "(.*?)" received from server process with PID \d+\./g
	  )
	{
		push @payloads, decode_json($1);
	}
	return @payloads;
}

# how many times the worker has evaluated the alert rules so far
sub evaluations
{
	return sql(q{SELECT coalesce(sum(calls), 0) FROM pg_stat_user_functions
				 WHERE funcid = 'engineering._evaluate_slo_alerts(timestamptz)'::regprocedure});
}

sub synced_to
{
	my $c = decode_json(sql(q{SELECT cursor FROM engineering.sources WHERE name = 'prom'}));
	return defined $c->{synced_to} ? iso_epoch($c->{synced_to}) : undef;
}

# the measurements up to the watermark, and what the mock holds for them
sub compare_with_mock
{
	my $to = synced_to();
	my $rows = prom_rows($node, 'checkout-availability');
	delete $rows->{$_} for grep { $_ > $to } keys %$rows;
	my $expect = prom_expect($mock->world('prometheus'), good => $good_q, total => $total_q,
		from => $since + 60, to => $to, step => 60);
	return ($rows, $expect, $to);
}

my $config = $json->encode({ slo => 'checkout-availability', good_query => $good_q, total_query => $total_q,
		step => '1m', since => iso_z($since), lookback => '2 hours' });
sql("SELECT engineering.add_source('prom', 'prometheus', '$url', " . lit($config) . ", poll_interval => '10 seconds')");

# --- the worker syncs -------------------------------------------------------
ok(wait_for(sub { defined synced_to() }, 120), 'the worker synced the source by itself');
my ($rows, $expect, $s1) = compare_with_mock();
is(scalar(keys %$expect), ($s1 - $since) / 60, 'two days of one-minute steps');
is_deeply($rows, $expect, 'slo_measurements hold exactly the mock\'s counts');
ok(wait_for(sub { synced_to() > $s1 }, 120), 'a later poll moved the watermark on');
($rows, $expect) = compare_with_mock();
is_deeply($rows, $expect, 'the incremental re-sync appended the new steps');
is(sql(q{SELECT count(*) FROM engineering.sync_runs WHERE started_by <> 'worker' OR status NOT IN ('ok', 'running')}),
	'0', 'every run was the worker\'s, and none failed');
ok(wait_for(sub { evaluations() > 0 }, 120), 'the worker evaluates the alert rules');
is(scalar(received()), 0, 'clean traffic: no notification');

# --- the burn starts ----------------------------------------------------------
# From an hour ago on, 2% of the requests fail: a burn rate of 0.02 / 0.001
# = 20 over any window inside the burn.  page-1h-5m (14.4 over 1 h and 5 min)
# fires; page-6h-30m does not (6 h: a little over an hour of burn in six,
# about 3.4 < 6), nor do the tickets (1 d: about 0.9 < 3; 3 d: less).
my $b0 = minute_floor(time);
my %burn;
for (my $t = $b0 - 3600 + 60; $t <= $b0 + 4 * 3600; $t += 60)
{
	$burn{$t} = $totals{$t} - $totals{$t} / 50;
}
$mock->mutate('prometheus', op => 'values', query => $good_q, values => \%burn);

my @got;
ok(wait_for(sub { push @got, received(); return scalar(@got) > 0; }, 150),
	'the worker noticed the burn: a notification arrived');
my $n_fired = evaluations();
is(scalar(@got), 1, 'exactly one notification for the transition');
my $fired = $got[0];
is($fired->{slo}, 'checkout-availability', 'payload names the SLO');
is($fired->{rule}, 'page-1h-5m', 'the 1h/5m page rule');
is($fired->{severity}, 'page', 'payload carries the severity');
is($fired->{state}, 'firing', 'payload says firing');
is($fired->{threshold}, 14.4, 'payload carries the threshold (2% x 720 h / 1 h)');
is($fired->{long_burn_rate} . '/' . $fired->{short_burn_rate}, '20/20',
	'payload carries both burn rates: 20 (2% errors at 99.9%)');
is($fired->{long_window_seconds} . '/' . $fired->{short_window_seconds}, '3600/300', 'and the windows');
is_deeply($fired,
	decode_json(sql("SELECT engineering._slo_alert_payload($fired->{event_id})")),
	'the notification is the recorded event');
my $at = iso_epoch($fired->{at});
cmp_ok($at, '>=', $b0, 'evaluated after the burn was injected');
($rows, $expect) = compare_with_mock();
is_deeply($rows, $expect, 'the re-sync replaced the last hour with the burning counts (late data)');

# Later evaluations with the rule still firing send nothing.
ok(wait_for(sub { evaluations() > $n_fired }, 150), 'the worker evaluated again');
is(scalar(received()), 0, 'no notification while the rule keeps firing');
is(sql(q{SELECT count(*) FROM engineering.slo_alert_events}), '1', 'one transition recorded');
is(sql(q{SELECT string_agg(rule || ':' || firing, ',' ORDER BY rule) FROM engineering.slo_alerts() WHERE firing}),
	'page-1h-5m:true', 'only page-1h-5m fires');

# --- the burn ends ------------------------------------------------------------
# Clean again from ten minutes ago: the 5-minute window holds no errors, so
# the rule resets although the hour still burns.
my $b1 = minute_floor(time);
my %clean = map { $_ => $totals{$_} } grep { $_ > $b1 - 600 } keys %burn;
$mock->mutate('prometheus', op => 'values', query => $good_q, values => \%clean);
@got = ();
ok(wait_for(sub { push @got, received(); return scalar(@got) > 0; }, 150),
	'the worker noticed the burn ended: a notification arrived');
my $n_resolved = evaluations();
is(scalar(@got), 1, 'exactly one notification for that transition');
is($got[0]{rule} . ' ' . $got[0]{state}, 'page-1h-5m resolved', 'payload says resolved, for the rule that fired');
is($got[0]{slo}, 'checkout-availability', 'for the SLO');
is($got[0]{short_burn_rate}, 0, 'the short window is clean');
cmp_ok($got[0]{long_burn_rate}, '>', 14.4, 'while the hour still burns');
cmp_ok($got[0]{event_id}, '>', $fired->{event_id}, 'a later event');

ok(wait_for(sub { evaluations() > $n_resolved }, 150), 'the worker evaluated again');
is(scalar(received()), 0, 'nothing more');
is(sql(q{SELECT string_agg(state, ',' ORDER BY id) FROM engineering.slo_alert_events}),
	'firing,resolved', 'the history holds one row per transition');
($rows, $expect) = compare_with_mock();
is_deeply($rows, $expect, 'the measurements still match the mock');

$listener->quit;
$node->stop;
$mock->stop;
done_testing();
