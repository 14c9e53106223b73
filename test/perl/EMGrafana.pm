# EMGrafana: run the SQL of Grafana dashboards the way Grafana would, and
# check what comes back (test/t/050_dashboards.pl).
#
# Grafana turns a panel's rawSql into SQL in two steps, and so does this
# module:
#
# 1. Template variables, in the browser (templateSrv + the SQL data
#    source's interpolateVariable):
#      $var, ${var}, [[var]]  a single-value variable: its value as is;
#                             a multi-value or "include All" variable: each
#                             value quoted ('a','b'), quotes doubled
#      ${var:sqlstring}       each value quoted, quotes doubled: 'a','b'
#      ${var:csv}, ${var:raw} values joined with commas, unquoted
#      ${var:singlequote}     'a','b' with \' escapes; ${var:doublequote} "a","b"
#    "All" stands for every option of the variable, or, when the variable
#    has a custom allValue, for that text as it is (variables in it
#    replaced), whatever the format.  Variables are evaluated in dashboard
#    order, so a variable's query can use the ones before it.
#
# 2. Macros, in Grafana's server (pkg/tsdb/grafana-postgresql-datasource/
#    macros.go), with the range [from, to] in UTC, written as RFC 3339 with
#    the fraction Go's RFC3339Nano keeps:
#      $__timeFilter(col)          col BETWEEN '2024-04-01T12:00:00.123Z' AND '...'
#      $__timeFrom(), $__timeTo()  '2024-04-01T12:00:00.123Z'
#      $__timeGroup(col, '1d')     floor(extract(epoch from col)/86400)*86400
#                                  (an AS "time" is added when a comma follows,
#                                  as Grafana does for pre-5.3 dashboards)
#      $__timeGroupAlias(col,'1d') the same AS "time"
#      $__time(col), $__timeEpoch(col)
#      $__unixEpochFilter(col), $__unixEpochFrom(), $__unixEpochTo(),
#      $__unixEpochNanoFilter(col), $__unixEpochNanoFrom(), $__unixEpochNanoTo(),
#      $__unixEpochGroup(col,'1h'), $__unixEpochGroupAlias(col,'1h')
#    Intervals: a number with ms, s, m, h, d, w, M (30 d) or y (365 d).  A
#    fill argument of $__timeGroup is accepted and ignored (Grafana fills in
#    gaps after the query).  As in Grafana, a macro's arguments end at the
#    first ")": an argument cannot contain parentheses.  Anything else
#    written $__name(...) or $__interval, $__interval_ms, $__from, $__to
#    fails: the test must cover every panel, not skip what it does not know.
package EMGrafana;

use strict;
use warnings;

use Carp;
use Exporter 'import';
use JSON::PP;
use POSIX qw(floor);

our @EXPORT_OK = qw(load_dashboards queries interpolate expand_macros rfc3339 check_result
  scenario_values run_query check_dashboard);

# ---------------------------------------------------------------------------
# Dashboards and the queries in them
# ---------------------------------------------------------------------------

# load_dashboards($dir): [{file, dashboard}] of every *.json in $dir
sub load_dashboards
{
	my ($dir) = @_;
	my @out;
	for my $file (sort glob("$dir/*.json"))
	{
		open my $fh, '<', $file or croak "$file: $!";
		local $/;
		my $text = <$fh>;
		close $fh;
		push @out, { file => $file, dashboard => JSON::PP->new->decode($text) };
	}
	return \@out;
}

