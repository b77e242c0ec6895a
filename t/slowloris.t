# Slow and many clients: a request's head and body have deadlines however
# steadily they trickle (408), a worker holds at most max_connections and
# makes room by closing idle keep-alive connections, and running out of
# descriptors refuses new connections at once, logged once per episode.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Clusterd qw(json_decode poll_until);

sub connect_to { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $_[0]->port) or die "connect: $!" }

# Sends $head, then one byte of $drip every $every s until the worker answers
# or closes (or $secs pass). Returns [status or undef, seconds, error message].
sub trickle {
    my ($c, $head, $drip, $every, $secs) = @_;
    my $s = connect_to($c);
    my $t0 = time;
    print $s $head;
    my ($buf, $i) = ('', 0);
    my $sel = IO::Select->new($s);
    while (time - $t0 < $secs) {
        if ($sel->can_read($every)) {
            my $n = sysread($s, $buf, 65536, length $buf);
            last unless $n;
            next;
        }
        local $SIG{PIPE} = 'IGNORE';
        syswrite($s, substr($drip, $i++ % length $drip, 1)) or last;
    }
    my $elapsed = time - $t0;
    my ($status) = $buf =~ m{^HTTP/1\.1 (\d{3})};
    my (undef, $body) = split /\r\n\r\n/, $buf, 2;
    my $j = json_decode($body // '');
    return [ $status, $elapsed, $j && $j->{error} ? $j->{error}{message} : undef ];
}

# 1. Deadlines: 20 connections trickle their headers; each is answered 408
#    at header_timeout_ms, not at read_timeout_ms, while others are served.
my $c = Clusterd->new(config => { workers => 1,
    limits => { header_timeout_ms => 1000, body_timeout_ms => 1500, read_timeout_ms => 30000 } })->start;
{
    my @kids;
    for my $i (1 .. 20) {
        pipe(my $r, my $w) or die;
        my $pid = fork // die;
        if ($pid == 0) {
            close $r;
            my $res = trickle($c, "GET /dummy HTTP/1.1\r\nHost: t\r\nX-Slow: ", "abcdefgh", 0.2, 15);
            print $w join("\t", map { $_ // '' } @$res), "\n";
            close $w;
            POSIX::_exit(0);     # not exit: the parent's Clusterd object would stop the server
        }
        close $w;
        push @kids, [ $pid, $r ];
    }
    my ($st) = $c->get('/dummy');
    is($st, 200, 'while 20 clients trickle their headers, others are served');
    my (@status, @late, @early);
    for my $k (@kids) {
        my $line = readline($k->[1]) // '';
        waitpid($k->[0], 0);
        chomp $line;
        my ($status, $secs) = split /\t/, $line;
        diag("trickler: $line") if ($status // "") ne "408";
        push @status, $status;
        push @late, $secs if $secs > 6;
        push @early, $secs if $secs < 0.9;
    }
    is_deeply([ grep { ($_ // '') ne '408' } @status ], [], 'every trickling head is answered 408');
    is_deeply(\@early, [], '  ... not before header_timeout_ms');
    is_deeply(\@late, [], '  ... and soon after it, long before read_timeout_ms');
}
{
    my $r = trickle($c, "POST /dummy HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n", "x", 0.2, 15);
    is($r->[0], 408, 'a body that trickles is answered 408');
    ok($r->[1] >= 1.4 && $r->[1] < 6, "  ... at body_timeout_ms ($r->[1] s)");
    like($r->[2] // '', qr/request body took longer than 1500 ms/, '  ... saying so');
    $r = trickle($c, "GET /dummy HTTP/1.1\r\nHost: t\r\nX-Slow: ", "ab", 0.2, 15);
    like($r->[2] // '', qr/request line and headers took longer than 1000 ms/, 'the head\'s 408 says which deadline');
}
# A request whose head arrives split, but in time, is served.
{
    my $s = connect_to($c);
    print $s "GET /dummy HTTP/1.1\r\n";
    sleep 0.3;
    print $s "Host: t\r\n\r\n";
    my $r = Clusterd::read_response($s);
    is($r && $r->[0], 200, 'a head split across reads, within its deadline, is served');
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');

# 2. max_connections from a low descriptor limit: 400 idle keep-alive
#    connections do not lock others out, and no accept error is logged.
$c = Clusterd->new(config => { workers => 1, worker_rlimit_nofile => 256,
    limits => { keepalive_timeout_ms => 600000, read_timeout_ms => 600000 } })->start;
{
    my @idle;
    for my $i (1 .. 400) {
        my $s = connect_to($c);
        print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
        my $r = Clusterd::read_response($s);
        last unless $r && $r->[0] == 200;
        push @idle, $s;
    }
    is(scalar @idle, 400, '400 keep-alive clients each served in turn, with 256 descriptors');
    my $held = 0;
    $held += @$_ for values %{ $c->worker_conns };
    cmp_ok($held, '<=', 256 - 64, "the worker holds $held connections: its limit less 64 descriptors kept for the rest");
    my $ok = 0;
    for (1 .. 20) {
        my $t0 = time;
        my ($st) = $c->get('/dummy');
        $ok++ if $st == 200 && time - $t0 < 2;
    }
    is($ok, 20, 'new clients are served at once, idle ones making room');
    my $log = $c->log_text;
    my $n = () = $log =~ /limits\.max_connections: closing idle/g;
    is($n, 1, 'reaching max_connections is logged once');
    unlike($log, qr/Too many open files/, 'and no accept fails for want of descriptors');
}
$c->stop;

# 3. At max_connections with nothing idle, new connections wait in the
#    backlog and are served as soon as a connection ends.
$c = Clusterd->new(config => { workers => 1, limits => { max_connections => 5 } })->start;
{
    my @busy = map { my $s = connect_to($c); print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n"; $s } 1 .. 5;
    poll_until(10, sub { my $n = 0; $n += @$_ for values %{ $c->worker_conns }; $n >= 5 });
    my $s = connect_to($c);
    print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
    ok(!IO::Select->new($s)->can_read(0.5), 'a sixth connection waits while five requests are under way');
    close shift @busy;
    ok(IO::Select->new($s)->can_read(10), '  ... and is served once one of them ends');
    my $r = Clusterd::read_response($s);
    is($r && $r->[0], 200, '  ... with a 200');
}
$c->stop;

# 4. Out of descriptors although under max_connections: new connections are
#    closed at once (not left hanging), logged once, and serving resumes.
$c = Clusterd->new(config => { workers => 1, worker_rlimit_nofile => 48,
    limits => { max_connections => 1000, keepalive_timeout_ms => 600000 } })->start;
{
    my @hogs;
    for (1 .. 60) {
        my $s = connect_to($c);
        print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
        push @hogs, $s;
    }
    my ($answered, $closed, $hung) = (0, 0, 0);
    for my $s (@hogs) {
        if (!IO::Select->new($s)->can_read(5)) { $hung++; next }
        my $n = sysread($s, my $buf, 65536);
        if ($n) { $answered++ } else { $closed++ }
    }
    is($hung, 0, 'no connection hangs when the worker runs out of descriptors');
    cmp_ok($closed, '>', 0, "  ... $closed were closed unanswered, $answered served");
    $c->wait_log(qr/closing new connections unanswered/, 10);
    my $n = () = $c->log_text =~ /closing new connections unanswered/g;
    is($n, 1, '  ... logged once');
    close $_ for @hogs;
    my $ok = poll_until(10, sub { my ($st) = $c->get('/dummy'); ($st // 0) == 200 });
    ok($ok, 'served again once descriptors are free');
    ok($c->wait_log(qr/descriptors free again: \d+ connections were closed unanswered/, 10),
        '  ... and the episode is summed up in one line');
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
