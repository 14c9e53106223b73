# The Prometheus connector through engineering.sync() against the loopback
# mock: a backfill of eight days of one-minute steps in windows that stay
# within Prometheus' 11,000 points per series, from queries split over
# several series, with NaN, infinities, a negative count, a gap, a step with
# no good sample, good above total and fractional counts, into exactly the
# measurements the rules give (worked out in Perl by EMPrometheus.pm), with
# a Bearer token; then, with five-second steps, incremental re-syncs that
# re-read only the lookback (late data replaced, vanished steps removed,
# older corrections not seen until a re-backfill), and the failures
# Prometheus and proxies produce (400 with too many points, 422, 503, an
# error body with 200, a truncated body), each an error run that loses and
# duplicates nothing.
use strict;
use warnings;
use HTTP::Tiny;
use JSON::PP;
use List::Util qw(sum min max);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch);
use EMPrometheus qw(prom_expect prom_rows prom_requests iso_z minute_floor);

my $json = JSON::PP->new->canonical;
my $mock = EMMock->new;
my $url = $mock->url('prometheus');

my $node = PostgreSQL::Test::Cluster->new('prometheus_sync');
$node->init;
$node->append_conf('postgresql.conf', "timezone = 'UTC'");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
# failures are failures at once: no quick retries of 5xx in these runs
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.http_retries = 0');

sub lit
{
	my ($s) = @_;
	$s =~ s/'/''/g;
	return "'$s'";
}

sub sql { return $node->safe_psql('postgres', $_[0]); }

sub cursor_of
{
	my ($source) = @_;
	return decode_json(sql("SELECT cursor FROM engineering.sources WHERE name = '$source'"));
}

# --- part 1: a backfill in windows, with a token ---------------------------

my $good_q = 'sum(increase(http_requests_total{job="checkout",code!~"5.."}[1m]))';
my $total_q = 'sum(increase(http_requests_total{job="checkout"}[1m]))';
(my $good_tpl = $good_q) =~ s/\[1m\]/[\$step]/;
(my $total_tpl = $total_q) =~ s/\[1m\]/[\${step}]/;

my $since = minute_floor(time) - 8 * 86400;
my $first = $since + 60;    # the first step is the one that starts at since
my $at = sub { return $first + 60 * $_[0]; };
my (%totals, %goods);
for (my $t = $since - 3600; $t <= minute_floor(time) + 3 * 3600; $t += 60)
{
	my $m = $t / 60;
	$totals{$t} = 800 + ($m * 7919) % 400;
	$goods{$t} = $totals{$t} - ($m * 131) % 5;
}
# an hour without traffic, then one oddity each
for my $k (1000 .. 1059) { delete $totals{ $at->($k) }; delete $goods{ $at->($k) }; }
$totals{ $at->(2000) } = 'NaN';
$goods{ $at->(3000) } = '+Inf';
delete $goods{ $at->(4000) };                                  # all requests failed
$goods{ $at->(5000) } = $totals{ $at->(5000) } + 3;            # good above total
($totals{ $at->(6000) }, $goods{ $at->(6000) }) = (1000.4, 997.6);
($totals{ $at->(7000) }, $goods{ $at->(7000) }) = (0, 0);
$goods{ $at->(8000) } = -2;
$mock->load_world(prometheus => {
		token => 'prom-token-0123456789',
		queries => {
			$total_q => { values => \%totals, series => 3 },
			$good_q => { values => \%goods, series => 2 } } });

sql(q{INSERT INTO engineering.slos (name, service, objective) VALUES ('checkout-availability', 'checkout', 0.999)});
my $config = $json->encode({ slo => 'checkout-availability', good_query => $good_tpl,
		total_query => $total_tpl, step => '1m', since => iso_z($since) });
sql("SELECT engineering.add_source('prom', 'prometheus', '$url', " . lit($config) . ")");

# without the token the proxy in front of Prometheus refuses
like(sql("SELECT status || ': ' || error FROM engineering.sync('prom')"),
	qr/^error: HTTP 401 \(GET \Q$url\E\/api\/v1\/query_range\?query=sum%28increase.*\): Unauthorized$/,
	'a 401 is an error run');
is(sql('SELECT count(*) FROM engineering.sync_tasks'), '1', 'the first window stays queued');
is(sql('SELECT count(*) FROM engineering.slo_measurements'), '0', 'nothing stored');

sql("SELECT engineering.set_source_token('prom', 'prom-token-0123456789')");
$mock->clear_requests;
my $before = minute_floor(time);
is(sql("SELECT status, pages, http_requests, error IS NULL FROM engineering.sync('prom')"),
	'ok|4|4|t', 'with the token the backfill runs: two windows, two queries each');
