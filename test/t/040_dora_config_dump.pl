# The DORA choices a user edits (dora_settings, dora_benchmarks) survive
# pg_dump and restore: CREATE EXTENSION puts the shipped rows back first,
# and the restored rows replace them instead of clashing.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('dora_dump');
$node->init;
$node->start;
$node->safe_psql('postgres', 'CREATE DATABASE source_db');
$node->safe_psql('source_db', q{
	CREATE EXTENSION engineering_metrics;
	UPDATE engineering.dora_settings
	   SET production_environment = 'prod-eu', lead_time_start = 'authored_at', benchmark_year = 2021;
	UPDATE engineering.dora_benchmarks SET min_deployment_days = 3
	 WHERE report_year = 2023 AND metric = 'deployment_frequency' AND level = 'elite';
	INSERT INTO engineering.dora_benchmarks (report_year, metric, level, rank, max_rate)
	VALUES (2025, 'change_failure_rate', 'ok', 1, 0.1), (2025, 'change_failure_rate', 'not ok', 2, NULL);
});

my $fingerprint = q{
	SELECT (SELECT production_environment || '/' || lead_time_start || '/' || benchmark_year
	          FROM engineering.dora_settings) || '/' ||
	       (SELECT count(*) FROM engineering.dora_settings) || '/' ||
	       (SELECT count(*) FROM engineering.dora_benchmarks) || '/' ||
	       (SELECT md5(string_agg(concat_ws(',', report_year, metric, level, rank, min_deployment_days,
	                                        per_period, max_duration, max_rate, description), ';'
	                              ORDER BY report_year, metric, rank))
	          FROM engineering.dora_benchmarks)
};
my $before = $node->safe_psql('source_db', $fingerprint);
like($before, qr{^prod-eu/authored_at/2021/1/34/}, 'source database holds the edits');

my $dump = $node->basedir . '/dump.sql';
$node->command_ok([ 'pg_dump', '-d', $node->connstr('source_db'), '-f', $dump ], 'pg_dump succeeds');
$node->safe_psql('postgres', 'CREATE DATABASE restored_db');
$node->command_ok([ 'psql', '-X', '-v', 'ON_ERROR_STOP=1', '-q', '-d', $node->connstr('restored_db'), '-f', $dump ],
	'the dump restores without errors');
is($node->safe_psql('restored_db', $fingerprint), $before, 'restored settings and tiers are the edited ones');

# and they are the ones the report uses
is($node->safe_psql('restored_db',
	q{SELECT count(*) FROM engineering.dora('2024-01-01', '2024-02-01', benchmark_year => 2025)}),
	'1', 'the added report year grades');

$node->stop;
done_testing();
