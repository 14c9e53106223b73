# SLO alert notifications: a session that LISTENs on engineering_slo_alerts
# receives exactly one notification per alert transition recorded by
# engineering._evaluate_slo_alerts(), with the payload of the recorded row;
# nothing for evaluations that change nothing, nothing for a rolled-back
# evaluation, and one transition only when two evaluations race.
use strict;
use warnings;
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('slo_notify');
$node->init;
$node->append_conf('postgresql.conf', "timezone = 'UTC'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');

# 99.9%, 1,000 requests a minute for a day; the ten minutes ending
# 12:01 .. 12:10 have 100 bad each.  At 12:10 the 1h burn rate is
# 1,000 / 60,000 / 0.001 = 16.67 and the 5m one 100: page-1h-5m fires (its
# 6h window, 1,000 / 360,000 -> 2.78, keeps the other rules quiet).  At
# 12:15 the 5-minute window is clean again: it resolves.
$node->safe_psql(
	'postgres', q{
INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999);
INSERT INTO engineering.slo_measurements (slo_id, measured_at, good, total)
SELECT engineering._slo_id('checkout-availability'), t,
       CASE WHEN t > '2024-06-30 12:00+00' AND t <= '2024-06-30 12:10+00' THEN 900 ELSE 1000 END, 1000
FROM generate_series(timestamptz '2024-06-29 12:01+00', '2024-06-30 12:20+00', '1 minute') t;
});

my $listener = $node->background_psql('postgres');
$listener->query_safe('LISTEN engineering_slo_alerts');

# What the listener has received since its last command: psql prints
# pending notifications after each command it runs.
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

sub evaluate
{
	my ($at) = @_;
	return $node->safe_psql('postgres',
		"SELECT engineering._evaluate_slo_alerts('$at')");
}

is(evaluate('2024-06-30 12:05+00'), '0', 'nothing fires before the 1h window is burnt');
is(scalar(received()), 0, 'no transition, no notification');

is(evaluate('2024-06-30 12:10+00'), '1', 'page-1h-5m starts firing at 12:10');
my @got = received();
is(scalar(@got), 1, 'exactly one notification for the transition');
is($got[0]{slo}, 'checkout-availability', 'payload names the SLO');
is($got[0]{rule}, 'page-1h-5m', 'payload names the rule');
is($got[0]{severity}, 'page', 'payload carries the severity');
is($got[0]{state}, 'firing', 'payload says firing');
is($got[0]{threshold}, 14.4, 'payload carries the threshold');
is($got[0]{short_burn_rate}, 100, 'payload carries the short-window burn rate');
is($got[0]{long_window_seconds} . '/' . $got[0]{short_window_seconds},
	'3600/300', 'payload carries the windows');
is_deeply(
	$got[0],
	decode_json(
		$node->safe_psql(
			'postgres',
			"SELECT engineering._slo_alert_payload(max(id)) FROM engineering.slo_alert_events"
		)),
	'the notification is the recorded event');

is(evaluate('2024-06-30 12:10+00'), '0', 'evaluating again changes nothing');
is(evaluate('2024-06-30 12:11+00'), '0', 'still firing a minute later');
is(scalar(received()), 0, 'no notification while the state holds');

# a rolled-back evaluation records nothing and sends nothing
$node->safe_psql('postgres',
	"BEGIN; SELECT engineering._evaluate_slo_alerts('2024-06-30 12:15+00'); ROLLBACK;");
is(scalar(received()), 0, 'a rolled-back transition is not notified');
is( $node->safe_psql('postgres', 'SELECT count(*) FROM engineering.slo_alert_events'),
	'1', 'and not recorded');

# Two evaluations of the same instant race: the second waits for the first
# and then sees its row, so the transition is recorded and sent once.
my $first = $node->background_psql('postgres');
$first->query_safe('BEGIN');
is( $first->query_safe(
		"SELECT engineering._evaluate_slo_alerts('2024-06-30 12:15+00')"),
	'1', 'the first evaluation records the resolution');
my $second = $node->background_psql('postgres');
$second->query_until(qr/started/, q{
\echo started
SELECT 'second:' || engineering._evaluate_slo_alerts('2024-06-30 12:15+00');
});
$node->poll_query_until('postgres',
	"SELECT count(*) > 0 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE '%second:%'")
  or die 'the second evaluation never waited for the first';
$first->query_safe('COMMIT');
my $second_out = $second->query_safe('SELECT 1');
$second->quit;
$first->quit;
# the second evaluation's result was printed before the marker query's
like($second_out, qr/^second:0$/m, 'the second evaluation finds nothing to do');

@got = received();
is(scalar(@got), 1, 'one notification for the resolution');
is($got[0]{state}, 'resolved', 'payload says resolved');
is($got[0]{rule}, 'page-1h-5m', 'for the rule that fired');
is( $node->safe_psql('postgres',
		"SELECT string_agg(state, ',' ORDER BY id) FROM engineering.slo_alert_events"),
	'firing,resolved', 'the history holds one row per transition');

$listener->quit;
$node->stop;
done_testing();