my $after = minute_floor(time);

my $cursor = cursor_of('prom');
my $synced = iso_epoch($cursor->{synced_to});
ok($synced >= $before && $synced <= $after, 'synced_to is the last minute that had ended');
my $expect = prom_expect($mock->world('prometheus'), good => $good_q, total => $total_q,
	from => $first, to => $synced, step => 60);
# every step of eight days, less the hour without traffic, NaN, +Inf, a
# zero total and a negative count
is(scalar(keys %$expect), ($synced - $first) / 60 + 1 - 64, 'the expectation leaves out what it should');
my $rows = prom_rows($node, 'checkout-availability');
is_deeply($rows, $expect, 'slo_measurements hold exactly the counts of every step');
is($rows->{ $at->(4000) }, '0|' . $totals{ $at->(4000) }, 'a step without good samples had no good events');
is($rows->{ $at->(5000) }, "$totals{ $at->(5000) }|$totals{ $at->(5000) }", 'good above total is clamped');
is($rows->{ $at->(6000) }, '998|1000', 'fractional counts are rounded');
ok(!exists $rows->{ $at->(1030) } && !exists $rows->{ $at->(7000) }, 'no traffic, no row');
is(sql(q{SELECT count(*) FROM engineering.slo_measurements WHERE source_id IS NULL}), '0',
	'every measurement names its source');
is(sql(q{SELECT items_upserted FROM engineering.sync_runs WHERE status = 'ok'}), scalar(keys %$expect),
	'items_upserted counts the measurements written');
is_deeply([ $cursor->{last_skipped}{at}, $cursor->{last_skipped}{reason} ],
	[ iso_z($at->(8000)), 'good is negative (-2)' ], 'the cursor shows the latest skipped step and why');
is($cursor->{last_clamped}{at}, iso_z($at->(5000)), 'and the latest clamped one');

my $reqs = prom_requests($mock);
is_deeply([ map { $_->{query} } @$reqs ], [ $total_q, $good_q, $total_q, $good_q ],
	'each window asks for the totals, then the good counts; $step became 1m');
ok(!(grep { !$_->{auth_ok} || $_->{status} != 200 } @$reqs), 'as Authorization: Bearer, all accepted');
is_deeply([ map { [ $_->{start}, $_->{end}, $_->{step} ] } @$reqs ],
	[ ([ $first, $first + 10999 * 60, 60 ]) x 2, ([ $first + 11000 * 60, $synced, 60 ]) x 2 ],
	'windows: 11,000 steps from the first, then the rest, contiguous');
is(max(map { $_->{points} } @$reqs), 11000, 'no request asks for more than 11,000 points');
my $res = HTTP::Tiny->new->get("$url/api/v1/query_range?query=x&start=0&end=11001&step=1",
	{ headers => { Authorization => 'Bearer prom-token-0123456789' } });
like("$res->{status} $res->{content}", qr/^400 .*exceeded maximum resolution of 11,000 points/,
	'(the mock refuses 11,002 points, as Prometheus does)');

# the SLO functions read what was synced
my @kept = values %$expect;
is(sql("SELECT total_events || '/' || bad_events FROM engineering.slo_status('checkout-availability', "
		  . lit(iso_z($synced)) . ")"),
	sum(map { (split /\|/)[1] } @kept) . '/' . sum(map { my ($g, $t) = split /\|/; $t - $g } @kept),
	'slo_status counts the synced events');

# --- part 2: incremental re-syncs (five-second steps, no token) ------------

$mock->mutate('prometheus', op => 'set', key => 'token', value => undef);
my $good5 = 'sum(increase(search_requests_total{status!="error"}[5s]))';
my $total5 = 'sum(increase(search_requests_total[5s]))';
my $since5 = minute_floor(time, 5) - 600;
my $first5 = $since5 + 5;
my (%t5, %g5);
for (my $t = $since5 - 300; $t <= $since5 + 1800; $t += 5)
{
	$t5{$t} = 100 + ($t / 5) % 17;
	$g5{$t} = $t5{$t} - ($t / 5) % 3;
}
$mock->mutate('prometheus', op => 'query', query => $total5, spec => { values => \%t5 });
$mock->mutate('prometheus', op => 'query', query => $good5, spec => { values => \%g5 });
sql(q{INSERT INTO engineering.slos (name, service, objective, period) VALUES ('search-availability', 'search', 0.99, '1 day')});
my %config5 = (slo => 'search-availability', good_query => $good5, total_query => $total5,
	step => '5s', lookback => '20s', since => iso_z($since5));
