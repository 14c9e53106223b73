# The PagerDuty connector through engineering.sync() against the loopback
# mock: a backfill over several 90-day windows and pages, with timestamps in
# the account's +02:00 time zone, acknowledged_at from log entries (read
# once per incident that left the triggered state, and only then), exactly
# the incidents the API holds; incremental re-syncs that ask only for the
# newest window and the unresolved incidents, and update what moved on (an
# incident acknowledged, one resolved, a new one, one deleted); a changed
# service filter restarts the backfill for the new scope.
use strict;
use warnings;
use utf8;
use Encode qw(decode);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows db_map);
use EMIncidentTest qw(pagerduty_expect incident_rows ts iso_z);

my $since = iso_epoch('2025-01-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'pagerduty:incidents=700,open=7,seed=21,start=2025-03-01T00:00:00Z,span_days=400,services=3,time_zone=+02:00,token=pd-token-0123456789'
]);

my $node = PostgreSQL::Test::Cluster->new('pagerduty_sync');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000');
my $url = $mock->url('pagerduty');
my $map = { PSVC001 => 'checkout' };
$node->safe_psql('postgres',
	"SELECT engineering.add_source('pd', 'pagerduty', '$url',
	   '{\"since\": \"2025-01-01\", \"service_map\": {\"PSVC001\": \"checkout\"}}', token => 'pd-token-0123456789')");

# --- backfill ---------------------------------------------------------------
my $run = $node->safe_psql('postgres',
	"SELECT status, pages = http_requests, items_upserted > 700, error IS NULL FROM engineering.sync('pd')");
is($run, 'ok|t|t|t', 'sync() ran the backfill to the end');

my $world = $mock->world('pagerduty');
my $e = pagerduty_expect($world, since => $since, service_map => $map);
is(scalar(keys %$e), 700, 'the world holds 700 incidents since 2025-01-01');
# the mock stores times in Z and writes them in the account's +02:00: the
# expectation is computed from the stored instants
my $got = incident_rows($node, 'pd', 1);
is_deeply($got, $e,
	'incidents: service, urgency, status, opened, first acknowledgement and resolution as the API says');
ok((grep { $_->[0] eq 'checkout' } values %$got) > 50, 'service_map renamed a PagerDuty service');
ok((grep { $_->[4] ne '' } values %$got) > 100, 'many incidents have acknowledged_at from their log');
ok((grep { $_->[2] eq 'acknowledged' } values %$got) >= 3, 'open incidents that are acknowledged say so');

my $log = $mock->requests(vendor => 'pagerduty');
my @lists = grep { $_->{path} eq '/pagerduty/incidents' } @$log;
my @logs = grep { $_->{path} =~ m{/log_entries$} } @$log;
is(scalar(grep { $_->{status} != 200 } @$log), 0, 'every request was accepted (no range or offset refused)');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'the token was sent as "Token token=..."');
is($world->{_last_accept}, 'application/vnd.pagerduty+json;version=2', 'with the versioned Accept header');
ok((grep { $_->{query} =~ /(^|&)offset=100(&|$)/ } @lists), 'lists were followed over several pages');
ok(scalar(@lists) >= 8, 'the backfill used several windows (' . scalar(@lists) . ' list requests)');
ok(!(grep { $_->{query} !~ /sort_by=created_at%3Aasc/ || $_->{query} !~ /limit=100/ } @lists),
	'lists are sorted by creation, 100 per page');
# one log per incident that was acknowledged or resolved, none for the others
my %read = map { $_->{path} =~ m{/incidents/([^/]+)/log_entries$} ? ($1 => 1) : () } @logs;
my %need = map { $_->{id} => 1 } grep { $_->{status} ne 'triggered' } @{ $world->{incidents} };
is(scalar(@logs), scalar(keys %need), 'one log request per acknowledged or resolved incident');
is_deeply(\%read, \%need, 'exactly those incidents\' logs were read');
ok(!(grep { $_->{query} !~ /is_overview=true/ } @logs), 'logs are read as overviews');

# --- incremental: nothing changed ---------------------------------------------
my $cursor = db_rows($node, "SELECT cursor->>'incidents_created' FROM engineering.sources WHERE name = 'pd'")->[0][0];
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted FROM engineering.sync('pd')");
is($run, 'ok|0', 'an unchanged API changes nothing');
$log = $mock->requests(vendor => 'pagerduty');
my @unresolved = sort map { "/pagerduty/incidents/$_->{id}" } grep { $_->{status} ne 'resolved' } @{ $world->{incidents} };
is_deeply([ sort map { $_->{path} } @$log ], [ sort('/pagerduty/incidents', @unresolved) ],
	'a re-sync asks for one window of new incidents and the unresolved ones by id, and reads no log again');
my ($window) = grep { $_->{path} eq '/pagerduty/incidents' } @$log;
my ($from) = $window->{query} =~ /since=([^&]+)/;
$from =~ s/%3A/:/g;
is(iso_epoch($from), iso_epoch($cursor) - 600, 'the window starts 10 minutes before the watermark');

