# Several hosts behind HAProxy: three clusterd "hosts" on 127.0.0.2, .3 and .4
# (loopback aliases) behind two HAProxy instances on 127.0.0.1, each configured
# by examples/haproxy.cfg with its own addresses and health-checking the three
# hosts: the first with HAProxy's default retry-on (conn-failure only: a request
# that dies on a connection the host closed is not replayed, so the hosts
# themselves must never close one under it), the second with the example's
# retry-on line as it is. Under steady keep-alive load from clients that never
# retry, one phase each:
# - a rolling upgrade of one host: SIGQUIT with drain_delay_ms, HAProxy marks
#   it down on its failing /healthz, it stops, a new one starts on the same
#   address and is marked up again: no failed request;
# - kill -9 of another host's master and workers: only requests sent while it
#   died fail (those in flight, and those HAProxy sends in that instant on
#   pooled connections to it: they can outnumber the requests in flight), none
#   once HAProxy has marked it down, none on the other hosts;
# - a reload (SIGHUP, a new worker count) of the third: no failed request, and
#   the host never leaves the rotation;
# - kill -9 of the killed host again, once it is back, behind the second
#   HAProxy (the example's retry-on: GETs that get no answer are replayed on
#   another host): no more failed requests than requests in flight at the kill
#   (measured: none).
use strict;
use warnings;
use Test::More;
use Fcntl qw(F_GETFD F_SETFD FD_CLOEXEC);
use File::Temp qw(tempdir);
use IO::Socket::INET;
use IO::Socket::UNIX;
use POSIX ();
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode);

