# EMPrometheus: expectations for the Prometheus connector's TAP tests
# (test/t/031-039), computed in Perl from the mock's world with the rules
# README "Connectors > Prometheus" states, independently of the SQL that
# applies them, so that a test compares two implementations of the rules:
#
#   a step with no total, or a total that rounds to 0, has no traffic: no row;
#   NaN, +Inf, -Inf or a negative count in either query: the step is skipped;
#   a step with a total but no good sample has good = 0;
#   counts are rounded to the nearest integer (halves away from zero);
#   good above total is clamped to total.
package EMPrometheus;

use strict;
use warnings;

use Exporter 'import';
use POSIX qw(floor strftime);

use EMSyncTest qw(iso_epoch db_rows);

our @EXPORT_OK = qw(prom_expect prom_rows prom_requests iso_z minute_floor);

sub iso_z
{
	my ($t) = @_;
	return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t));
}

# the last instant of a grid of $step seconds at or before $t
sub minute_floor
{
	my ($t, $step) = @_;
	$step //= 60;
	return floor($t / $step) * $step;
}

sub _special
{
	my ($v) = @_;
	return defined $v && $v =~ /^(NaN|[+-]?Inf)$/;
}

sub _round
{
	my ($v) = @_;
	return $v >= 0 ? int($v + 0.5) : -int(-$v + 0.5);
}

# prom_expect($world, good => q, total => q, from => t, to => t, step => s):
#   { unix time => "good|total" } for the instants from, from + step, ..., to
sub prom_expect
{
	my ($world, %o) = @_;
	my $totals = $world->{queries}{ $o{total} }{values} // {};
	my $goods = $world->{queries}{ $o{good} }{values} // {};
	my %e;
	for (my $t = $o{from}; $t <= $o{to}; $t += $o{step})
	{
		my ($tv, $gv) = ($totals->{$t}, $goods->{$t});
		next if !defined $tv || _special($tv) || _special($gv);
		my $total = _round($tv);
		my $good = defined $gv ? _round($gv) : 0;
		next if $total <= 0 || $good < 0;
		$good = $total if $good > $total;
		$e{$t} = "$good|$total";
	}
	return \%e;
}

# prom_rows($node, $slo): the same shape from slo_measurements
sub prom_rows
{
	my ($node, $slo) = @_;
	my $rows = db_rows($node, qq{
		SELECT extract(epoch FROM m.measured_at)::bigint, m.good, m.total
		FROM engineering.slo_measurements m JOIN engineering.slos s ON s.id = m.slo_id
		WHERE s.name = '$slo'});
	return { map { $_->[0] => "$_->[1]|$_->[2]" } @$rows };
}

sub _unescape
{
	my ($s) = @_;
	$s =~ tr/+/ /;
	$s =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
	return $s;
}

# prom_requests($mock): the range queries the mock received, oldest first,
# as {query, start, end, step (seconds), points, status, auth_ok}
sub prom_requests
{
	my ($mock) = @_;
	my @out;
	for my $r (@{ $mock->requests(vendor => 'prometheus') })
	{
		my %q = map { my ($k, $v) = split /=/, $_, 2; ($k => _unescape($v // '')) } split /&/, $r->{query};
		my ($start, $end) = map { /^[\d.]+$/ ? $_ : iso_epoch($_) } @q{qw(start end)};
		my ($step) = ($q{step} // '') =~ /^(\d+)s?$/;
		push @out, {
			query => $q{query}, start => $start, end => $end, step => $step,
			points => (defined $step && $step > 0 ? int(($end - $start) / $step) + 1 : undef),
			status => $r->{status}, auth_ok => $r->{auth_ok}, fault => $r->{fault} };
	}
	return \@out;
}

1;
