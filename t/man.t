# The man pages stay honest: mandoc finds nothing worse than a style note;
# every option of `clusterd --help` has an entry in clusterd(8); every key
# the config parser accepts (listed by t/conf_keys, from the parser's own
# arrays) has an entry in clusterd.conf(5), and every entry there is a key
# the parser accepts; every service has a section; the examples pass -t.
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use File::Path ();
use JSON::PP;
use POSIX ();

my $src = $ENV{TOP_SRCDIR} or die "TOP_SRCDIR is not set (run under make check)\n";
my $build = $ENV{TOP_BUILDDIR} or die "TOP_BUILDDIR is not set\n";
my $bin = $ENV{CLUSTERD} or die "CLUSTERD is not set\n";
my $man8 = "$src/man/clusterd.8";
my $man5 = "$src/man/clusterd.conf.5";
my $tmp = tempdir('clusterd-man-XXXXXX', TMPDIR => 1, CLEANUP => 1);

# Runs a command without a shell; returns its exit status and its output
# (stdout and stderr together).
sub run {
    my @cmd = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT or POSIX::_exit(127);
        exec { $cmd[0] } @cmd or POSIX::_exit(127);
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return ($? >> 8, $out);
}

sub slurp { open my $f, '<', $_[0] or die "$_[0]: $!"; local $/; return scalar <$f> }

