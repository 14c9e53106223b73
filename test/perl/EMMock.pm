# EMMock: start, drive and stop the loopback mock API (test/mock/mock_api.py)
# from TAP tests.
#
#   use EMMock;
#   my $mock = EMMock->new(generate => ['github:runs=250,seed=3']);
#   my $url  = $mock->url('github');          # http://127.0.0.1:PORT/github
#   $mock->fault(kind => 'status', status => 500, count => 3,
#                match => { vendor => 'github', path => 'actions/runs' });
#   my $log  = $mock->requests(vendor => 'github');   # [{method, path, query, auth_ok, status, fault}, ...]
#   my $world = $mock->world('github');
#   my $org = EMMock->new(org => 'seed=7,days=40');   # test/mock/org.py
#   $mock->stop;                                # also done when the object goes away
#
# Only core Perl modules (HTTP::Tiny, JSON::PP) and IPC::Run are used.
package EMMock;

use strict;
use warnings;

use Carp;
use File::Basename qw(dirname);
use File::Spec;
use HTTP::Tiny;
use IPC::Run;
use JSON::PP;

my $json = JSON::PP->new->utf8->canonical;

# test/perl/EMMock.pm -> test/mock/mock_api.py
my $script = File::Spec->catfile(dirname(File::Spec->rel2abs(__FILE__)),
	'..', 'mock', 'mock_api.py');

# new(%opts): starts the mock.  Options: generate => [specs]
# (vendor:key=value,...), org => 'seed=7,days=40' (a generated
# organisation for every vendor, test/mock/org.py), world => {vendor =>
# world} (loaded at start), port => N (default: any free port).
sub new
{
	my ($class, %opts) = @_;
	my @cmd = ('python3', $script, '--port', $opts{port} // 0);
	push @cmd, '--org', $opts{org} if defined $opts{org};
	push @cmd, '--generate', $_ for @{ $opts{generate} // [] };
	my ($in, $out, $err) = ('', '', '');
	my $h = IPC::Run::start(\@cmd, \$in, \$out, \$err);
	# the first line printed is the base address
	my $deadline = time + 30;
	while ($out !~ /\n/)
	{
		croak "mock API did not start: $err"
		  if !$h->pumpable || time > $deadline;
		$h->pump_nb;
		select(undef, undef, undef, 0.05);
	}
	my ($base) = $out =~ /^(http:\S+)/ or croak "unexpected mock output: $out";
	my $self = bless {
		handle => $h,
		base => $base,
		http => HTTP::Tiny->new(timeout => 30),
		stderr => \$err,
	}, $class;
	$self->load_world(%{ $opts{world} }) if $opts{world};
	return $self;
}

# http://127.0.0.1:PORT, or the vendor's root (http://127.0.0.1:PORT/github)
sub base_url { return $_[0]->{base}; }

sub url
{
	my ($self, $vendor) = @_;
	return "$self->{base}/$vendor";
}

# control($method, $path, $data): a call to /_control$path with a JSON
# body; returns the decoded JSON answer.
sub control
{
	my ($self, $method, $path, $data) = @_;
	my %args = (headers => { 'Content-Type' => 'application/json' });
	$args{content} = $json->encode($data) if defined $data;
	my $res = $self->{http}->request($method, "$self->{base}/_control$path", \%args);
	croak "mock control $method $path failed: $res->{status} $res->{content}"
	  unless $res->{success};
	return $json->decode($res->{content});
}

# the manifest of the generated organisation: {sources => [...], slos => [...], ...}
sub org_manifest { return $_[0]->control('GET', '/org'); }

sub world
{
	my ($self, $vendor) = @_;
	return $self->control('GET', '/world' . (defined $vendor ? "/$vendor" : ''));
}

# load_world(github => {...}, ...): replace vendors' worlds
sub load_world
{
	my ($self, %worlds) = @_;
	$self->control('PUT', "/world/$_", $worlds{$_}) for sort keys %worlds;
	return;
}

sub generate
{
	my ($self, $vendor, %params) = @_;
	return $self->control('POST', "/generate/$vendor", \%params);
}

sub mutate
{
	my ($self, $vendor, %op) = @_;
	return $self->control('POST', "/mutate/$vendor", \%op);
}

# fault(kind => ..., match => {...}, count => N, skip => N, ...): see mock_api.py
sub fault
{
	my ($self, %fault) = @_;
	return $self->control('POST', '/faults', \%fault)->{id};
}

sub clear_faults { $_[0]->control('DELETE', '/faults'); return; }

# requests(vendor => 'github'): the request log, oldest first
sub requests
{
	my ($self, %filter) = @_;
	my $q = defined $filter{vendor} ? "?vendor=$filter{vendor}" : '';
	return $self->control('GET', "/requests$q");
}

sub clear_requests { $_[0]->control('DELETE', '/requests'); return; }

sub stop
{
	my ($self) = @_;
	return unless $self->{handle};
	$self->{handle}->kill_kill(grace => 2);
	delete $self->{handle};
	return;
}

sub DESTROY
{
	my ($self) = @_;
	local $@;
	eval { $self->stop; };
	return;
}

1;
