# The Opsgenie connector through engineering.sync() against the loopback
# mock: a backfill newest first over several pages following paging.next,
# down to since and no further, exactly the incidents the query selects
# (impact start/end when present, closed counted as resolved, millisecond
# and offset timestamps); incremental re-syncs that read one page and the
# open incidents by id, and update what moved on (resolved, closed, new,
# deleted); a changed query restarts the backfill for the new scope.
use strict;
use warnings;
use utf8;
use Encode qw(decode);
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(iso_epoch db_rows);
use EMIncidentTest qw(opsgenie_expect incident_rows iso_z);

my $since = iso_epoch('2025-03-01T00:00:00Z');
my $mock = EMMock->new(generate => [
		'opsgenie:incidents=560,open=9,seed=41,start=2025-01-01T00:00:00Z,span_days=300,services=3,token=og-key-0123456789' ]);
my $world = $mock->world('opsgenie');
my ($svc1) = sort map { @{ $_->{impactedServices} } } @{ $world->{incidents} };
my $map = { $svc1 => 'checkout' };

my $node = PostgreSQL::Test::Cluster->new('opsgenie_sync');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', 'ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000');
my $url = $mock->url('opsgenie');
$node->safe_psql('postgres',
	"SELECT engineering.add_source('og', 'opsgenie', '$url',
	   '{\"query\": \"status:open OR status:resolved OR status:closed\", \"since\": \"2025-03-01\",
	     \"service_map\": {\"$svc1\": \"checkout\"}}', token => 'og-key-0123456789')");

# some incidents carry their own odd times: an offset without a colon,
# epoch milliseconds, and an impact that began before the incident was declared
$mock->mutate('opsgenie', op => 'upsert', items => [
		{ id => 'odd-offset', tinyId => '9001', message => 'Offset +0200', status => 'resolved', priority => 'P2',
		  createdAt => '2025-06-01T12:00:00.250+0200', updatedAt => '2025-06-01T13:30:00+0200',
		  impactedServices => [$svc1] },
		{ id => 'odd-epoch', tinyId => '9002', message => 'Epoch ms', status => 'closed', priority => 'P4',
		  createdAt => '2025-06-02T00:00:00Z', impactStartDate => 1748822400000, impactEndDate => 1748826000000 },
		{ id => 'odd-early', tinyId => '9003', message => 'Impact before declaration ⚠', status => 'open', priority => 'P1',
		  createdAt => '2025-06-03T10:00:00Z', impactStartDate => '2025-06-03T09:15:00Z', impactedServices => ['svc-other'] },
		{ id => 'odd-unknown', tinyId => '9004', message => 'Unknown status', status => 'investigating', priority => 'P3',
		  createdAt => '2025-06-04T00:00:00Z' } ]);
$world = $mock->world('opsgenie');
my $match = sub { $_[0]{status} =~ /^(open|resolved|closed)$/ };

# --- backfill ---------------------------------------------------------------
my $run = $node->safe_psql('postgres',
	"SELECT status, pages = http_requests, error IS NULL FROM engineering.sync('og')");
is($run, 'ok|t|t', 'sync() ran the backfill to the end');
my $e = opsgenie_expect($world, since => $since, service_map => $map, match => $match);
ok(keys %$e > 450, 'the query selects ' . scalar(keys %$e) . ' incidents since 2025-03-01');
my $got = incident_rows($node, 'og');
is_deeply($got, $e, 'incidents: service, priority, status, impact start and end as the API says');
is($got->{'odd-offset'}[3], sprintf('%.3f', iso_epoch('2025-06-01T10:00:00.250Z')), '+0200 read correctly');
is_deeply([ @{ $got->{'odd-epoch'} }[ 2 .. 4 ] ], [ 'resolved', '1748822400.000', '1748826000.000' ],
	'closed is resolved, epoch milliseconds read correctly');
is($got->{'odd-early'}[3], sprintf('%.3f', iso_epoch('2025-06-03T09:15:00Z')), 'opened at the impact start');
ok(!exists $got->{'odd-unknown'}, 'an incident the query does not select is not stored');
ok((grep { $_->[0] eq 'checkout' } values %$got) > 100, 'service_map renamed an impacted service');