# every panel, rows' inner panels included
sub _panels
{
	my ($list) = @_;
	my @out;
	for my $p (@{ $list // [] })
	{
		push @out, $p;
		push @out, _panels($p->{panels}) if $p->{type} && $p->{type} eq 'row';
	}
	return @out;
}

# queries($dashboard): every SQL text Grafana would run for it, as
#   {kind => 'panel'|'annotation'|'variable', name, panel_type, format, sql,
#    panel (the panel or annotation object), target}
# and the problems found on the way (a target without rawSql, a panel type
# this test does not know, a repeated panel, ...).
my %known_panel = map { $_ => 1 } qw(row stat table timeseries heatmap barchart text);

sub queries
{
	my ($dash) = @_;
	my (@q, @problems);
	for my $v (@{ $dash->{templating}{list} // [] })
	{
		next if $v->{type} eq 'datasource' || $v->{type} eq 'constant' || $v->{type} eq 'custom';
		if ($v->{type} ne 'query')
		{
			push @problems, "variable $v->{name}: type $v->{type} is not covered";
			next;
		}
		my $sql = ref $v->{query} eq 'HASH' ? $v->{query}{rawSql} // $v->{query}{query} : $v->{query};
		push @q, { kind => 'variable', name => $v->{name}, panel_type => 'variable', format => 'table',
			sql => $sql, panel => $v };
	}
	for my $a (@{ $dash->{annotations}{list} // [] })
	{
		next if $a->{builtIn};
		my $t = $a->{target} // {};
		if (!defined $t->{rawSql})
		{
			push @problems, "annotation $a->{name}: no rawSql";
			next;
		}
		push @q, { kind => 'annotation', name => $a->{name}, panel_type => 'annotation',
			format => $t->{format}, sql => $t->{rawSql}, panel => $a, target => $t };
	}
	for my $p (_panels($dash->{panels}))
	{
		my $title = $p->{title} // "panel $p->{id}";
		if (!$known_panel{ $p->{type} // '' })
		{
			push @problems, "panel \"$title\": type " . ($p->{type} // 'none') . " is not covered";
			next;
		}
		next if $p->{type} eq 'row' || $p->{type} eq 'text';
		push @problems, "panel \"$title\": repeated panels are not covered" if $p->{repeat};
		my @targets = @{ $p->{targets} // [] };
		push @problems, "panel \"$title\": no query" unless @targets;
		for my $t (@targets)
		{
			if (!defined $t->{rawSql} || $t->{rawSql} !~ /\S/)
			{
				push @problems, "panel \"$title\" target $t->{refId}: no rawSql";
				next;
			}
			push @q, { kind => 'panel', name => $title, panel_type => $p->{type},
				format => $t->{format}, sql => $t->{rawSql}, panel => $p, target => $t };
		}
	}
	return (\@q, \@problems);
}

# ---------------------------------------------------------------------------
# Step 1: template variables
# ---------------------------------------------------------------------------

sub _quote { my ($v) = @_; $v =~ s/'/''/g; return "'$v'"; }

# interpolate($sql, \%vars): %vars maps a name to {multi => 0|1,
# include_all => 0|1, values => [...], all => 0|1 (All is selected),
# all_value => custom allValue or undef}; dies on an unknown variable or
# format
sub interpolate
{
	my ($sql, $vars, $depth) = @_;
	croak "variables refer to each other in a loop" if ($depth // 0) > 5;
	my $format_value = sub {
		my ($name, $fmt) = @_;
		croak "unknown variable \$$name" unless $vars->{$name};
		my $v = $vars->{$name};
		return interpolate($v->{all_value}, $vars, ($depth // 0) + 1)
		  if $v->{all} && defined $v->{all_value};
		my @values = @{ $v->{values} };
		if (!defined $fmt)
		{
			if ($v->{multi} || $v->{include_all})
			{
				return join(',', map { _quote($_) } @values);
			}
			croak "variable \$$name has " . scalar(@values) . " values" unless @values == 1;
			my $raw = $values[0];
			$raw =~ s/'/''/g;
			return $raw;
		}
		return join(',', map { _quote($_) } @values) if $fmt eq 'sqlstring';
		return join(',', @values) if $fmt eq 'csv' || $fmt eq 'raw';
		return join(',', map { (my $x = $_) =~ s/'/\\'/g; "'$x'" } @values) if $fmt eq 'singlequote';
		return join(',', map { (my $x = $_) =~ s/"/\\"/g; "\"$x\"" } @values) if $fmt eq 'doublequote';
		croak "variable format :$fmt of \$$name is not covered";
	};
	# Grafana's own variables that this test does not compute
	if ($sql =~ /\$(__interval(?:_ms)?|__from|__to|__rate_interval|__range\w*|__dashboard|__user|__org)\b/
		|| $sql =~ /\$\{(__\w+)/)
	{
		croak "Grafana variable \$$1 is not covered";
	}
	$sql =~ s{\$\{(\w+)(?::(\w+))?\}|\[\[(\w+)(?::(\w+))?\]\]|\$(?!__)(\w+)}{
		defined $1 ? $format_value->($1, $2)
		  : defined $3 ? $format_value->($3, $4)
		  : $format_value->($5, undef)
	}ge;
	return $sql;
}

# scenario_values($variable, $options, $scenario): (values, all) a
# variable takes in a scenario: 'default' (its saved current value; All =
# every option), 'one' (the first option), 'two' (the first two options, or
# one for a single-value variable); a variable that can be All and has no
# option (nothing to choose from) is All
sub scenario_values
{
	my ($v, $options, $scenario) = @_;
	my $can_all = $v->{includeAll};
	if (!@$options)
	{
		return ([], 1) if $can_all;
		croak "variable $v->{name} has no options";
	}
	if ($scenario eq 'default')
	{
		my $cur = $v->{current}{value};
		my @cur = ref $cur eq 'ARRAY' ? @$cur : ($cur);
		return ([@$options], 1) if grep { defined $_ && $_ eq '$__all' } @cur;
		for my $c (@cur)
		{
			croak "variable $v->{name}: current value '$c' is not an option (" . join(', ', @$options) . ")"
			  unless grep { $_ eq $c } @$options;
		}
		return (\@cur, 0);
	}
	return ([ $options->[0] ], 0) if $scenario eq 'one' || !$v->{multi};
	return ([ @{$options}[ 0 .. ($#$options > 0 ? 1 : 0) ] ], 0);
}

# ---------------------------------------------------------------------------
# Step 2: macros
# ---------------------------------------------------------------------------

# epoch seconds (with a fraction) -> RFC 3339 in UTC the way Go's
# RFC3339Nano writes it: no trailing zeros in the fraction, none at all
# when it is zero
sub rfc3339
{
	my ($t) = @_;
	my $secs = floor($t);
	my $frac = sprintf('%.9f', $t - $secs);
	$frac =~ s/^0//;
	$frac =~ s/0+$//;
	$frac = '' if $frac eq '.';
	return POSIX::strftime('%Y-%m-%dT%H:%M:%S', gmtime($secs)) . $frac . 'Z';
}

my %unit_seconds = (ms => 0.001, s => 1, m => 60, h => 3600, d => 86400, w => 604800,
	M => 2592000, y => 31536000);

sub _interval_seconds
{
	my ($text, $macro) = @_;
	(my $x = $text // '') =~ s/^'|'$//g;
	croak "$macro: cannot parse interval $text" unless $x =~ /^(\d+(?:\.\d+)?)(ms|s|m|h|d|w|M|y)$/;
	return $1 * $unit_seconds{$2};
}

sub _num { my ($x) = @_; return $x == int($x) ? sprintf('%d', $x) : "$x"; }

# expand_macros($sql, $from, $to): $from and $to in epoch seconds
sub expand_macros
{
	my ($sql, $from, $to) = @_;
	my ($f, $t) = (rfc3339($from), rfc3339($to));
	my $out = '';
	while ($sql =~ /\$([_a-zA-Z0-9]+)\(([^\)]*)\)/g)
	{
		my ($name, $argtext) = ($1, $2);
		my ($start, $end) = ($-[0], $+[0]);
		my @args = map { s/^\s+|\s+$//gr } split /,/, $argtext, -1;
		@args = () if @args == 1 && $args[0] eq '';
		$out .= substr($sql, 0, $start);
		my $rest = substr($sql, $end);
		# Grafana: "$__timeGroup(...)," is the pre-5.3 spelling of the alias form
		$name = '__timeGroupAlias' if $name eq '__timeGroup' && $rest =~ /^,/;
		my $col = $args[0];
		my $need_col = sub { croak "\$$name needs a column" unless defined $col && $col ne ''; };
		my $r;
		if ($name eq '__time') { $need_col->(); $r = qq{$col AS "time"}; }
		elsif ($name eq '__timeEpoch') { $need_col->(); $r = qq{extract(epoch from $col) as "time"}; }
		elsif ($name eq '__timeFilter') { $need_col->(); $r = "$col BETWEEN '$f' AND '$t'"; }
		elsif ($name eq '__timeFrom') { $r = "'$f'"; }
		elsif ($name eq '__timeTo') { $r = "'$t'"; }
		elsif ($name eq '__timeGroup' || $name eq '__timeGroupAlias')
		{
			croak "\$$name needs a column and an interval" unless @args >= 2;
			my $s = _num(_interval_seconds($args[1], $name));
			$r = "floor(extract(epoch from $col)/$s)*$s";
			$r .= ' AS "time"' if $name eq '__timeGroupAlias';
		}
		elsif ($name eq '__unixEpochFilter') { $need_col->(); $r = sprintf('%s >= %d AND %s <= %d', $col, floor($from), $col, floor($to)); }
		elsif ($name eq '__unixEpochNanoFilter')
		{
			$need_col->();
			$r = sprintf('%s >= %s AND %s <= %s', $col, _nanos($from), $col, _nanos($to));
		}
		elsif ($name eq '__unixEpochFrom') { $r = sprintf('%d', floor($from)); }
		elsif ($name eq '__unixEpochTo') { $r = sprintf('%d', floor($to)); }
		elsif ($name eq '__unixEpochNanoFrom') { $r = _nanos($from); }
		elsif ($name eq '__unixEpochNanoTo') { $r = _nanos($to); }
		elsif ($name eq '__unixEpochGroup' || $name eq '__unixEpochGroupAlias')
		{
			croak "\$$name needs a column and an interval" unless @args >= 2;
			my $s = _num(_interval_seconds($args[1], $name));
			$r = "floor(($col)/$s)*$s";
			$r .= ' AS "time"' if $name eq '__unixEpochGroupAlias';
		}
		else { croak "macro \$$name(...) is not covered"; }
		$out .= $r;
		$sql = $rest;
		pos($sql) = 0;
	}
	$out .= $sql;
	croak "macro-like text left after expansion: $1" if $out =~ /(\$__\w+)/;
	return $out;
}

sub _nanos { my ($t) = @_; return sprintf('%d%09d', floor($t), ($t - floor($t)) * 1e9); }

# ---------------------------------------------------------------------------
# Running a query
# ---------------------------------------------------------------------------

# run_query($psql, $sql): describes and runs $sql in one psql session.
# $psql->($script) runs a psql script (unaligned output, no headers wanted)
# and returns ($exit_code, $stdout, $stderr).  Returns {columns => [[name,
# type], ...], rows => [[value or undef, ...], ...]}, or {error => text}.
my ($FS, $RS, $NUL) = ("\x1f", "\x1e", "\x1d");

sub run_query
{
	my ($psql, $sql) = @_;
	(my $body = $sql) =~ s/[\s;]+\z//;
	my $script = join("\n",
		'\\set ON_ERROR_STOP 1', '\\pset format unaligned', '\\pset tuples_only on',
		"\\pset fieldsep '$FS'", "\\pset recordsep '$RS'", "\\pset null '$NUL'",
		'\\echo __DESC__', $body, '\\gdesc', '\\echo __ROWS__', $body, ';', '');
	my ($ret, $out, $err) = $psql->($script);
	return { error => ($err || "psql exited with $ret") } if $ret != 0 || $out !~ /__DESC__\n(.*?)\n?__ROWS__\n?(.*)\z/s;
	my ($desc, $rows) = ($1, $2);
	my $split = sub {
		my ($text) = @_;
		$text =~ s/\n\z//;
		$text =~ s/$RS\z//;
		return () if $text eq '';
		return map { [ map { $_ eq $NUL ? undef : $_ } split /$FS/, $_, -1 ] } split /$RS/, $text, -1;
	};
	return { columns => [ $split->($desc) ], rows => [ $split->($rows) ] };
}

# ---------------------------------------------------------------------------
# Checking a result
# ---------------------------------------------------------------------------

my %numeric = map { $_ => 1 } ('smallint', 'integer', 'bigint', 'numeric', 'real', 'double precision');
my %timey = map { $_ => 1 } ('timestamp with time zone', 'timestamp without time zone', 'date');
my %texty = map { $_ => 1 } ('text', 'character varying', 'name', 'character');

sub _is_numeric_type { my ($type) = @_; return $numeric{ $type =~ s/\(.*//r }; }

# check_result($query, $result, $must_have_rows): the problems of one
# result ({columns => [[name, type], ...], rows => [[...], ...]}, undef
# standing for NULL), as a list of messages (empty: fine).
#   time_series  a column named time (timestamp or epoch number), sorted
#                ascending; every other column numeric (a value) or text
#                (a label); at least one numeric column
#   table        any columns; stat panels need a numeric column
#   annotation   time (and timeend) and text columns
#   variable     one column, or __text and __value
#   panel overrides "byName" must name columns of the result
# With $must_have_rows, the result must hold a row, and a panel a non-NULL
# number (an empty or all-NULL panel is a failure).
sub check_result
{
	my ($q, $res, $must_have_rows) = @_;
	my @problems;
	my @cols = @{ $res->{columns} };
	my %type = map { $_->[0] => $_->[1] } @cols;
	my @names = map { $_->[0] } @cols;
	my $fmt = $q->{format} // '';
	my $kind = $q->{kind};

	if ($kind eq 'panel' && $fmt ne 'time_series' && $fmt ne 'table')
	{
		push @problems, "format must be time_series or table, not '" . ($fmt || 'unset (Grafana defaults to time_series)') . "'";
	}
	if ($kind eq 'panel' && $q->{panel_type} =~ /^(timeseries|heatmap)$/ && $fmt ne 'time_series')
	{
		push @problems, "a $q->{panel_type} panel needs format time_series";
	}
	my @numeric_cols;
	if ($fmt eq 'time_series' && $kind eq 'panel')
	{
		if (!exists $type{time})
		{
			push @problems, 'no column named time';
		}
		elsif (!$timey{ $type{time} } && !_is_numeric_type($type{time}))
		{
			push @problems, "column time is $type{time}, not a timestamp or epoch number";
		}
		for my $c (@cols)
		{
			next if $c->[0] eq 'time';
			if (_is_numeric_type($c->[1])) { push @numeric_cols, $c->[0]; }
			elsif (!$texty{ $c->[1] }) { push @problems, "column $c->[0] is $c->[1]: neither a number nor a label"; }
		}
		push @problems, 'no numeric value column' unless @numeric_cols;
		if (exists $type{time})
		{
			my $ti = (grep { $names[$_] eq 'time' } 0 .. $#names)[0];
			my @t = map { $_->[$ti] } @{ $res->{rows} };
			for my $i (1 .. $#t)
			{
				next unless defined $t[$i] && defined $t[ $i - 1 ];
				my $cmp = _is_numeric_type($type{time}) ? $t[ $i - 1 ] <=> $t[$i] : $t[ $i - 1 ] cmp $t[$i];
				if ($cmp > 0)
				{
					push @problems, "rows are not sorted by time ($t[$i-1] before $t[$i])";
					last;
				}
			}
			push @problems, 'a NULL time' if grep { !defined } @t;
		}
	}
	elsif ($kind eq 'panel')
	{
		@numeric_cols = grep { _is_numeric_type($type{$_}) } @names;
		push @problems, 'no column' unless @cols;
		push @problems, 'a stat panel needs a numeric column'
		  if $q->{panel_type} eq 'stat' && !@numeric_cols;
	}
	elsif ($kind eq 'annotation')
	{
		push @problems, 'an annotation needs a time column' unless $type{time} && $timey{ $type{time} };
		push @problems, 'an annotation needs a text column' unless $type{text};
	}
	elsif ($kind eq 'variable')
	{
		push @problems, 'a variable query returns one column, or __text and __value'
		  unless @cols == 1 || ($type{__text} && $type{__value});
	}

	# overrides must name columns the query returns (a renamed column would
	# silently lose its unit or colours)
	if ($kind eq 'panel')
	{
		for my $o (@{ $q->{panel}{fieldConfig}{overrides} // [] })
		{
			next unless ($o->{matcher}{id} // '') eq 'byName';
			my $n = $o->{matcher}{options};
			push @problems, "an override names column \"$n\", which the query does not return"
			  unless exists $type{$n};
		}
	}

	if ($must_have_rows)
	{
		if (!@{ $res->{rows} })
		{
			push @problems, 'no rows: the panel would be empty';
		}
		elsif ($kind eq 'panel')
		{
			my %idx = map { $names[$_] => $_ } 0 .. $#names;
			my $any = grep {
				my $row = $_;
				grep { defined $row->[ $idx{$_} ] } @numeric_cols
			} @{ $res->{rows} };
			push @problems, 'every number is NULL: the panel would show no data' if @numeric_cols && !$any;
		}
	}
	return @problems;
}

# ---------------------------------------------------------------------------
# A whole dashboard in one scenario
# ---------------------------------------------------------------------------

# check_dashboard($dashboard, $psql, $from, $to, $scenario): evaluates the
# variables (in order) for the scenario, then runs every annotation and
# panel query.  Returns one entry per query: {label, problems => [...], sql
# (as run)}; the first entry collects the problems of the dashboard itself.
# In the 'default' scenario every query must return data.
sub check_dashboard
{
	my ($dash, $psql, $from, $to, $scenario) = @_;
	my ($queries, $problems) = queries($dash);
	my @out = ({ label => 'dashboard structure', problems => [@$problems], sql => '' });
	my %vars;
	my %uses_ds;
	for my $q (@$queries)
	{
		my $label = "$q->{kind} \"$q->{name}\"";
		my @p;
		my $sql = eval { expand_macros(interpolate($q->{sql}, \%vars), $from, $to) };
		if (!defined $sql)
		{
			(my $e = $@) =~ s/ at \S+ line \d+.*//s;
			push @out, { label => $label, problems => ["cannot expand: $e"], sql => $q->{sql} };
			next;
		}
		my $ds = ($q->{target} // $q->{panel})->{datasource} // $q->{panel}{datasource} // {};
		push @p, 'data source is not ${datasource}' unless ($ds->{uid} // '') eq '${datasource}';
		my $res = run_query($psql, $sql);
		if ($res->{error})
		{
			push @out, { label => $label, problems => [ @p, "query failed: $res->{error}" ], sql => $sql };
			next;
		}
		push @p, check_result($q, $res, $scenario eq 'default');
		if ($q->{kind} eq 'variable')
		{
			my $v = $q->{panel};
			my $vi = (grep { $res->{columns}[$_][0] eq '__value' } 0 .. $#{ $res->{columns} })[0] // 0;
			my @options = map { $_->[$vi] } @{ $res->{rows} };
			my ($values, $all) = eval { scenario_values($v, \@options, $scenario) };
			if (!$values)
			{
				(my $e = $@) =~ s/ at \S+ line \d+.*//s;
				push @p, $e;
				($values, $all) = ([@options], 1);
			}
			$vars{ $v->{name} } = { multi => $v->{multi}, include_all => $v->{includeAll}, values => $values,
				all => $all, all_value => (($v->{allValue} // '') ne '' ? $v->{allValue} : undef) };
		}
		push @out, { label => $label, problems => \@p, sql => $sql };
	}
	return @out;
}

1;
