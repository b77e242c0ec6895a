package Clusterd;
# Test helpers: start the real clusterd binary on an ephemeral port with a
# generated config, talk HTTP to it, watch its log, and clean up.
# Waiting is always a poll with a deadline on something observable (a log
# line, a process state, an answer), never a bare sleep.
use strict;
use warnings;
use Exporter 'import';
use File::Temp qw(tempdir);
use IO::Socket::INET;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Test::More ();

our @EXPORT_OK = qw(poll_until http_get json_decode rss_kb);

my $BIN = $ENV{CLUSTERD} or die "CLUSTERD is not set (run under make check)\n";
my $json = JSON::PP->new->canonical;

# The time limits below are generous deadlines, not expected durations:
# a sanitizer build on a loaded two-core box is slow.
our $DEADLINE = $ENV{CLUSTERD_TEST_DEADLINE} || 15;

sub json_decode { my $t = shift; my $v = eval { $json->decode($t) }; return $v }

# Calls $cond every 10 ms until it returns true or $secs pass; returns its value.
sub poll_until {
    my ($secs, $cond) = @_;
    my $end = time + $secs;
    while (1) {
        my $v = $cond->();
        return $v if $v;
        return undef if time > $end;
        sleep 0.01;
    }
}

sub new {
    my ($class, %opt) = @_;
    my $dir = tempdir('clusterd-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    my $self = bless { dir => $dir, log => "$dir/clusterd.log", conf => "$dir/clusterd.conf",
        pid_file => "$dir/clusterd.pid", args => $opt{args} || [] }, $class;
    $self->write_config($opt{config} || {});
    return $self;
}

sub default_config {
    return {
        listen  => ['127.0.0.1:0'],
        workers => 2,
        routes  => [ { prefix => '/dummy', service => 'dummy' } ],
        shutdown_timeout_ms => 10000,
    };
}

# $cfg: hash merged over the default, or a raw string written as is.
sub write_config {
    my ($self, $cfg) = @_;
    my $text = ref $cfg ? $json->encode({ %{ default_config() }, %$cfg }) : $cfg;
    open my $fh, '>', "$self->{conf}.tmp" or die "$!";
    print $fh $text;
    close $fh;
    rename "$self->{conf}.tmp", $self->{conf} or die "$!";
}

sub conf { $_[0]{conf} }
sub dir { $_[0]{dir} }
sub pid { $_[0]{pid} }
sub port { $_[0]{port} }

# Starts the daemon and waits for "ready: generation 1".
sub start {
    my ($self) = @_;
    $self->launch;
    $self->wait_log(qr/ready: generation 1,/) or die "clusterd did not start:\n" . $self->log_text;
    ($self->{port}) = $self->log_text =~ /listening on [\d.]+:(\d+)/;
    return $self;
}

# Starts the daemon without waiting for anything (start() waits).
sub launch {
    my ($self) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', $self->{log} or die;
        open STDERR, '>>', $self->{log} or die;
        exec $BIN, '-c', $self->{conf}, '-p', $self->{pid_file}, @{ $self->{args} };
        die "exec $BIN: $!";
    }
    $self->{pid} = $pid;
    return $self;
}

sub log_text {
    my ($self) = @_;
    open my $fh, '<', $self->{log} or return '';
    local $/;
    my $t = <$fh>;
    return $t // '';
}