my ($haproxy) = grep { -x } map { "$_/haproxy" } split(/:/, $ENV{PATH} // ''), '/usr/sbin', '/usr/local/sbin';
plan skip_all => 'haproxy is not installed (./bootstrap --test installs it)' unless $haproxy;

my $D = $Clusterd::DEADLINE;         # generous: a loaded two-core box
my $CLIENTS = 6;
my $DRAIN_MS = 2000;                 # examples/haproxy.cfg marks a host down in about 0.7 s
my $example = ($ENV{TOP_SRCDIR} // '.') . '/examples/haproxy.cfg';
my $dir = tempdir('clusterd-haproxy-XXXXXX', TMPDIR => 1, CLEANUP => 1);
$SIG{PIPE} = 'IGNORE';

like(`$haproxy -c -f $example 2>&1`, qr/Configuration file is valid/, 'examples/haproxy.cfg is valid for ' .
    (`$haproxy -v` =~ /^(HAProxy version \S+)/ ? $1 : 'haproxy'));

# ---- three hosts ----
my %host = (web2 => { addr => '127.0.0.2' }, web3 => { addr => '127.0.0.3' }, web4 => { addr => '127.0.0.4' });
sub host_config {
    my ($h, %more) = @_;
    return { listen => ["$h->{addr}:" . ($h->{port} // 0)], workers => 2, drain_delay_ms => $DRAIN_MS,
        routes => [ { prefix => '/dummy', service => 'dummy' }, { prefix => '/healthz', service => 'health' } ],
        %more };
}
sub start_host {
    my ($name) = @_;
    my $h = $host{$name};
    $h->{c} = Clusterd->new(config => host_config($h))->start;
    $h->{port} = $h->{c}->port;
    # from now on the same address and port, as a host keeps across restarts
    $h->{c}->write_config(host_config($h));
    return $h->{c};
}
start_host($_) for sort keys %host;

# ---- HAProxy, from the example ----
# Two instances over the same three hosts, each health-checking them: one with
# HAProxy's default retry-on (conn-failure only), one with the example's
# retry-on line as it is (GETs that get no answer replayed on another host).
# Each one's listening socket is made here (port 0: no clash) and handed over as fd@N.
my $test = $$;
my @guards;
END { local $?; if ($$ == $test) { kill "TERM", @guards; waitpid $_, 0 for @guards } }
sub haproxy {
    my ($name, $keep_retry_on) = @_;
    my $lsock = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 128, ReuseAddr => 1)
        or die "listen: $!";
    fcntl($lsock, F_SETFD, fcntl($lsock, F_GETFD, 0) & ~FD_CLOEXEC) or die "fcntl: $!";
    my (@cfg, %saw, $section);
    open my $ex, '<', $example or die "$example: $!";
    while (my $l = <$ex>) {
        chomp $l;
        if ($l =~ /^(\w+)/) {
            $section = $1;
            next if $section eq 'global';        # logging, chroot and the user are the system's business
            push @cfg, $l;
            push @cfg, '    option dontlog-normal' if $section eq 'defaults';   # log only what went wrong
            next;
        }
        next if ($section // '') eq 'global';
        if ($l =~ /^\s+bind\s/) { push @cfg, '    bind fd@' . fileno($lsock); $saw{bind}++; next }
        if ($l =~ /^\s+retry-on\s/) { $saw{'retry-on'}++; next unless $keep_retry_on }   # else HAProxy's default: conn-failure
        if ($l =~ /^\s+server\s/) {
            push @cfg, map { "    server $_ $host{$_}{addr}:$host{$_}{port} check" } sort keys %host
                unless $saw{server}++;
            next;
        }
        push @cfg, $l;
    }
    close $ex;
    ok($saw{bind} && $saw{'retry-on'} && $saw{server}, "$name: the example has a bind, a retry-on and server lines to replace");
    unshift @cfg, 'global', "    stats socket $dir/$name.sock level admin", '    log stdout format raw local0';
    open my $fh, '>', "$dir/$name.cfg" or die;
    print $fh map { "$_\n" } @cfg;
    close $fh;

    # HAProxy runs under a guard that stops it when the test is gone (or after
    # ten minutes), so that no HAProxy outlives a test killed halfway.
    my $guard = fork // die "fork: $!";
    if ($guard == 0) {
        my $proc = fork // die "fork: $!";
        if ($proc == 0) {
            open STDOUT, '>>', "$dir/$name.log" or die;
            open STDERR, '>&', \*STDOUT or die;
            exec $haproxy, '-db', '-f', "$dir/$name.cfg";
            die "exec $haproxy: $!";
        }
        my $end = time + 600;
        $SIG{TERM} = sub { $end = 0 };
        select(undef, undef, undef, 0.2)
            while getppid() == $test && time < $end && waitpid($proc, POSIX::WNOHANG()) == 0;
        kill "TERM", $proc;
        waitpid $proc, 0;
        POSIX::_exit(0);
    }
    push @guards, $guard;
    my $p = $lsock->sockport;
    close $lsock;
    return $p;
}
# The instance that stats() and the clients use: the first one unless a phase says otherwise.
our $hap = 'haproxy';
our $port = haproxy('haproxy', 0);
my $l7_port = haproxy('haproxy-l7', 1);

# HAProxy's view: { server => { status, hrsp_2xx, chkdown, check_status, ... } }.
sub stats {
    my $s = IO::Socket::UNIX->new(Peer => "$dir/$hap.sock") or return {};
    print $s "show stat\n";
    local $/;
    my $t = <$s> // '';
    my ($head, @rows) = split /\n/, $t;
    return {} unless $head && $head =~ s/^# //;
    my @k = split /,/, $head;
    my %by;
    for (@rows) {
        my %r;
        @r{@k} = split /,/, $_, -1;
        $by{ $r{svname} } = \%r if ($r{pxname} // '') eq 'clusterd';
    }
    return \%by;
}
sub status { (stats()->{ $_[0] } // {})->{status} // '' }
sub served { (stats()->{ $_[0] } // {})->{hrsp_2xx} // 0 }
sub haproxy_log { join '', map { "$_:\n" . Clusterd::slurp("$dir/$_.log") } 'haproxy', 'haproxy-l7' }

ok(poll_until($D, sub { !grep { status($_) ne 'UP' } keys %host }), 'HAProxy has the three hosts up')
    or diag haproxy_log();
ok(poll_until($D, sub { local $hap = 'haproxy-l7'; !grep { status($_) ne 'UP' } keys %host }),
    '... and so has the second HAProxy, the one with the example\'s retry-on')
    or diag haproxy_log();

# ---- load: keep-alive clients through HAProxy that never retry ----
# Each stops by itself: at its stop file, when the test is gone, or after 5 minutes.
# Each records every request's send and completion (or failure) times.
sub load {
    my ($phase) = @_;
    my @kids;
    for my $i (1 .. $CLIENTS) {
        my $out = "$dir/$phase.$i";
        my $parent = $$;
        my $pid = fork // die "fork: $!";
        if ($pid) { push @kids, [$pid, $out]; next }
        my $end = time + 300;
        my ($ok, $fail, %seen, @errors, @times) = (0, 0);
        my $s;
        while (!-e "$dir/$phase.stop" && kill(0, $parent) && time < $end) {
            $s //= IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10);
            my $sent = time;
            my $r = $s && print({$s} "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n") ? Clusterd::read_response($s) : undef;
            push @times, sprintf('%.6f %.6f', $sent, time);
            if ($r && $r->[0] == 200) {
                $ok++;
                my $j = json_decode($r->[2]);
                $seen{"$j->{pid}/$j->{generation}"}++ if $j;
            } else {
                $fail++;
                # when it was sent, then what happened
                push @errors, sprintf('%.3f %s', $sent, $r ? "status $r->[0]" : $s ? 'closed without an answer' : "connect: $!");
                undef $r;
            }
            if (!$r || ($r->[1]{connection} // '') =~ /close/i) { close $s if $s; undef $s }
        }
        open my $o, '>', "$out.tmp" or die;
        print $o "ok $ok\nfail $fail\n", map({ "seen $_\n" } sort keys %seen), map({ "error $_\n" } @errors),
            map { "time $_\n" } @times;
        close $o;
        rename "$out.tmp", $out;
        POSIX::_exit(0);
    }
    return \@kids;
}

sub finish {
    my ($phase, $kids) = @_;
    open my $f, '>', "$dir/$phase.stop" or die;
    close $f;
    my %r = (ok => 0, fail => 0, errors => [], sent => [], seen => {}, times => []);
    for (@$kids) {
        my ($pid, $out) = @$_;
        waitpid $pid, 0;
        open my $in, '<', $out or do { $r{fail}++; push @{ $r{errors} }, 'a client left no results'; next };
        while (<$in>) {
            chomp;
            if (/^(ok|fail) (\d+)$/) { $r{$1} += $2 }
            elsif (/^seen (\S+)$/) { $r{seen}{$1} = 1 }
            elsif (/^error (\S+) (.*)$/) { push @{ $r{errors} }, $_; push @{ $r{sent} }, $1 }
            elsif (/^time (\S+) (\S+)$/) { push @{ $r{times} }, [$1, $2] }
        }
    }
    return \%r;
}

# The requests in flight at instant $t: sent by then and not yet answered (or
# failed), whatever host they went to. One per client at most.
sub in_flight {
    my ($r, $t) = @_;
    return scalar grep { $_->[0] <= $t && $_->[1] >= $t } @{ $r->{times} };
}

# Waits until each named server has answered $n more requests through HAProxy.
sub flows {
    my ($n, @names) = @_;
    my %base = map { $_ => served($_) } @names;
    return poll_until($D, sub { my $s = stats(); !grep { ($s->{$_}{hrsp_2xx} // 0) < $base{$_} + $n } @names });
}

# Response and connection errors HAProxy counted on these servers between two stats().
sub errors {
    my ($a, $b, @names) = @_;
    my $n = 0;
    $n += ($b->{$_}{eresp} - $a->{$_}{eresp}) + ($b->{$_}{econ} - $a->{$_}{econ}) for @names;
    return $n;
}
# Connections HAProxy retried (refused, or reset before the request was sent), redispatched or not.
sub retried {
    my ($a, $b) = @_;
    my $n = 0;
    $n += ($b->{$_}{wretr} - $a->{$_}{wretr}) + ($b->{$_}{wredis} - $a->{$_}{wredis}) for keys %host;
    return $n;
}

# ---- 1. a rolling upgrade of web2: drain, stop, start again ----
{
    my $kids = load('rolling');
    ok(flows(20, keys %host), 'load flows through HAProxy to all three hosts');
    my $s0 = stats();
    my $c = $host{web2}{c};
    my $before = served('web2');
    my $from = $c->log_size;
    my $t0 = time;
    $c->signal('QUIT');
    ok($c->wait_log(qr/graceful shutdown in $DRAIN_MS ms \(drain_delay_ms\)/, $D, $from), 'web2: SIGQUIT, the drain delay begins');
    ok(poll_until($D, sub { status('web2') eq 'DOWN' }), 'HAProxy marks web2 down');
    my $down_after = time - $t0;
    my $early = $c->log_text !~ /the drain delay is over/;
    my $st = stats()->{web2};
    ok($early, sprintf('... %.2f s after SIGQUIT, within drain_delay_ms: before web2 stops accepting', $down_after));
    is("$st->{check_status} $st->{check_code}", 'L7STS 503', '... on its health check\'s 503');
    my $in_delay = $st->{hrsp_2xx} - $before;
    my $status = $c->wait_exit($D + 20);
    ok(defined $status && $status >> 8 == 0, 'web2 stops, exit 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
    start_host('web2');
    ok(poll_until($D, sub { status('web2') eq 'UP' }), 'a new web2 on the same address: HAProxy marks it up');
    ok(flows(20, 'web2'), '... and sends it requests');
    my $r = finish('rolling', $kids);
    ok($r->{ok} > 0, 'the clients were served');
    is($r->{fail}, 0, 'no failed request across the rolling upgrade') or diag explain $r->{errors};
    my $s1 = stats();
    diag(sprintf('rolling upgrade of web2: %d requests, %d failed; web2 answered %d during the drain delay, '
        . 'HAProxy marked it down %.2f s after SIGQUIT (drain_delay_ms %d); HAProxy counted %d errors, '
        . 'retried %d connections', $r->{ok} + $r->{fail}, $r->{fail}, $in_delay, $down_after, $DRAIN_MS,
        errors($s0, $s1, keys %host), retried($s0, $s1)));
}

# A kill -9 of web3's master and workers under load, through the HAProxy in
# use ($hap): the times, the clients' results and HAProxy's counters before
# the kill, at mark-down and at the end. $who names that HAProxy in the
# test names ("HAProxy", "the second HAProxy").
sub kill_web3 {
    my ($phase, $who, $flows_name) = @_;
    my %k;
    my $kids = load($phase);
    ok(flows(20, keys %host), $flows_name);
    $k{c} = $host{web3}{c};
    $k{pids} = [$k{c}->pid, $k{c}->workers];
    $k{s0} = stats();
    $k{t0} = time;
    kill 'KILL', @{ $k{pids} };
    $k{t1} = time;
    ok(poll_until($D, sub { status('web3') eq 'DOWN' }), "$who marks web3 down");
    $k{t_down} = time;
    $k{s1} = stats();
    ok(flows(50, 'web2', 'web4'), 'the other two serve on');
    $k{r} = finish($phase, $kids);
    $k{s2} = stats();
    ok($k{r}{ok} > 0, 'the clients were served');
    return \%k;
}

# Waits for the killed web3 to be gone, starts it again and for $who to mark it up.
sub restart_web3 {
    my ($k, $up_name) = @_;
    $k->{c}->wait_exit($D);
    ok(poll_until($D, sub { !grep { Clusterd::alive($_) } @{ $k->{pids} } }), 'nothing of web3 is left');
    start_host('web3');
    ok(poll_until($D, sub { status('web3') eq 'UP' }), $up_name);
}

# ---- 2. kill -9 of web3's master and workers ----
# What is on its way to web3 while it dies fails (HAProxy's default retry-on
# replays no request it has sent): the requests in flight, those HAProxy sends
# in the same instant on pooled connections whose close it has not read yet,
# and those on connections the kernel still completed while the processes
# were exiting. Once HAProxy has marked it down, nothing fails.
{
    my $k = kill_web3('kill', 'HAProxy', 'load flows to all three hosts');
    my ($r, $s0, $s1, $s2, $t0, $t1, $t_down) = @$k{qw(r s0 s1 s2 t0 t1 t_down)};
    my $w3 = $s0->{web3};
    my $late = grep { $_ > $t_down } @{ $r->{sent} };
    my $last = @{ $r->{sent} } ? (sort { $b <=> $a } @{ $r->{sent} })[0] - $t0 : 0;
    my $when = $last > 0 ? sprintf('the last %.1f ms after the kill', 1000 * $last) : 'none after the kill';
    is($late, 0, "failed requests: $r->{fail}, each sent before HAProxy had marked web3 down ($when)")
        or diag explain $r->{errors};
    is(errors($s1, $s2, 'web3'), 0, '... none once HAProxy had marked it down');
    is(errors($s0, $s2, 'web2', 'web4'), 0, '... and none on the other hosts');
    diag(sprintf('kill -9 of web3: %d requests, %d failed (sent %s), %d in flight at the kill (to any host); '
        . 'HAProxy had %d requests in flight to web3 just before and %d connections open to it (%d clients), '
        . 'counted %d response errors; marked down %.2f s after', $r->{ok} + $r->{fail}, $r->{fail}, $when,
        in_flight($r, $t1), $w3->{scur}, $w3->{used_conn_cur} + $w3->{idle_conn_cur} + $w3->{safe_conn_cur},
        $CLIENTS, errors($s0, $s1, 'web3'), $t_down - $t0));
    restart_web3($k, 'web3 started again: HAProxy marks it up');
}

# ---- 3. a reload of web4 ----
{
    my $kids = load('reload');
    ok(flows(20, keys %host), 'load flows to all three hosts');
    my $s0 = stats();
    my $c = $host{web4}{c};
    my $downs = stats()->{web4}{chkdown};
    my $from = $c->log_size;
    $c->write_config(host_config($host{web4}, workers => 3));
    $c->signal('HUP');
    ok($c->wait_log(qr/ready: generation 2, 3 worker\(s\), retiring the previous generation/, $D, $from),
        'web4: SIGHUP, generation 2 is ready');
    ok($c->wait_log(qr/generation 1\) exited: exit code 0(?s:.*)generation 1\) exited: exit code 0/, $D, $from),
        '... and both workers of generation 1 have exited');
    ok(flows(20, 'web4'), 'web4 serves on');
    my $r = finish('reload', $kids);
    my @gens = sort keys %{ { map { (split m{/})[1] => 1 } keys %{ $r->{seen} } } };
    ok($r->{ok} > 0, 'the clients were served');
    is($r->{fail}, 0, 'no failed request across the reload') or diag explain $r->{errors};
    is(status('web4'), 'UP', 'web4 is up');
    is(stats()->{web4}{chkdown}, $downs, '... and was never marked down');
    my $s1 = stats();
    diag(sprintf('reload of web4: %d requests, %d failed; generations seen: %s; HAProxy counted %d errors, '
        . 'retried %d connections', $r->{ok} + $r->{fail}, $r->{fail}, join(',', @gens),
        errors($s0, $s1, keys %host), retried($s0, $s1)));
}

# ---- 4. kill -9 of web3 again, behind the HAProxy with the example's retry-on ----
# A GET that was on its way to web3 as it died, or that HAProxy sends it on a
# pooled connection before noticing, gets no answer and is replayed on another
# host (empty-response), as is one whose connection web3 refuses (conn-failure):
# a kill must cost no more than the requests in flight at that moment, those
# sent by the time kill() returned and not answered by then, whatever host they
# went to (an upper bound of those to web3; one per client at most).
{
    local $hap = 'haproxy-l7';
    local $port = $l7_port;
    ok(poll_until($D, sub { !grep { status($_) ne 'UP' } keys %host }), 'the second HAProxy has the three hosts up');
    my $k = kill_web3('kill-l7', 'the second HAProxy', 'load flows through the second HAProxy to all three hosts');
    my ($r, $s0, $s1, $s2, $t0, $t1, $t_down) = @$k{qw(r s0 s1 s2 t0 t1 t_down)};
    my $flight = in_flight($r, $t1);
    cmp_ok($r->{fail}, '<=', $flight, "failed requests: $r->{fail}, no more than the $flight in flight at the kill")
        or diag explain $r->{errors};
    my ($b0, $b2) = ($s0->{BACKEND} // {}, $s2->{BACKEND} // {});
    diag(sprintf('kill -9 of web3 with the example\'s retry-on: %d requests, %d failed, %d in flight at the kill '
        . '(%d clients); HAProxy counted %d requests web3 left unanswered (eresp), %d retries (wretr) and %d '
        . 'redispatches (wredis, refused connections included); marked down %.2f s after',
        $r->{ok} + $r->{fail}, $r->{fail}, $flight, $CLIENTS, errors($s0, $s1, 'web3'),
        ($b2->{wretr} // 0) - ($b0->{wretr} // 0), ($b2->{wredis} // 0) - ($b0->{wredis} // 0), $t_down - $t0));
    restart_web3($k, 'web3 started again: the second HAProxy marks it up');
    local $hap = 'haproxy';
    ok(poll_until($D, sub { status('web3') eq 'UP' }), '... and so does the first');
}

diag("HAProxy's log (abnormal requests only, retried ones included):\n" . haproxy_log())
    unless Test::More->builder->is_passing;
# All three at once: each waits out its drain delay.
$host{$_}{c}->signal('QUIT') for sort keys %host;
for my $name (sort keys %host) {
    my $c = $host{$name}{c};
    my $status = $c->wait_exit($D + 20);
    ok(defined $status && $status >> 8 == 0, "$name stops gracefully");
    is($c->sanitizer_report, '', "$name: no sanitizer report");
}
done_testing;
