# The Backstage connector through engineering.sync() against the loopback
# mock: a complete listing over several pages following
# pageInfo.nextCursor (the first page asks with the filters, the next ones
# with the cursor alone), exactly the entities the filter selects, mapped
# as a Perl reading of the world independent of the SQL says; an API's
# definition left out by the engine; a re-sync that changes nothing; a
# changed and a removed entity (marked removed, kept); a 429 in the middle
# of a listing (the listing resumes from its cursor and marks nothing
# removed on the way); a malformed page (an error run, the listing resumes);
# a wrong token (401, Backstage's error envelope, no token in any row).
use strict;
use warnings;
use utf8;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use EMMock;
use EMSyncTest qw(db_rows);

my $token = 'bs-static-token-0123456789';
my $mock = EMMock->new(generate => [
		"backstage:components=37,teams=4,templates=2,seed=14,deprecated=0.2,templated=0.5,token=$token" ]);
# an API with a large definition, and a Location the filter leaves out
$mock->mutate('backstage', op => 'upsert', items => [
		{ kind => 'API', metadata => { name => 'orders-api', title => 'Orders API ⚙', tags => ['rest'] },
		  spec => { type => 'openapi', lifecycle => 'production', owner => 'team-1', system => 'orders',
			  definition => 'openapi: 3.0.0' . ("\n# padding" x 5000) } },
		{ kind => 'Location', metadata => { name => 'root' },
		  spec => { type => 'url', targets => ['https://github.com/acme/catalog/blob/main/all.yaml'] } } ]);

my $node = PostgreSQL::Test::Cluster->new('backstage_sync');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
$node->safe_psql('postgres', q{
	ALTER DATABASE postgres SET engineering_metrics.max_pages_per_run = 10000;
	ALTER DATABASE postgres SET engineering_metrics.http_retries = 0;
});
my $url = $mock->url('backstage') . '/api/catalog';
$node->safe_psql('postgres',
	"SELECT engineering.add_source('cat', 'backstage', '$url',
	   '{\"filter\": \"kind=component,kind=api,kind=template,kind=group,kind=user\", \"page_size\": 10}',
	   token => '$token')");

# --- what the catalog should hold, read from the mock's world in Perl ----------

sub ref_of
{
	my ($ref, $kind, $ns) = @_;
	return undef if !defined $ref || $ref eq '';
	my ($k, $rest) = $ref =~ /^([^:\/]+):(.*)$/ ? ($1, $2) : ($kind, $ref);
	my ($n, $name) = $rest =~ m{^([^/]+)/(.*)$} ? ($1, $2) : ($ns, $rest);
	return lc("$k:$n/$name");
}