# The text of a literal display, with the roff escapes it may use undone.
sub unroff {
    my $t = shift;
    $t =~ s/\\&//g;
    $t =~ s/\\\(dq/"/g;
    $t =~ s/\\e/\\/g;
    return $t;
}

my %src = (8 => slurp($man8), 5 => slurp($man5));

# ---- 1. mandoc -T lint: style notes only ----
my ($mandoc) = grep { -x } map { "$_/mandoc" } split /:/, $ENV{PATH};
SKIP: {
    ok($mandoc, 'mandoc is installed') or diag 'install it: ./bootstrap --test';
    skip 'no mandoc', 4 unless $mandoc;
    for my $page ($man8, $man5) {
        my ($rc, $out) = run($mandoc, '-T', 'lint', '-W', 'style', $page);
        my @bad = grep { /^mandoc: .*?: (WARNING|ERROR|UNSUPP|BADARG|SYSERR): / } split /\n/, $out;
        is(scalar @bad, 0, "mandoc -T lint: nothing worse than STYLE in $page")
            or diag join "\n", @bad;
        ok($rc <= 1, "mandoc -T lint exits 0 or 1 on $page") or diag "exit $rc: $out";
    }
}

# ---- 2. clusterd(8) against --help ----
my ($rc, $help) = run($bin, '--help');
is($rc, 0, 'clusterd --help exits 0');
my %long;      # short letter => long name, from lines like "  -c, --config FILE  ..."
my $signals;   # "reload|stop|quit|reopen", from the --signal line
for (split /\n/, $help) {
    next unless /^\s+-(\w), --([a-z][a-z0-9-]*)\b/;
    $long{$1} = $2;
    $signals = $1 if $2 eq 'signal' && /(\w+(?:\|\w+)+)/;
}
ok(keys %long >= 8, 'the options are read from --help') or diag $help;
my @items8 = grep { /^\.It\s+Fl\s/ } split /\n/, $src{8};
for my $s (sort keys %long) {
    my $l = $long{$s};
    ok(grep({ /^\.It\s+Fl\s+\Q$s\E(\s|$)/ && /\bFl\s+\\?-\Q$l\E(\s|$)/ } @items8),
        "clusterd.8 has an entry for -$s, --$l");
}
my ($synopsis) = $src{8} =~ /^\.Sh SYNOPSIS\n(.*?)^\.Sh /ms;
my %in_synopsis = map { $_ => 1 } map { /^\.Op\s+Fl\s+(\w+)/ ? split(//, $1) : () } split /\n/, $synopsis // '';
ok($in_synopsis{$_}, "the SYNOPSIS shows -$_") for sort keys %long;
for (@items8) {
    next if /^\.It\s+Fl\s+\\?-/;      # a long option alone: checked below
    my ($s) = /^\.It\s+Fl\s+(\w+)/;
    ok($long{$s}, "-$s in clusterd.8 is an option of --help");
}
# Long options without a short one ("      --json  ...").
for (split /\n/, $help) {
    next unless /^\s+--([a-z][a-z0-9-]*)\b/;
    my $l = $1;
    ok(grep({ /^\.It\s+Fl\s+\\?-\Q$l\E(\s|$)/ } @items8), "clusterd.8 has an entry for --$l");
    like($synopsis // '', qr/Fl\s+\\?-\Q$l\E/, "the SYNOPSIS shows --$l");
}
ok($signals, '--help lists the names that -s takes');
like($help, qr/-s status/, '--help names -s status');
like($src{8}, qr/^\.It\s+Cm\s+status\s*$/m, 'clusterd.8 says what -s status does');
for (split /\|/, $signals // '') {
    like($src{8}, qr/^\.It\s+Cm\s+\Q$_\E\s*$/m, "clusterd.8 says what -s $_ sends");
}

# ---- 3. clusterd.conf(5) against the parser's keys ----
my ($krc, $keys) = run("$build/t/conf_keys");
is($krc, 0, 't/conf_keys runs');
my (@want, %service);    # [scope, key path]; service name => 1
for (split /\n/, $keys) {
    my ($kind, @f) = split ' ';
    push @want, ['', $f[0]] if $kind eq 'top';
    push @want, ['', "limits.$f[0]"] if $kind eq 'limits';
    push @want, ['', "routes.$f[0]"] if $kind eq 'route';
    $service{ $f[0] } = 1 if $kind eq 'service';
    push @want, [$f[0], $f[1]] if $kind eq 'option';
}
ok(grep({ $_->[1] eq 'listen' } @want) && keys %service, 't/conf_keys lists keys and services')
    or diag $keys;

# The keys documented in clusterd.conf.5: each ".It Ic key" entry, named by
# the path of the entries it nests in ("limits.max_body_bytes") and scoped
# by the subsection of SERVICES it is in ('' outside one); and the literal
# displays in each entry, its examples.
my (%documented, %examples, %sections, @stack);
my ($sh, $scope, $display) = ('', '', undef);
for (split /\n/, $src{5}) {
    if (defined $display) {
        if (/^\.Ed\b/) {
            my $path = join '.', grep { defined } @stack;
            push @{ $examples{$scope}{$path} }, unroff($display) if $path ne '';
            undef $display;
        } else {
            $display .= "$_\n";
        }
    }
    elsif (/^\.Bd\s+-literal/) { $display = '' }
    elsif (/^\.Sh\s+(.*)/) { ($sh, $scope, @stack) = ($1, '') }
    elsif (/^\.Ss\s+(\S+)/) { $sections{$1} = 1; $scope = $sh eq 'SERVICES' ? $1 : '' }
    elsif (/^\.Bl\b/) { push @stack, undef }
    elsif (/^\.El\b/) { pop @stack }
    elsif (/^\.It\b/ && @stack) {
        $stack[-1] = /^\.It\s+Ic\s+(\w+)/ ? $1 : undef;
        next unless defined $stack[-1];
        my @path = grep { defined } @stack;
        next unless @path == @stack;    # an Ic entry under a non-key entry is no key
        $documented{$scope}{ join '.', @path } = 1;
    }
}
for (@want) {
    my ($scope, $key) = @$_;
    ok($documented{$scope}{$key}, $scope eq '' ? "clusterd.conf.5 documents $key"
        : "clusterd.conf.5 documents the $scope option $key");
}
ok($sections{$_}, "clusterd.conf.5 has a section for the $_ service") for sort keys %service;
# And the other way: no entry for a key the parser does not know.
my %known = map { ("$_->[0]\0$_->[1]" => 1) } @want;
for my $scope (sort keys %documented) {
    SKIP: {
        skip "service $scope is documented but not built into this clusterd", 1
            if $scope ne '' && !$service{$scope};
        my @stale = grep { !$known{"$scope\0$_"} } sort keys %{ $documented{$scope} };
        is("@stale", '', ($scope eq '' ? 'global' : $scope) . ' entries are all keys the parser accepts');
    }
}

# ---- 4. the examples of clusterd.conf.5 are valid ----
my $json = JSON::PP->new->relaxed->canonical;
sub check_config {
    my ($text, $name) = @_;
    my $file = "$tmp/example.conf";
    # -t checks that the files' directories exist: /var/log/clusterd and the
    # like do on an installed system; here they are made under $tmp. So are
    # the directories static serves ("root": "/srv/www"), and its own
    # mime.types files (empty).
    $text =~ s{("(?:error_log|access_log|pid_file|mime_types)"\s*:\s*")(/[^"]*)"}{
        my ($k, $p) = ($1, $2);
        (my $d = "$tmp$p") =~ s{/[^/]*$}{};
        File::Path::make_path($d);
        if ($k =~ /mime_types/) { open my $types, '>>', "$tmp$p" or die "$tmp$p: $!" }
        "$k$tmp$p\""
    }ge;
    $text =~ s{("root"\s*:\s*")(/[^"]*)"}{
        my ($k, $p) = ($1, $2);
        File::Path::make_path("$tmp$p");
        "$k$tmp$p\""
    }ge;
    open my $fh, '>', $file or die "$file: $!";
    print $fh $text;
    close $fh;
    my ($rc, $out) = run($bin, '-t', '-c', $file);
    is("$rc $out", "0 ok\n", "clusterd -t accepts $name") or diag $text;
}
sub services_in { my $t = shift; return $t =~ /"service"\s*:\s*"(\w+)"/g }

# The configs of EXAMPLES, whole.
my ($section) = $src{5} =~ /^\.Sh EXAMPLES\n(.*?)(?=^\.Sh )/ms;
my (%route_of, $n);    # service => a route of the examples that uses it
for my $block (($section // '') =~ /^\.Bd -literal[^\n]*\n(.*?)^\.Ed/msg) {
    my $text = unroff($block);
    next unless $text =~ /^\s*(\/\/.*\n\s*)*\{/;
    $n++;
    SKIP: {
        my @missing = grep { !$service{$_} } services_in($text);
        skip "example $n uses a service not built in: @missing", 1 if @missing;
        check_config($text, "the EXAMPLES config $n");
    }
    (my $plain = $text) =~ s{^\s*//.*$}{}mg;
    my $cfg = eval { $json->decode($plain) } or next;
    $route_of{ $_->{service} } //= $_ for @{ $cfg->{routes} || [] };
}
ok($n, 'clusterd.conf.5 has example configs');

# Each key's example, e.g. "workers": 4: a global key's in a minimal config,
# a service option's in a route of EXAMPLES; a nested key's example may be
# its parent's.
my $base = { listen => '127.0.0.1:0', routes => [ { prefix => '/', service => 'dummy' } ] };
for my $scope (sort keys %documented) {
    for my $path (sort keys %{ $documented{$scope} }) {
        my @parts = split /\./, $path;
        my $name = ($scope ne '' ? "$scope option " : '') . $path;
        my @candidates = map { @{ $examples{$scope}{ join '.', @parts[0 .. $_] } || [] } }
            reverse 0 .. $#parts;
        my ($snippet) = grep { /"\Q$parts[-1]\E"\s*:/ } @candidates;
        ok($snippet, "the entry for $name has an example") or next;
        next if @parts > 1;
        my $v = eval { $json->decode("{$snippet}") };
        ok($v, "the example of $name is JSON") or diag $snippet;
        next unless $v;
        SKIP: {
            my @missing = grep { !$service{$_} } $scope ne '' ? $scope : services_in($snippet);
            skip "the example of $name uses a service not built in: @missing", 1 if @missing;
            my $cfg = $base;
            if ($scope ne '') {
                my $route = $route_of{$scope};
                ok($route, "EXAMPLES has a route for $scope to try its options in") or next;
                $cfg = { %$base, routes => [ { %$route, %$v } ] };
            } else {
                $cfg = { %$base, %$v };
            }
            check_config($json->encode($cfg), "the example of $name");
        }
    }
}

done_testing;
