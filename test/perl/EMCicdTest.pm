# EMCicdTest: expectations for the GitLab and Jenkins TAP tests
# (test/t/02[0-4]_*.pl), computed in Perl from the mock's world as the
# vendors document their APIs (README "Connectors > GitLab" and "Connectors >
# Jenkins", which link the vendors' pages), independently of the SQL that
# maps it, so that a test compares two implementations.
package EMCicdTest;

use strict;
use warnings;

use Exporter 'import';
use EMSyncTest qw(iso_epoch);

our @EXPORT_OK = qw(ms gitlab_expect jenkins_expect jenkins_leaf_jobs query_param);

# epoch seconds (with fractions) -> integer milliseconds
sub ms
{
	my ($t) = @_;
	return undef unless defined $t;
	return int($t * 1000 + ($t >= 0 ? 0.5 : -0.5));
}

sub _max { my ($a, $b) = @_; return !defined $a ? $b : !defined $b ? $a : $a > $b ? $a : $b; }

# the decoded value of a query parameter of a logged request
sub query_param
{
	my ($query, $name) = @_;
	for my $pair (split /&/, $query // '')
	{
		my ($k, $v) = split /=/, $pair, 2;
		next unless defined $k && $k eq $name;
		$v //= '';
		$v =~ tr/+/ /;
		$v =~ s/%([0-9A-Fa-f]{2})/chr(hex($1))/ge;
		return $v;
	}
	return undef;
}

my %pipeline_status = (
	success => 'success', failed => 'failure', canceled => 'cancelled', skipped => 'skipped',
	running => 'running', canceling => 'running', map { $_ => 'queued' }
	  qw(created waiting_for_resource preparing pending scheduled manual));
my %deployment_status = (success => 'success', failed => 'failure', canceled => 'cancelled',
	skipped => 'cancelled');

# gitlab_expect($world, 'group/name', since => epoch):
#   { pipelines => {id => {status, queued, started, finished}} (times in ms),
#     deployments => {id => {status, environment, finished, sha}},
#     links => {deployment id => [shas shipped]},
#     merge_requests => {iid => {merged, sha, first_commit}} }
sub gitlab_expect
{
	my ($world, $path, %opt) = @_;
	my $p = $world->{projects}{$path} or die "no project $path in the world";
	my $since = $opt{since} // 0;
	my %e = (pipelines => {}, deployments => {}, links => {}, merge_requests => {});

	for my $pl (@{ $p->{pipelines} })
	{
		my $created = iso_epoch($pl->{created_at});
		next if $created < $since;
		my $status = $pipeline_status{ $pl->{status} // '' }
		  // (defined $pl->{finished_at} ? 'failure' : 'running');
		my $started = defined $pl->{started_at} ? _max(iso_epoch($pl->{started_at}), $created) : undef;
		my $finished;
		if (grep { $status eq $_ } qw(success failure cancelled skipped))
		{
			$finished = iso_epoch($pl->{finished_at})
			  // (defined $started && defined $pl->{duration} ? $started + $pl->{duration} : undef)
			  // iso_epoch($pl->{updated_at}) // $started // $created;
			$finished = _max(_max($finished, $started), $created);
		}
		$e{pipelines}{ $pl->{id} } = { status => $status, queued => ms($created),
			started => ms($started), finished => ms($finished) };
	}

	for my $d (@{ $p->{deployments} })
	{
		next if iso_epoch($d->{created_at}) < $since;
		my $status = $deployment_status{ $d->{status} // '' } // 'running';
		my $job = $d->{job} // {};
		my $started = iso_epoch($job->{started_at}) // iso_epoch($d->{created_at});
		my $finished = $status eq 'running' ? undef
		  : _max(iso_epoch($job->{finished_at}) // iso_epoch($d->{updated_at}), $started);
		$e{deployments}{ $d->{id} } = { status => $status, finished => ms($finished),
			environment => $d->{environment} // 'production', sha => $d->{sha} };
	}

	# commits each successful deployment shipped: those after the previous
	# successful deployment of the same environment, none for the first
	my @shas = map { $_->{id} } @{ $p->{commits} };
	my %pos = map { $shas[$_] => $_ } 0 .. $#shas;
	my %previous;
	for my $id (sort { $e{deployments}{$a}{finished} <=> $e{deployments}{$b}{finished} || $a <=> $b }
		grep { $e{deployments}{$_}{status} eq 'success' } keys %{ $e{deployments} })
	{
		my $d = $e{deployments}{$id};
		my $prev = $previous{ $d->{environment} };
		if (defined $prev && $prev ne $d->{sha})
		{
			$e{links}{$id} = $pos{$prev} < $pos{ $d->{sha} }
			  ? [ @shas[ $pos{$prev} + 1 .. $pos{ $d->{sha} } ] ] : [];
		}
		$previous{ $d->{environment} } = $d->{sha};
	}

	my %authored = map { $_->{id} => iso_epoch($_->{authored_date}) } @{ $p->{commits} };
	for my $m (@{ $p->{merge_requests} })
	{
		next unless ($m->{state} // '') eq 'merged';
		my $merged = iso_epoch($m->{merged_at}) // iso_epoch($m->{updated_at});
		next if $merged < $since;
		my ($first) = sort { $a <=> $b } map { $authored{$_} } grep { exists $authored{$_} } @{ $m->{commits} // [] };
		$e{merge_requests}{ $m->{iid} } = { merged => ms(_max($merged, iso_epoch($m->{created_at}))),
			sha => $m->{merge_commit_sha} // $m->{squash_commit_sha} // $m->{sha},
			first_commit => ms($first) };
	}
	return \%e;
}

# the jobs with builds under a configured path (itself, or inside it when
# it is a folder), as the world defines folders: a path with children
sub jenkins_leaf_jobs
{
	my ($world, $root) = @_;
	my @paths = keys %{ $world->{jobs} };
	return sort grep {
		my $p = $_;
		($p eq $root || index($p, "$root/") == 0)
		  && !grep { index($_, "$p/") == 0 } @paths
	} @paths;
}

my %run_status = (SUCCESS => 'success', ABORTED => 'cancelled', NOT_BUILT => 'skipped');

# jenkins_expect($world, roots => [...], since_ms => n, deployment_jobs => qr//,
#                environment_parameter => 'ENV', deployment_environment => 'production'):
#   { runs => {"job#number" => {status, started, finished, queued, sha, branch}},
#     deployments => {"job#number" => {status, environment, finished}} }
sub jenkins_expect
{
	my ($world, %opt) = @_;
	my %e = (runs => {}, deployments => {});
	for my $root (@{ $opt{roots} })
	{
		for my $job (jenkins_leaf_jobs($world, $root))
		{
			for my $b (@{ $world->{jobs}{$job}{builds} })
			{
				next if $b->{timestamp} < ($opt{since_ms} // 0);
				my $status = ($b->{building} || !defined $b->{result}) ? 'running'
				  : $run_status{ $b->{result} } // 'failure';
				my $finished = $status eq 'running' ? undef : $b->{timestamp} + ($b->{duration} // 0);
				my $branch = $b->{branch};
				$branch =~ s{^(refs/remotes/[^/]+/|refs/heads/|origin/)}{} if defined $branch;
				# a branch job of a multibranch project: its name is the branch
				my ($parent, $name) = $job =~ m{^(.*)/([^/]+)$};
				if ($job ne $root && defined $parent && ($world->{jobs}{$parent}{class} // '') =~ /MultiBranch/)
				{
					($branch = $name) =~ s/%2F/\//gi;
				}
				$e{runs}{"$job#$b->{number}"} = {
					status => $status, started => $b->{timestamp}, finished => $finished,
					queued => defined $b->{queuing_ms} ? $b->{timestamp} - $b->{queuing_ms} : undef,
					sha => $b->{sha}, branch => $branch };
				next unless $opt{deployment_jobs} && $job =~ $opt{deployment_jobs};
				my ($env) = map { $_->{value} } grep { $_->{name} eq ($opt{environment_parameter} // '') }
				  @{ $b->{parameters} // [] };
				$e{deployments}{"$job#$b->{number}"} = {
					status => $status eq 'skipped' ? 'cancelled' : $status,
					environment => (defined $env && $env ne '') ? $env : ($opt{deployment_environment} // 'production'),
					finished => $finished };
			}
		}
	}
	return \%e;
}

1;