# Polls the log until $re matches (after byte offset $from); returns the match.
sub wait_log {
    my ($self, $re, $secs, $from) = @_;
    return poll_until($secs // $DEADLINE, sub {
        my $t = substr($self->log_text, $from // 0);
        return $t =~ $re ? ($1 // $&) : undef;
    });
}

sub log_size { -s $_[0]{log} || 0 }

sub signal {
    my ($self, $sig) = @_;
    kill $sig, $self->{pid} or die "kill $sig: $!";
}

# Live worker pids (children of the master), sorted.
sub workers {
    my ($self) = @_;
    return children($self->{pid});
}

sub children {
    my ($ppid) = @_;
    my @kids;
    for my $stat (glob '/proc/[0-9]*/stat') {
        open my $fh, '<', $stat or next;
        my $line = <$fh> // next;
        # pid (comm) state ppid ...; comm may hold spaces
        next unless $line =~ /^(\d+) \(.*\) (\S) (\d+)/;
        push @kids, $1 if $3 == $ppid && $2 ne 'Z';
    }
    my @sorted = sort { $a <=> $b } @kids;
    return @sorted;     # a count in scalar context
}

# The TCP connections to the listening port that the workers have accepted
# and hold open: { worker pid => [ { rx_queue => bytes not read yet }, ... ] },
# from the workers' fds and the kernel's table (/proc/PID/net/tcp).
sub worker_conns {
    my ($self) = @_;
    my %est;    # socket inode -> its entry, for established connections to the port
    open my $fh, '<', "/proc/$self->{pid}/net/tcp" or return {};
    while (<$fh>) {
        # sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
        my @f = split;
        next unless @f > 9 && $f[1] =~ /:([0-9A-F]{4})$/ && hex($1) == $self->{port};
        next unless $f[3] eq '01';      # TCP_ESTABLISHED
        my (undef, $rx) = map { hex } split /:/, $f[4];
        $est{$f[9]} = { rx_queue => $rx };
    }
    my %by;
    for my $pid ($self->workers) {
        for my $fd (glob "/proc/$pid/fd/*") {
            my $l = readlink($fd) // next;
            push @{ $by{$pid} }, $est{$1} if $l =~ /^socket:\[(\d+)\]$/ && $est{$1};
        }
    }
    return \%by;
}

# A file's whole text ('' when it cannot be read).
sub slurp { my ($f) = @_; open my $fh, '<', $f or return ''; local $/; my $t = <$fh>; return $t // '' }

# Resident and peak resident set of a process, in kB.
sub rss_kb {
    my ($pid) = @_;
    open my $fh, '<', "/proc/$pid/status" or return (0, 0);
    my %v;
    while (<$fh>) { $v{$1} = $2 if /^(VmRSS|VmHWM):\s+(\d+)/ }
    return ($v{VmRSS} // 0, $v{VmHWM} // 0);
}

sub alive { my $pid = shift; return kill(0, $pid) && !is_zombie($pid) }

sub is_zombie {
    my $pid = shift;
    open my $fh, '<', "/proc/$pid/stat" or return 1;
    my $line = <$fh> // return 1;
    return $line =~ /^\d+ \(.*\) Z /;
}

# Waits for the master to exit; returns its wait status, or undef on timeout.
sub wait_exit {
    my ($self, $secs) = @_;
    my $status;
    poll_until($secs // $DEADLINE, sub {
        my $r = waitpid($self->{pid}, WNOHANG);
        if ($r == $self->{pid}) { $status = $?; return 1 }
        return $r == -1;
    });
    delete $self->{pid} if defined $status;
    return $status;
}

sub stop {
    my ($self, $sig) = @_;
    return unless $self->{pid};
    kill $sig // 'TERM', $self->{pid};
    return $self->wait_exit;
}

# Sanitizer reports end up in the log (the daemon's stderr).
sub sanitizer_report {
    my ($self) = @_;
    my $t = $self->log_text;
    return $t =~ /(ERROR: (?:Address|Leak|Undefined)Sanitizer.*|runtime error:.*)/ ? $1 : '';
}

sub DESTROY {
    my ($self) = @_;
    # A failing test shows the end of the daemon's log, for CI's record. In
    # global destruction Test::More's own objects may already be gone: then
    # there is nothing to ask (and a die here would be an "(in cleanup)" warning).
    my $passing = eval { Test::More->builder->is_passing } // 1;
    if (!$passing && !$self->{shown}++) {
        my @lines = split /\n/, $self->log_text;
        Test::More::diag("last lines of $self->{log}:\n" .
            join("\n", @lines[ ($#lines > 40 ? $#lines - 40 : 0) .. $#lines ]));
    }
    return unless $self->{pid};
    my @kids = children($self->{pid});
    kill 'KILL', $self->{pid}, @kids;
    waitpid($self->{pid}, 0);
}

# ---- HTTP ----

# One request on a new connection: (status, headers hashref, body), status 0 on error.
sub http_get {
    my ($port, $path, %o) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port,
        Timeout => $o{timeout} // $DEADLINE) or return (0, {}, "connect: $!");
    my $method = $o{method} // 'GET';
    my $extra = $o{headers} // '';
    print $s "$method $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n$extra\r\n";
    my $resp = read_response($s, $method eq 'HEAD');
    close $s;
    return $resp ? @$resp : (0, {}, 'no response');
}

sub get {
    my ($self, $path, %o) = @_;
    return http_get($self->{port}, $path, %o);
}

# GET returning the decoded JSON body (undef if not 200 or not JSON).
sub get_json {
    my ($self, $path) = @_;
    my ($st, undef, $body) = $self->get($path);
    return $st == 200 ? json_decode($body) : undef;
}

# Reads one response; returns [status, headers, body] or undef (with $! / EOF).
# $got_any is set when any byte arrived. Bytes read past the response (the
# next pipelined one) are kept for the next call on the same socket.
my %leftover;

sub read_response {
    my ($s, $head_only, $got_any) = @_;
    my $buf = delete $leftover{$s} // '';
    $$got_any = 1 if $got_any && length $buf;
    while ($buf !~ /\r\n\r\n/) {
        my $n = sysread($s, $buf, 65536, length $buf);
        return undef unless $n;
        $$got_any = 1 if $got_any;
    }
    my ($head, $rest) = split /\r\n\r\n/, $buf, 2;
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})} or return undef;
    my %h;
    for (split /\r\n/, $head) { $h{lc $1} = $2 if /^([^:]+):\s*(.*)$/ }
    my $body = $rest;
    if ($head_only || $status == 204 || $status == 304 || $status == 100) {
        $body = '';
        $leftover{$s} = $rest if length $rest;
    } elsif (($h{'transfer-encoding'} // '') =~ /chunked/i) {
        $body = read_chunked($s, \$rest) // return undef;
        $leftover{$s} = $rest if length $rest;
    } elsif (defined $h{'content-length'}) {
        my $len = $h{'content-length'};
        while (length $body < $len) {
            my $n = sysread($s, $body, 65536, length $body);
            return undef unless $n;
        }
        $leftover{$s} = substr($body, $len) if length $body > $len;
        $body = substr($body, 0, $len);
    } else {
        while (sysread($s, $body, 65536, length $body)) { }
    }
    return [$status, \%h, $body];
}

sub read_chunked {
    my ($s, $bufref) = @_;
    my $body = '';
    while (1) {
        while ($$bufref !~ /\r\n/) { sysread($s, $$bufref, 65536, length $$bufref) or return undef }
        $$bufref =~ s/^([0-9a-fA-F]+)[^\r]*\r\n// or return undef;
        my $len = hex $1;
        while (length $$bufref < $len + 2) { sysread($s, $$bufref, 65536, length $$bufref) or return undef }
        $body .= substr($$bufref, 0, $len);
        substr($$bufref, 0, $len + 2) = '';
        return $body if $len == 0;
    }
}

# ---- a keep-alive client that retries like browsers and curl ----
#
# Sends GET $path in a loop on one keep-alive connection until $stop_file
# exists. A request whose reused connection closes before any byte of the
# response is retried once on a new connection (unless $no_retry); any
# other failure counts.
# Writes "ok N\nfail N\nstatus ...\n" to $out when told to stop, and creates
# "$out.first" at its first 200 answer. Returns the child's pid.
sub client_loop {
    my ($port, $path, $stop_file, $out, $no_retry) = @_;
    my $parent = $$;
    my $pid = fork // die "fork: $!";
    return $pid if $pid;
    my ($ok, $fail, %seen, @errors) = (0, 0);
    my $s;
    my $connect = sub {
        IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10);
    };
    # bounded: the stop file, or the test gone (a load loop never outlives it)
    while (!-e $stop_file && kill(0, $parent)) {
        my ($resp, $err);
        for my $try (0, 1) {
            my $reused = defined $s;
            $s //= $connect->() or do { $err = "connect: $!"; last };
            my $sent = print {$s} "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";
            my $any = 0;
            $resp = $sent ? read_response($s, 0, \$any) : undef;
            if ($resp && ($resp->[1]{connection} // '') =~ /close/i) {
                close $s; undef $s;
            }
            last if $resp;
            close $s if $s;
            undef $s;
            $err = $any ? 'closed mid-response' : 'closed before any byte';
            # retry only the idempotent, untouched case (and never, like wrk, if $no_retry)
            last if $no_retry || !$reused || $any;
        }
        if ($resp && $resp->[0] == 200) {
            if (!$ok++) { open my $first, '>', "$out.first" or die; close $first }
            my $j = json_decode($resp->[2]);
            $seen{"$j->{pid}/$j->{generation}"}++ if $j && $j->{pid};
        } else {
            $fail++;
            push @errors, $resp ? "status $resp->[0]" : $err;
        }
    }
    open my $fh, '>', "$out.tmp" or die;
    print $fh "ok $ok\nfail $fail\n";
    print $fh "seen $_ $seen{$_}\n" for sort keys %seen;
    print $fh "error $_\n" for @errors;
    close $fh;
    rename "$out.tmp", $out;
    POSIX::_exit(0);
}

# Collects a client_loop's results after it was told to stop.
sub client_results {
    my ($pid, $out) = @_;
    waitpid($pid, 0);
    open my $fh, '<', $out or return { ok => 0, fail => -1, errors => ['no results'] };
    my %r = (ok => 0, fail => 0, seen => {}, errors => []);
    while (<$fh>) {
        chomp;
        if (/^(ok|fail) (\d+)$/) { $r{$1} = $2 }
        elsif (/^seen (\S+) (\d+)$/) { $r{seen}{$1} = $2 }
        elsif (/^error (.*)$/) { push @{ $r{errors} }, $1 }
    }
    return \%r;
}

1;