my $log = $mock->requests(vendor => 'opsgenie');
my @lists = grep { $_->{path} eq '/opsgenie/v1/incidents' } @$log;
is(scalar(grep { $_->{status} != 200 } @$log), 0, 'every request was accepted');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'the key was sent as "GenieKey ..."');
is($mock->world('opsgenie')->{_last_accept}, 'application/json', 'asking for JSON');
my @offsets = map { /(?:^|&)offset=(\d+)/ ? $1 : -1 } map { $_->{query} } @lists;
is_deeply(\@offsets, [ map { $_ * 100 } 0 .. $#lists ], 'pages followed paging.next, 100 at a time');
# everything older than since is on the pages after the one that reached it
my $older = grep { iso_epoch($_->{createdAt}) < $since && $match->($_) } @{ $world->{incidents} };
ok($older > 100, "$older incidents are older than since");
my $total = grep { $match->($_) } @{ $world->{incidents} };
is(scalar(@lists), int(($total - $older) / 100) + 1, 'the backfill stopped at the page that reached since');

# --- incremental: nothing changed ---------------------------------------------
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted FROM engineering.sync('og')");
is($run, 'ok|0', 'an unchanged API changes nothing');
$log = $mock->requests(vendor => 'opsgenie');
my $cursor = iso_epoch(db_rows($node, "SELECT cursor->>'incidents_created' FROM engineering.sources WHERE name = 'og'")->[0][0]);
my @open = sort map { "/opsgenie/v1/incidents/$_->{id}" }
  grep { $_->{status} eq 'open' && iso_epoch($_->{createdAt}) < $cursor - 600 && iso_epoch($_->{createdAt}) >= $since }
  @{ $world->{incidents} };
ok(@open >= 8, scalar(@open) . ' open incidents are older than the watermark');
is_deeply([ sort map { $_->{path} } @$log ], [ sort('/opsgenie/v1/incidents', @open) ],
	'a re-sync reads one page and the open incidents by id');

# --- incremental: things move on ----------------------------------------------
my $now = time;
my @ids = map { m{/([^/]+)$} } @open;
my ($to_resolve, $to_close, $to_delete) = @ids[ 0 .. 2 ];
$mock->mutate('opsgenie', op => 'resolve', id => $to_resolve, at => iso_z($now - 300));
$mock->mutate('opsgenie', op => 'close', id => $to_close, at => iso_z($now - 200));
$mock->mutate('opsgenie', op => 'delete', id => $to_delete);
$mock->mutate('opsgenie', op => 'upsert', items => [
		{ id => 'fresh-1', tinyId => '9100', message => 'Paiement refusé – 決済エラー', status => 'open', priority => 'P1',
		  createdAt => iso_z($now - 30), impactStartDate => iso_z($now - 90), impactedServices => [$svc1] } ]);
$mock->clear_requests;
$run = $node->safe_psql('postgres', "SELECT status, items_upserted, error FROM engineering.sync('og')");
is($run, 'ok|3|', 'the incremental sync changed three rows');
is($node->safe_psql('postgres',
		"SELECT status, extract(epoch FROM resolved_at)::bigint FROM engineering.incidents WHERE external_id = '$to_resolve'"),
	'resolved|' . ($now - 300), 'an incident got resolved at its impact end');
is($node->safe_psql('postgres',
		"SELECT status, resolved_at IS NOT NULL, attributes->>'opsgenie_status' FROM engineering.incidents WHERE external_id = '$to_close'"),
	'resolved|t|closed', 'a closed incident counts as resolved');
is(decode('UTF-8', $node->safe_psql('postgres',
		"SELECT service, title, status, extract(epoch FROM opened_at)::bigint FROM engineering.incidents WHERE external_id = 'fresh-1'")),
	'checkout|Paiement refusé – 決済エラー|open|' . ($now - 90), 'a new incident was read, opened at its impact start');
is($node->safe_psql('postgres',
		"SELECT status, attributes->'opsgenie_gone' FROM engineering.incidents WHERE external_id = '$to_delete'"),
	'open|true', 'a deleted incident is kept, marked gone');
$log = $mock->requests(vendor => 'opsgenie');
is(scalar(grep { $_->{path} eq '/opsgenie/v1/incidents' } @$log), 1, 'one page of new incidents was enough');

$mock->clear_requests;
$node->safe_psql('postgres', "SELECT engineering.sync('og')");
$log = $mock->requests(vendor => 'opsgenie');
ok(!(grep { $_->{path} =~ /\Q$to_delete\E|\Q$to_resolve\E|\Q$to_close\E/ } @$log),
	'resolved, closed and gone incidents are not asked for again');

$world = $mock->world('opsgenie');
$e = opsgenie_expect($world, since => $since, service_map => $map, match => $match);
$got = incident_rows($node, 'og');
delete $got->{$to_delete};
is_deeply($got, $e, 'after the changes, the table matches the API again');

# --- a changed query ------------------------------------------------------------
$mock->clear_requests;
$node->safe_psql('postgres',
	"SELECT engineering.alter_source('og', config => '{\"query\": \"priority:P1\", \"since\": \"2025-03-01\"}')");
is($node->safe_psql('postgres', "SELECT status FROM engineering.sync('og')"), 'ok', 'a sync with another query');
$log = $mock->requests(vendor => 'opsgenie');
@lists = grep { $_->{path} eq '/opsgenie/v1/incidents' } @$log;
ok(@lists >= 1 && !(grep { $_->{query} !~ /query=priority%3AP1/ } @lists), 'the backfill ran again with the new query');
my $p1 = grep { $_->{priority} eq 'P1' && iso_epoch($_->{createdAt}) >= $since } @{ $world->{incidents} };
is(scalar(grep { $_->{path} eq '/opsgenie/v1/incidents' } @$log), int($p1 / 100) + 1,
	"it read every page of the $p1 P1 incidents since 2025-03-01 (an older watermark would have stopped it)");

$node->stop;
$mock->stop;
done_testing();