# --- incremental: things move on ----------------------------------------------
my $now = time;
my @open = sort { $a->{created_at} cmp $b->{created_at} } grep { $_->{status} eq 'triggered' } @{ $world->{incidents} };
my ($to_ack, $to_resolve, $to_delete) = @open[ 0 .. 2 ];
$mock->mutate('pagerduty', op => 'acknowledge', id => $to_ack->{id}, at => iso_z($now - 120), agent => 'Edsger');
$mock->mutate('pagerduty', op => 'resolve', id => $to_resolve->{id}, at => iso_z($now - 60));
$mock->mutate('pagerduty', op => 'delete', id => $to_delete->{id});
$mock->mutate('pagerduty', op => 'upsert', items => [
		{ id => 'QNEW0001', incident_number => 9001, title => 'Checkout is down ☠ – 结帐失败', status => 'triggered',
		  urgency => 'high', service => { id => 'PSVC001', summary => 'Service 1' },
		  created_at => iso_z($now - 30), updated_at => iso_z($now - 30), last_status_change_at => iso_z($now - 30),
		  log_entries => [ { type => 'trigger_log_entry', created_at => iso_z($now - 30) } ] } ]);
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted, error FROM engineering.sync('pd')");
# changed rows: the acknowledged incident and then its log (acknowledged_by),
# the resolved one and then its log (marked read), the new one
is($run, 'ok|5|', 'the incremental sync changed five rows');
is($node->safe_psql('postgres',
		"SELECT status, extract(epoch FROM acknowledged_at)::bigint, attributes->>'acknowledged_by'
		 FROM engineering.incidents WHERE external_id = '$to_ack->{id}'"),
	'acknowledged|' . ($now - 120) . '|Edsger', 'an incident got acknowledged, with the time from its log');
is($node->safe_psql('postgres',
		"SELECT status, extract(epoch FROM resolved_at)::bigint, acknowledged_at IS NULL
		 FROM engineering.incidents WHERE external_id = '$to_resolve->{id}'"),
	'resolved|' . ($now - 60) . '|t', 'an incident got resolved (never acknowledged)');
is(decode('UTF-8', $node->safe_psql('postgres',
		"SELECT service, title, status FROM engineering.incidents WHERE external_id = 'QNEW0001'")),
	'checkout|Checkout is down ☠ – 结帐失败|open', 'a new incident was fetched, with its unicode title');
is($node->safe_psql('postgres',
		"SELECT status, attributes->'pagerduty_gone' FROM engineering.incidents WHERE external_id = '$to_delete->{id}'"),
	'open|true', 'a deleted incident is kept, marked gone');
$log = $mock->requests(vendor => 'pagerduty');
is_deeply([ sort map { $_->{path} } grep { $_->{path} =~ /log_entries/ } @$log ],
	[ sort map { "/pagerduty/incidents/$_->{id}/log_entries" } $to_ack, $to_resolve ],
	'logs were read only for the two incidents that left the triggered state');
is(scalar(grep { $_->{status} == 404 } @$log), 1, 'the deleted incident answered 404 once');

$mock->clear_requests;
$node->safe_psql('postgres', "SELECT engineering.sync('pd')");
$log = $mock->requests(vendor => 'pagerduty');
ok(!(grep { $_->{path} =~ /\Q$to_delete->{id}\E/ || $_->{path} =~ /\Q$to_resolve->{id}\E/ } @$log),
	'neither the gone nor the resolved incident is asked for again');
ok((grep { $_->{path} eq "/pagerduty/incidents/$to_ack->{id}" } @$log),
	'the acknowledged one still is, until it is resolved');

# the whole table still matches the API (less the deleted incident, kept as it was)
$world = $mock->world('pagerduty');
$e = pagerduty_expect($world, since => $since, service_map => $map);
$got = incident_rows($node, 'pd', 1);
delete $got->{ $to_delete->{id} };
is_deeply($got, $e, 'after the changes, the table matches the API again');

# --- a changed scope ------------------------------------------------------------
$mock->clear_requests;
$node->safe_psql('postgres',
	"SELECT engineering.alter_source('pd', config => '{\"since\": \"2025-01-01\", \"service_ids\": [\"PSVC002\"], \"log_entries\": false}')");
$run = $node->safe_psql('postgres', "SELECT status FROM engineering.sync('pd')");
is($run, 'ok', 'a sync with a service filter');
$log = $mock->requests(vendor => 'pagerduty');
@lists = grep { $_->{path} eq '/pagerduty/incidents' } @$log;
ok(@lists >= 6 && !(grep { $_->{query} !~ /service_ids%5B%5D=PSVC002/ } @lists),
	'the backfill started again from since, for that service only');
ok(!(grep { $_->{path} =~ /log_entries/ } @$log), 'log_entries false reads no log');
like($node->safe_psql('postgres', "SELECT cursor->'incidents_scope' FROM engineering.sources WHERE name = 'pd'"),
	qr/"service_ids": \["PSVC002"\]/, 'the watermark now belongs to the new scope');

$node->stop;
$mock->stop;
done_testing();