sql("SELECT engineering.add_source('prom5', 'prometheus', '$url', " . lit($json->encode(\%config5)) . ")");

is(sql("SELECT status FROM engineering.sync('prom5')"), 'ok', 'five-second source: backfill');
my $s1 = iso_epoch(cursor_of('prom5')->{synced_to});
my $world = $mock->world('prometheus');
my %exp5 = %{ prom_expect($world, good => $good5, total => $total5, from => $first5, to => $s1, step => 5) };
is_deeply(prom_rows($node, 'search-availability'), \%exp5, 'its measurements match');

# What an incremental sync re-reads, recomputed from the world as it is
# then; what lies before the re-read keeps what was read earlier.
sub refresh_expectation
{
	my ($exp, $reqs, $to) = @_;
	my $from = min(map { $_->{start} } grep { $_->{status} == 200 } @$reqs);
	delete $exp->{$_} for grep { $_ >= $from } keys %$exp;
	my $now = prom_expect($mock->world('prometheus'), good => $good5, total => $total5,
		from => $from, to => $to, step => 5);
	$exp->{$_} = $now->{$_} for keys %$now;
	return $from;
}

# late data: a correction within the lookback, one before it, a step that vanished
$mock->mutate('prometheus', op => 'values', query => $total5, values => { $s1 - 10 => 500, $s1 - 60 => 700, $s1 - 5 => undef });
$mock->mutate('prometheus', op => 'values', query => $good5, values => { $s1 - 10 => 250, $s1 - 60 => 0, $s1 - 5 => undef });
my $old_60 = prom_rows($node, 'search-availability')->{ $s1 - 60 };
ok(wait_for_step($s1 + 10), 'two more steps have ended');
$mock->clear_requests;
my $run = sql("SELECT status || '|' || items_upserted FROM engineering.sync('prom5')");
my $s2 = iso_epoch(cursor_of('prom5')->{synced_to});
$reqs = prom_requests($mock);
is_deeply([ map { [ $_->{start}, $_->{end}, $_->{step} ] } @$reqs ], [ ([ $s1 - 15, $s2, 5 ]) x 2 ],
	'the re-sync asks only for the lookback (four steps up to the watermark) and what is new');
is($run, 'ok|' . (($s2 - $s1) / 5 + 2), 'it writes the new steps, the correction and the removal');
refresh_expectation(\%exp5, $reqs, $s2);
my $got = prom_rows($node, 'search-availability');
is_deeply($got, \%exp5, 'measurements match after the re-sync');
is($got->{ $s1 - 10 }, '250|500', 'late data within the lookback replaced the step');
ok(!exists $got->{ $s1 - 5 }, 'a step the server no longer reports is removed');
is($got->{ $s1 - 60 }, $old_60, 'a correction older than the lookback is not seen');

sub wait_for_step
{
	my ($t) = @_;
	my $deadline = time + 30;
	sleep 1 while minute_floor(time, 5) < $t && time < $deadline;
	return minute_floor(time, 5) >= $t;
}

# --- part 3: failures -------------------------------------------------------

# one failure, then the same sync again: an error run that keeps the task
# and stores nothing, then a run that catches up
sub failure_then_recovery
{
	my ($label, $pattern, $break, $repair) = @_;
	$break->();
	my $stored = prom_rows($node, 'search-availability');
	my $err = sql("SELECT status || ': ' || error FROM engineering.sync('prom5')");
	like($err, $pattern, "$label: an error run");
	is_deeply(prom_rows($node, 'search-availability'), $stored, "$label: the measurements did not change");
	ok(sql('SELECT count(*) FROM engineering.sync_tasks t JOIN engineering.sources s ON s.id = t.source_id'
			  . " WHERE s.name = 'prom5'") > 0, "$label: the failed request stays queued");
	$repair->() if $repair;
	$mock->clear_requests;
	is(sql("SELECT status FROM engineering.sync('prom5')"), 'ok', "$label: the next sync succeeds");
	refresh_expectation(\%exp5, prom_requests($mock), iso_epoch(cursor_of('prom5')->{synced_to}));
	is_deeply(prom_rows($node, 'search-availability'), \%exp5, "$label: and nothing is lost or doubled");
	return;
}

my $good_spec = $mock->world('prometheus')->{queries}{$good5};
failure_then_recovery('422',
	qr/^error: HTTP 422 \(GET .*\): \{"status":"error","errorType":"execution","error":"query processing would load too many samples into memory in query execution"\}$/,
	sub {
		$mock->mutate('prometheus', op => 'query', query => $good5, spec => { %$good_spec,
				error => { status => 422, errorType => 'execution',
					error => 'query processing would load too many samples into memory in query execution' } });
	},
	sub { $mock->mutate('prometheus', op => 'query', query => $good5, spec => $good_spec); });
