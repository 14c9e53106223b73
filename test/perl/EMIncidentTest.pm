# EMIncidentTest: expectations for the incident connectors' TAP tests
# (test/t/025-029), computed in Perl from the mock's world as the vendors
# document it (README "Connectors > PagerDuty" and "Connectors > Opsgenie",
# which link the vendors' pages), independently of the SQL that maps it, so
# that a test compares two implementations of the rules.
package EMIncidentTest;

use strict;
use warnings;

use Exporter 'import';
use List::Util qw(max min);
use POSIX qw(strftime);

use EMSyncTest qw(iso_epoch db_rows);

our @EXPORT_OK = qw(pagerduty_expect opsgenie_expect incident_rows ts iso_z vendor_epoch);

# a vendor time (ISO 8601, or a JSON number of epoch milliseconds) -> epoch seconds
sub vendor_epoch
{
	my ($v) = @_;
	return undef unless defined $v;
	return $v =~ /^-?\d+(\.\d+)?$/ ? $v / 1000 : iso_epoch($v);
}

# epoch seconds -> "%.3f" (how both sides are compared)
sub ts
{
	my ($t) = @_;
	return defined $t ? sprintf('%.3f', $t) : '';
}

sub iso_z
{
	my ($t) = @_;
	return strftime('%Y-%m-%dT%H:%M:%SZ', gmtime($t));
}

# pagerduty_expect($world, since => epoch, service_ids => [..], service_map => {..},
#                  log_entries => 1):
#   { id => [service, severity, status, opened, acknowledged, resolved] }
# acknowledged: the first acknowledge_log_entry of an incident that is
# acknowledged or resolved (its log is read); without log entries, the
# acknowledgement PagerDuty shows while the incident is acknowledged.
sub pagerduty_expect
{
	my ($world, %opt) = @_;
	my %status = (triggered => 'open', acknowledged => 'acknowledged', resolved => 'resolved');
	my %wanted = map { $_ => 1 } @{ $opt{service_ids} // [] };
	my $map = $opt{service_map} // {};
	my $logs = $opt{log_entries} // 1;
	my %e;
	for my $i (@{ $world->{incidents} })
	{
		my $created = vendor_epoch($i->{created_at});
		next if $created < ($opt{since} // 0);
		next if %wanted && !$wanted{ $i->{service}{id} };
		my $st = $status{ $i->{status} // '' } // 'open';
		my @acks = sort { $a <=> $b } map { vendor_epoch($_->{created_at}) }
		  grep { $_->{type} eq 'acknowledge_log_entry' } @{ $i->{log_entries} // [] };
		my $ack;
		if ($logs && ($i->{status} eq 'acknowledged' || $i->{status} eq 'resolved'))
		{
			$ack = $acks[0];
		}
		elsif ($i->{status} eq 'acknowledged')
		{
			# the mock shows the latest acknowledgement while acknowledged
			$ack = $acks[-1];
		}
		my $resolved;
		if ($st eq 'resolved')
		{
			my $r = $i->{resolved_at} // $i->{last_status_change_at} // $i->{updated_at} // $i->{created_at};
			$resolved = max(vendor_epoch($r), $created);
		}
		my $service = $map->{ $i->{service}{id} } // $map->{ $i->{service}{summary} } // $i->{service}{summary};
		$e{ $i->{id} } = [ $service, $i->{urgency} // 'high', $st, ts($created),
			ts(defined $ack ? max($ack, $created) : undef), ts($resolved) ];
	}
	return \%e;
}

# opsgenie_expect($world, since => epoch, service_map => {..}, match => sub { $incident }):
#   { id => [service, severity, status, opened, resolved] }
sub opsgenie_expect
{
	my ($world, %opt) = @_;
	my $map = $opt{service_map} // {};
	my %e;
	for my $i (@{ $world->{incidents} })
	{
		next if vendor_epoch($i->{createdAt}) < ($opt{since} // 0);
		next if $opt{match} && !$opt{match}->($i);
		my $opened = vendor_epoch($i->{impactStartDate} // $i->{createdAt});
		my $st = ($i->{status} // '') =~ /^(resolved|closed)$/ ? 'resolved' : 'open';
		my $resolved = $st eq 'resolved'
		  ? max(vendor_epoch($i->{impactEndDate} // $i->{updatedAt} // $i->{createdAt}), $opened) : undef;
		my @svc = @{ $i->{impactedServices} // [] };
		my ($mapped) = grep { exists $map->{$_} } @svc;
		my $service = defined $mapped ? $map->{$mapped} : $svc[0] // 'unknown';
		$e{ $i->{id} } = [ $service, $i->{priority} // 'P3', $st, ts($opened), ts($resolved) ];
	}
	return \%e;
}

# incident_rows($node, $source, $with_ack): the same shape from the table
sub incident_rows
{
	my ($node, $source, $with_ack) = @_;
	my $ack = $with_ack
	  ? q{coalesce(to_char(extract(epoch FROM i.acknowledged_at), 'FM9999999999990.000'), ''),} : '';
	my $rows = db_rows($node, qq{
		SELECT i.external_id, i.service, coalesce(i.severity, ''), i.status,
		       to_char(extract(epoch FROM i.opened_at), 'FM9999999999990.000'), $ack
		       coalesce(to_char(extract(epoch FROM i.resolved_at), 'FM9999999999990.000'), '')
		FROM engineering.incidents i JOIN engineering.sources s ON s.id = i.source_id
		WHERE s.name = '$source'});
	return { map { my @r = @$_; shift(@r) => \@r } @$rows };
}

1;
