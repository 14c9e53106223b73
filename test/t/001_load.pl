# The module loads both ways: preloaded (where it registers background work)
# and on demand in a server that never heard of it.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $preloaded = PostgreSQL::Test::Cluster->new('preloaded');
$preloaded->init;
$preloaded->append_conf('postgresql.conf',
	"shared_preload_libraries = 'engineering_metrics'");
$preloaded->start;
$preloaded->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
my $default_version = $preloaded->safe_psql('postgres',
	"SELECT default_version FROM pg_available_extensions WHERE name = 'engineering_metrics'");
like(
	$preloaded->safe_psql('postgres', 'SELECT engineering.build_info()'),
	qr/^engineering_metrics \Q$default_version\E, libcurl [0-9.]+, preloaded/,
	'build_info reports a preloaded module of the default version');

# the extension survives a restart and its schema is intact
$preloaded->restart;
is( $preloaded->safe_psql('postgres',
		"SELECT count(*) FROM pg_tables WHERE schemaname = 'engineering'"),
	$preloaded->safe_psql('postgres',
		"SELECT count(*) FROM pg_class c JOIN pg_depend d ON d.objid = c.oid
		 WHERE d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'engineering_metrics')
		   AND c.relkind = 'r'"),
	'every table in the schema belongs to the extension after a restart');
$preloaded->stop;

my $plain = PostgreSQL::Test::Cluster->new('plain');
$plain->init;
$plain->start;
$plain->safe_psql('postgres', 'CREATE EXTENSION engineering_metrics');
like(
	$plain->safe_psql('postgres', 'SELECT engineering.build_info()'),
	qr/not preloaded/,
	'loading on demand works and says the worker is unavailable');
$plain->safe_psql('postgres', 'DROP EXTENSION engineering_metrics');
is( $plain->safe_psql('postgres',
		"SELECT count(*) FROM pg_class WHERE relnamespace = 'engineering'::regnamespace"),
	'0', 'DROP EXTENSION leaves no relation behind');
$plain->stop;

done_testing();