failure_then_recovery('503', qr/^error: HTTP 503 \(GET .*\): \{.*"errorType":"timeout".*\}$/,
	sub {
		$mock->fault(kind => 'status', status => 503, match => { vendor => 'prometheus' },
			body => { status => 'error', errorType => 'timeout', error => 'query timed out in query execution' });
	});
failure_then_recovery('error body with 200',
	qr/^error: ingest failed \(GET .*, stream (total|good)\): prometheus query failed \(internal\): remote read failed$/,
	sub {
		$mock->fault(kind => 'status', status => 200, match => { vendor => 'prometheus' },
			body => { status => 'error', errorType => 'internal', error => 'remote read failed' });
	});
failure_then_recovery('truncated body', qr/^error: bad response body/,
	sub { $mock->fault(kind => 'truncate', mode => 'json', match => { vendor => 'prometheus' }); });

# A server with a lower limit than Prometheus' (10 points): a re-backfill
# (a new config forgets the watermark) is refused with 400 until max_points
# says so; then the windows hold 10 steps, and the re-backfill also brings
# in the correction that was older than the lookback.
$mock->mutate('prometheus', op => 'set', key => 'max_points', value => 10);
$config5{lookback} = '30s';
sql("SELECT engineering.alter_source('prom5', config => " . lit($json->encode(\%config5)) . ")");
like(sql("SELECT status || ': ' || error FROM engineering.sync('prom5')"),
	qr/^error: HTTP 400 \(GET .*\): \{"status":"error","errorType":"bad_data","error":"exceeded maximum resolution of 11,000 points per timeseries/,
	'too many points: the server says 400');
$config5{max_points} = 10;
sql("SELECT engineering.alter_source('prom5', config => " . lit($json->encode(\%config5)) . ")");
$mock->clear_requests;
is(sql("SELECT status FROM engineering.sync('prom5')"), 'ok', 'with max_points 10 the re-backfill runs');
my $s3 = iso_epoch(cursor_of('prom5')->{synced_to});
$reqs = prom_requests($mock);
is(max(map { $_->{points} } @$reqs), 10, 'in windows of at most 10 points');
my @starts = map { $_->{start} } grep { $_->{query} eq $total5 } @$reqs;
is_deeply(\@starts, [ map { $first5 + 50 * $_ } 0 .. $#starts ], 'contiguous windows from the first step');
%exp5 = %{ prom_expect($mock->world('prometheus'), good => $good5, total => $total5, from => $first5, to => $s3, step => 5) };
$got = prom_rows($node, 'search-availability');
is_deeply($got, \%exp5, 'measurements match the server again');
is($got->{ $s1 - 60 }, '0|700', 'including the correction older than the lookback');

# warnings of the latest window are shown in the cursor, and go with it
$mock->mutate('prometheus', op => 'query', query => $total5,
	spec => { %{ $mock->world('prometheus')->{queries}{$total5} }, warnings => ['PromQL info: metric might not be a counter'] });
is(sql("SELECT status FROM engineering.sync('prom5')"), 'ok', 'a response with warnings is read');
is_deeply(cursor_of('prom5')->{warnings}, ['PromQL info: metric might not be a counter'], 'the cursor shows them');
$mock->mutate('prometheus', op => 'query', query => $total5,
	spec => { %{ $mock->world('prometheus')->{queries}{$total5} }, warnings => [] });
sql("SELECT engineering.sync('prom5')");
ok(!exists cursor_of('prom5')->{warnings}, 'and forgets them when they stop');

# --- removal ----------------------------------------------------------------
like(sql_error("SELECT engineering.remove_source('prom5')"), qr/still has synced rows in slo_measurements/,
	'a source with measurements is not removed by accident');
sql("SELECT engineering.remove_source('prom5', purge => true)");
is(sql(q{SELECT count(*) FROM engineering.slo_measurements m JOIN engineering.slos s ON s.id = m.slo_id
		WHERE s.name = 'search-availability'}), '0', 'purge removes its measurements');
ok(sql(q{SELECT count(*) FROM engineering.slo_measurements}) > 10000, 'and only its own');

sub sql_error
{
	my ($q) = @_;
	my ($ret, $out, $err) = $node->psql('postgres', $q);
	return $err;
}

$node->stop;
$mock->stop;
done_testing();
