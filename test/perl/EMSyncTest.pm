# EMSyncTest: helpers shared by the sync engine's TAP tests (test/t/01*.pl).
#
# The expectations are computed here, in Perl, from the mock's world as the
# API describes it (README "Connectors > GitHub", https://docs.github.com/rest),
# independently of the SQL that maps it, so that a test compares two
# implementations of the rules.
package EMSyncTest;

use strict;
use warnings;

use Exporter 'import';
use Test::More ();
use Time::Local qw(timegm);

our @EXPORT_OK = qw(iso_epoch github_expect check_github db_rows db_map wait_for);

# ISO 8601 with Z or an offset -> epoch seconds (fractions kept)
sub iso_epoch
{
	my ($s) = @_;
	return undef unless defined $s;
	$s =~ /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(\.\d+)?\s*(Z|[+-]\d\d:?\d\d)$/i
	  or die "not an ISO time: $s";
	my $t = timegm($6, $5, $4, $3, $2 - 1, $1) + ($7 // 0);
	if (uc($8) ne 'Z')
	{
		my ($sign, $h, $m) = $8 =~ /^([+-])(\d\d):?(\d\d)$/;
		$t -= ($sign eq '+' ? 1 : -1) * ($h * 3600 + $m * 60);
	}
	return $t;
}

sub _run_status
{
	my ($status, $conclusion) = @_;
	if (($status // '') eq 'completed' || (!defined $status && defined $conclusion))
	{
		my %c = (success => 'success', neutral => 'success', skipped => 'skipped',
			cancelled => 'cancelled', stale => 'cancelled');
		return $c{ $conclusion // '' } // 'failure';
	}
	return 'running' if ($status // '') eq 'in_progress';
	return 'queued' if grep { ($status // '') eq $_ } qw(queued waiting requested pending);
	return 'running';
}

# github_expect($world, 'owner/name', since => epoch):
#   { runs => {"id/attempt" => {status, attempt}},
#     deployments => {id => {status, finished (epoch or undef), environment, sha}},
#     pulls => {number => {merged, first_commit}},
#     links => {deployment id => [shas shipped]} }
sub github_expect
{
	my ($world, $name, %opt) = @_;
	my $repo = $world->{repos}{$name} or die "no repo $name in the world";
	my $since = $opt{since} // 0;
	my %e = (runs => {}, deployments => {}, pulls => {}, links => {});

	for my $run (@{ $repo->{runs} })
	{
		next if iso_epoch($run->{created_at}) < $since;
		my $n = $run->{run_attempt} // 1;
		$e{runs}{"$run->{id}/$n"} =
		  { status => _run_status($run->{status}, $run->{conclusion}), attempt => $n };
		for my $a (@{ $run->{attempts} // [] })
		{
			$e{runs}{"$run->{id}/$a->{run_attempt}"} = {
				status => _run_status($a->{status}, $a->{conclusion}),
				attempt => $a->{run_attempt}
			};
		}
	}

	for my $d (@{ $repo->{deployments} })
	{
		next if iso_epoch($d->{created_at}) < $since;
		my @st = @{ $d->{statuses} // [] };
		my ($success) = sort { $a <=> $b } map { iso_epoch($_->{created_at}) }
		  grep { $_->{state} eq 'success' } @st;
		my ($failed) = sort { $a <=> $b } map { iso_epoch($_->{created_at}) }
		  grep { $_->{state} eq 'failure' || $_->{state} eq 'error' } @st;
		my $status = defined $success ? 'success' : defined $failed ? 'failure' : 'running';
		$e{deployments}{ $d->{id} } = {
			status => $status,
			finished => $success // $failed,
			environment => $d->{environment} || 'production',
			sha => $d->{sha},
		};
	}

	# commits each successful deployment shipped: those after the previous
	# successful deployment of the same environment in the linear history,
	# nothing for the first one
	my @shas = map { $_->{sha} } @{ $repo->{commits} };
	my %pos = map { $shas[$_] => $_ } 0 .. $#shas;
	my %previous;
	for my $id (sort { $e{deployments}{$a}{finished} <=> $e{deployments}{$b}{finished} || $a <=> $b }
		grep { $e{deployments}{$_}{status} eq 'success' } keys %{ $e{deployments} })
	{
		my $d = $e{deployments}{$id};
		my $prev = $previous{ $d->{environment} };
		if (defined $prev && $pos{$prev} < $pos{ $d->{sha} })
		{
			$e{links}{$id} = [ @shas[ $pos{$prev} + 1 .. $pos{ $d->{sha} } ] ];
		}
		elsif (defined $prev)
		{
			$e{links}{$id} = [];
		}
		$previous{ $d->{environment} } = $d->{sha};
	}

	my %author_date = map { $_->{sha} => iso_epoch($_->{author}{date}) } @{ $repo->{commits} };
	for my $p (@{ $repo->{pulls} })
	{
		next unless defined $p->{merged_at} && ($p->{state} // 'closed') eq 'closed';
		next if iso_epoch($p->{updated_at}) < $since;
		my ($first) = sort { $a <=> $b } map { $author_date{$_} } @{ $p->{commits} // [] };
		$e{pulls}{ $p->{number} } = { merged => iso_epoch($p->{merged_at}), first_commit => $first };
	}
	return \%e;
}

# check_github($node, $source_id, $expect, $label): the source's rows are
# exactly what github_expect() says (runs and attempts with their status,
# deployments, the commits each deployment shipped, merged pull requests)
sub check_github
{
	my ($node, $sid, $e, $label) = @_;
	Test::More::is_deeply(
		db_map($node, "SELECT external_id, status FROM engineering.pipeline_runs WHERE source_id = $sid"),
		{ map { $_ => $e->{runs}{$_}{status} } keys %{ $e->{runs} } },
		"$label: every run attempt once, with its status");
	Test::More::is_deeply(
		{ map { $_->[0] => [ $_->[1], $_->[2] ] } @{ db_rows($node,
			"SELECT external_id, status, coalesce(extract(epoch FROM finished_at)::float8::text, '')
			 FROM engineering.deployments WHERE source_id = $sid") } },
		{ map { $_ => [ $e->{deployments}{$_}{status}, $e->{deployments}{$_}{finished} // '' ] }
			  keys %{ $e->{deployments} } },
		"$label: every deployment once, with its status and time");
	Test::More::is_deeply(
		db_map($node,
			"SELECT d.external_id, string_agg(c.commit_sha, ',' ORDER BY c.committed_at, c.commit_sha)
			 FROM engineering.deployment_changes dc
			 JOIN engineering.deployments d ON d.id = dc.deployment_id
			 JOIN engineering.changes c ON c.id = dc.change_id
			 WHERE d.source_id = $sid GROUP BY 1"),
		{ map { $_ => join(',', @{ $e->{links}{$_} }) } grep { @{ $e->{links}{$_} } } keys %{ $e->{links} } },
		"$label: each deployment linked to the commits it shipped");
	Test::More::is_deeply(
		db_map($node, "SELECT number, extract(epoch FROM merged_at)::float8 FROM engineering.pull_requests WHERE source_id = $sid"),
		{ map { $_ => $e->{pulls}{$_}{merged} } keys %{ $e->{pulls} } },
		"$label: every merged pull request once");
	return;
}

# rows of a query as arrays of column values
sub db_rows
{
	my ($node, $sql, $db) = @_;
	my $out = $node->safe_psql($db // 'postgres', $sql);
	return [ map { [ split /\|/, $_, -1 ] } grep { length } split /\n/, $out ];
}

# first column => second column
sub db_map
{
	my ($node, $sql, $db) = @_;
	return { map { $_->[0] => $_->[1] } @{ db_rows($node, $sql, $db) } };
}

# wait_for($code, $seconds): true once $code returns true
sub wait_for
{
	my ($code, $seconds) = @_;
	my $deadline = time + ($seconds // 60);
	while (time < $deadline)
	{
		return 1 if $code->();
		select(undef, undef, undef, 0.2);
	}
	return 0;
}

1;