sub expected
{
	my ($world) = @_;
	my %e;
	for my $x (@{ $world->{entities} })
	{
		next unless $x->{kind} =~ /^(Component|API|Template|Group|User)$/;
		my $md = $x->{metadata};
		my $ns = $md->{namespace} // 'default';
		my $spec = $x->{spec} // {};
		my $kind = lc $x->{kind};
		my $ann = $md->{annotations} // {};
		$e{ lc "$kind:$ns/$md->{name}" } = join('|',
			$kind, $spec->{type} // '', $md->{name},
			ref_of($spec->{owner}, 'group', $ns) // '', $spec->{lifecycle} // '',
			ref_of($spec->{system}, 'system', $ns) // '',
			$kind eq 'component' ? $md->{name} : '',
			ref_of($ann->{'backstage.io/source-template'}, 'template', $ns) // '',
			'{' . join(',', @{ $md->{tags} // [] }) . '}');
	}
	return \%e;
}

sub stored
{
	my ($removed) = @_;
	my $rows = db_rows($node,
		"SELECT entity_ref, kind, coalesce(type, ''), name, coalesce(owner, ''), coalesce(lifecycle, ''),
		        coalesce(system, ''), coalesce(service, ''), coalesce(template, ''), tags::text
		 FROM engineering.catalog_entities WHERE removed_at IS " . ($removed ? 'NOT NULL' : 'NULL'));
	return { map { my @r = @$_; (shift(@r) => join('|', @r)) } @$rows };
}

sub sync_row
{
	return @{ db_rows($node,
		"SELECT status, pages, items_upserted, coalesce(error, '') FROM engineering.sync('cat')")->[0] };
}

# --- the first listing ------------------------------------------------------------
my $world = $mock->world('backstage');
my $e = expected($world);
my $n = scalar keys %$e;
ok($n > 40, "the filter selects $n entities");
my ($st, $pages, $changed, $err) = sync_row();
is($st, 'ok', 'sync() listed the catalog') or diag $err;
is($pages, int(($n + 9) / 10), "in pages of 10 ($pages)");
is($changed, $n, 'every entity is new');
is_deeply(stored(0), $e, 'kind, type, owner, lifecycle, system, service, template and tags as the API says');

my $log = $mock->requests(vendor => 'backstage');
is(scalar(grep { $_->{status} != 200 } @$log), 0, 'every request was accepted');
is(scalar(grep { !$_->{auth_ok} } @$log), 0, 'the token was sent as a Bearer token');
is($mock->world('backstage')->{_last_accept}, 'application/json', 'asking for JSON');
is(scalar(grep { $_->{path} ne '/backstage/api/catalog/entities/by-query' } @$log), 0, 'only /entities/by-query');
like($log->[0]{query}, qr/^filter=kind%3Dcomponent%2Ckind%3Dapi%2Ckind%3Dtemplate%2Ckind%3Dgroup%2Ckind%3Duser&limit=10$/,
	'the first page carries the filter');
is(scalar(grep { $_->{query} !~ /^cursor=[^&]+&limit=10$/ } @$log[ 1 .. $#$log ]), 0,
	'the next pages carry only the cursor');
is($node->safe_psql('postgres',
		"SELECT spec ? 'definition', spec->>'type' FROM engineering.catalog_entities WHERE entity_ref = 'api:default/orders-api'"),
	'f|openapi', 'the API is stored without its definition');
is($node->safe_psql('postgres',
		"SELECT cursor->>'entities', cursor->>'total_items' FROM engineering.sources WHERE name = 'cat'"),
	"$n|$n", 'the cursor records the complete listing');
my $members = db_rows($node, 'SELECT count(*) FROM engineering.catalog_memberships')->[0][0];
my $users = grep { $_->{kind} eq 'User' } @{ $world->{entities} };
is($members, $users, 'each user belongs to their team');

# --- an unchanged catalog --------------------------------------------------------------
$mock->clear_requests;
($st, $pages, $changed) = sync_row();
is("$st|$changed", 'ok|0', 'a re-sync of an unchanged catalog changes nothing');
is(scalar(@{ $mock->requests(vendor => 'backstage') }), $pages, 'and reads the listing once');

# --- a changed and a removed entity ---------------------------------------------------------
my ($gone) = sort map { $_->{metadata}{name} } grep { $_->{kind} eq 'Component' } @{ $world->{entities} };
my ($moved) = grep { $_->{kind} eq 'Component' && $_->{metadata}{name} ne $gone && $_->{spec}{lifecycle} eq 'production' } @{ $world->{entities} };
$moved->{spec}{lifecycle} = 'deprecated';
$mock->mutate('backstage', op => 'upsert', items => [$moved]);
$mock->mutate('backstage', op => 'remove', ref => "component:default/$gone");
($st, $pages, $changed) = sync_row();
is("$st|$changed", 'ok|2', 'one entity changed, one removed');
$world = $mock->world('backstage');
$e = expected($world);
is_deeply(stored(0), $e, 'the live catalog matches the API again');
is_deeply([ keys %{ stored(1) } ], ["component:default/$gone"], 'the removed entity is kept, marked removed');

# --- a 429 in the middle of a listing ----------------------------------------------------------
$mock->fault(match => { vendor => 'backstage', query => '^cursor=' }, skip => 1, count => 1,
	kind => 'status', status => 429, bare => 1, headers => { 'Retry-After' => '1' },
	body => { error => { name => 'TooManyRequests', message => 'Too many requests' }, response => { statusCode => 429 } });
$mock->mutate('backstage', op => 'remove', ref => "template:default/template-1");
($st, $pages, $changed, $err) = sync_row();
is($st, 'rate_limited', 'a 429 stops the listing');
like($err, qr{^rate limited: HTTP 429 \(GET http://127\.0\.0\.1:\d+/backstage/api/catalog/entities/by-query\?cursor=}, 'and says so');
is($pages, 2, 'after two pages');
is(scalar(keys %{ stored(1) }), 1, 'an incomplete listing marks nothing removed');
ok($node->safe_psql('postgres', "SELECT count(*) FROM engineering.sync_tasks") > 0, 'its cursor waits in the queue');
$mock->clear_requests;
($st, $pages, $changed) = sync_row();
is("$st|$changed", 'ok|1', 'the next sync completes the listing and marks the template removed');
like($mock->requests(vendor => 'backstage')->[0]{query}, qr/^cursor=/, 'resuming from the queued cursor');
$e = expected($mock->world('backstage'));
is_deeply(stored(0), $e, 'nothing was lost or doubled across the interruption');
is(scalar(keys %{ stored(1) }), 2, 'two entities are marked removed now');

# --- a page that is not JSON ------------------------------------------------------------------
$mock->fault(match => { vendor => 'backstage', query => '^cursor=' }, count => 1, kind => 'malformed');
($st, $pages, $changed, $err) = sync_row();
is($st, 'error', 'a malformed page is an error run');
like($err, qr/^bad response body \(GET .*cursor=/, 'that names the page');
is(scalar(keys %{ stored(1) }), 2, 'the unfinished listing marks nothing removed');
($st, $pages, $changed) = sync_row();
is("$st|$changed", 'ok|0', 'the next sync finishes the listing and finds nothing changed');

# --- a wrong token -------------------------------------------------------------------------------
$node->safe_psql('postgres', "SELECT engineering.set_source_token('cat', 'bs-wrong-token-987')");
($st, $pages, $changed, $err) = sync_row();
is($st, 'error', 'a wrong token fails');
like($err, qr/^HTTP 401 \(GET .*\): \{"error":\{"name":"AuthenticationError"/, 'with Backstage\'s error');
is(scalar(keys %{ stored(1) }), 2, 'and changes nothing');
is($node->safe_psql('postgres',
		"SELECT count(*) FROM engineering.sync_runs WHERE error ~ '(static|wrong)-token'"),
	'0', 'no run row keeps a token');
$node->safe_psql('postgres', "SELECT engineering.set_source_token('cat', '$token')");
($st) = sync_row();
is($st, 'ok', 'the right token works again');

$node->stop;
$mock->stop;
done_testing();
