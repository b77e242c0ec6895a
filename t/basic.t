# Two workers answer; routing, JSON errors, HEAD, limits; no stray descriptors.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until json_decode);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use Time::HiRes qw(sleep);

my $c = Clusterd->new(config => {
    routes => [ { prefix => '/dummy', service => 'dummy' },
                { prefix => '/dummy/deeper', service => 'dummy' } ],
    limits => { max_header_bytes => 1024 },
})->start;

# 1. Both workers answer: the kernel spreads new connections over the sockets.
my %pids;
poll_until(10, sub {
    my $j = $c->get_json('/dummy') or return 0;
    $pids{ $j->{pid} }++;
    return keys %pids >= 2;
});
my @workers = $c->workers;
is(scalar @workers, 2, 'two worker processes');
is_deeply([sort { $a <=> $b } keys %pids], \@workers, 'both workers answered /dummy');

my ($st, $h, $body) = $c->get('/dummy');
is($st, 200, 'GET /dummy is 200');
like($h->{'content-type'}, qr{^application/json}, 'JSON content type');
my $j = json_decode($body);
is($j->{service}, 'dummy', 'service field');
ok($j->{ok} && $j->{ok} == 1, 'ok is true');
ok($j->{slot} == 0 || $j->{slot} == 1, 'slot field');
is($j->{generation}, 1, 'generation field');

# Longest prefix wins, and a prefix matches only whole path segments.
($st) = $c->get('/dummy/deeper');
is($st, 200, 'nested prefix routes');
($st, undef, $body) = $c->get('/dummyx');
is($st, 404, '/dummyx does not match /dummy');
is_deeply(json_decode($body), { error => { status => 404, code => 'not_found',
    message => 'no route for this path' } }, '404 is a JSON error');

($st, $h, $body) = $c->get('/dummy', method => 'POST', headers => "Content-Length: 0\r\n");
is($st, 405, 'POST is 405');
is($h->{allow}, 'GET, HEAD', '405 names the allowed methods');
is(json_decode($body)->{error}{code}, 'method_not_allowed', '405 is a JSON error');

($st, $h, $body) = $c->get('/dummy', method => 'HEAD');
is($st, 200, 'HEAD is 200');
ok($h->{'content-length'} > 0, 'HEAD carries the length of the body');
# Read raw: nothing may follow the headers of a HEAD reply.
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s "HEAD /dummy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    local $/;
    my $raw = <$s>;
    like($raw, qr/\r\n\r\n\z/, 'HEAD sends no body');
}

($st, undef, $body) = $c->get('/dummy/delay?ms=50');
is($st, 200, 'delay answers');
is(json_decode($body)->{delayed_ms}, 50, 'delayed_ms field');
for my $bad ('ms=-1', 'ms=60001', 'ms=abc', 'ms=', 'x=1') {
    ($st, undef, $body) = $c->get("/dummy/delay?$bad");
    is($st, 400, "delay?$bad is 400");
}
like(json_decode($body)->{error}{message}, qr/0 to 60000/, '400 says the range');
($st) = $c->get('/dummy/other');
is($st, 404, 'unknown dummy subpath is 404');

# Limits and bad input: JSON errors, then the connection closes.
($st, $h, $body) = $c->get('/dummy', headers => 'X-Big: ' . ('a' x 2000) . "\r\n");
is($st, 431, 'headers over max_header_bytes are 431');
is(json_decode($body)->{error}{code}, 'headers_too_large', 'as a JSON error');
is($h->{connection}, 'close', 'and the connection is closed');
($st) = $c->get('/dummy', headers => 'X-Small: ' . ('a' x 500) . "\r\n");
is($st, 200, 'headers under the limit pass');
($st, undef, $body) = $c->get('/' . ('x' x 1100));
is($st, 431, 'a request line over the limit is 431');
($st, $h, $body) = $c->get('/dummy', headers => "Content-Length: 2000000\r\n");
is($st, 413, 'a body over max_body_bytes is 413, before it is sent');
is(json_decode($body)->{error}{code}, 'too_large', 'as a JSON error');
# A client that sends its oversized body at once, without waiting for an
# answer, must still get the 413 rather than a reset: the worker shuts down
# its side and reads and drops the rest (lingering close).
{
    local $SIG{PIPE} = 'IGNORE';
    my $size = 8 * 1024 * 1024;          # far more than the socket buffers hold
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s "POST /dummy HTTP/1.1\r\nHost: t\r\nContent-Length: $size\r\n\r\n";
    my ($sent, $chunk, $err) = (0, 'x' x 65536, '');
    while ($sent < $size) {
        my $n = syswrite($s, $chunk);
        if (!defined $n) { $err = "$!"; last }
        $sent += $n;
    }
    is($err, '', 'the whole oversized body can be sent: no reset');
    my $resp = Clusterd::read_response($s);
    is($resp && $resp->[0], 413, '... and the answer is the 413');
    ok($resp && json_decode($resp->[2]) && json_decode($resp->[2])->{error}{code} eq 'too_large',
        '  ... as a JSON error');
    # The worker lingers a bounded time: a client that stays connected, silent,
    # finds the connection closed for good (the worker's end is no longer open).
    ok(defined worker_end_open($c->port, $s->sockport), 'the server end of it is in /proc/net/tcp');
    my $closed = poll_until($Clusterd::DEADLINE, sub { !worker_end_open($c->port, $s->sockport) });
    ok($closed, 'a client that stays connected after the 413 is let go');
}

# Whether a process still holds the server's end of the TCP connection between
# 127.0.0.1:$sport and the client's port $cport (an orphan has inode 0);
# undef if the kernel has no such socket.
sub worker_end_open {
    my ($sport, $cport) = @_;
    open my $f, '<', '/proc/net/tcp' or die "/proc/net/tcp: $!";
    while (<$f>) {
        my @x = split;
        next unless ($x[1] // '') =~ /:([0-9A-F]{4})$/ && hex($1) == $sport;
        next unless $x[2] =~ /:([0-9A-F]{4})$/ && hex($1) == $cport;
        return $x[9] != 0 ? 1 : 0;
    }
    return undef;
}
for my $raw ("NONSENSE\r\n\r\n", "GET /dummy HTTP/1.1\r\nHost: t\r\nBad Header\r\n\r\n",
    "GET * HTTP/1.1\r\nHost: t\r\n\r\n") {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s $raw;
    my $resp = Clusterd::read_response($s);
    (my $name = $raw) =~ s/\r\n.*//s;
    is($resp && $resp->[0], 400, "malformed input is 400: $name");
    ok($resp && json_decode($resp->[2]) && json_decode($resp->[2])->{error}{status} == 400,
        '  ... as a JSON error');
}
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s "GET /dummy HTTP/2.0\r\n\r\n";
    my $resp = Clusterd::read_response($s);
    is($resp && $resp->[0], 505, 'HTTP/2.0 over HTTP/1 framing is 505');
}
# HTTP/1.0: no keep-alive unless asked for; absolute-form targets.
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s "GET http://example/dummy HTTP/1.0\r\n\r\n";
    local $/;
    my $raw = <$s>;
    like($raw, qr{^HTTP/1\.1 200 .*\r\nConnection: close\r\n.*"service":"dummy"}s,
        'HTTP/1.0 with an absolute-form target: answered, then closed');
}

# Expect: 100-continue: the go-ahead comes once the headers are in, even when
# they arrive in pieces, and not when the announced body is refused anyway.
sub response_within {
    my ($s, $secs) = @_;
    my $r;
    local $SIG{ALRM} = sub { die "timeout\n" };
    alarm $secs;
    eval { $r = Clusterd::read_response($s); 1 };
    alarm 0;
    return $r;
}
for my $split (0, 1) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    $s->autoflush(1);
    setsockopt($s, IPPROTO_TCP, TCP_NODELAY, 1) or die "TCP_NODELAY: $!";
    my $head = "POST /dummy HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
    if ($split) {
        # Two segments cut inside the value. The pause only makes it likely
        # that the worker reads them apart; the test holds either way.
        my $cut = index($head, 'continue');
        print $s substr($head, 0, $cut);
        sleep 0.1;
        print $s substr($head, $cut);
    } else {
        print $s $head;
    }
    my $how = $split ? ', its value split across two packets' : '';
    my $r = response_within($s, $Clusterd::DEADLINE);
    is($r && $r->[0], 100, "Expect: 100-continue gets 100 Continue$how");
    print $s 'hello';
    $r = response_within($s, $Clusterd::DEADLINE);
    is($r && $r->[0], 405, '  ... then the answer to the request with its body');
}
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $s "POST /dummy HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\nExpect: 100-continue\r\n\r\n";
    my $r = response_within($s, $Clusterd::DEADLINE);
    is($r && $r->[0], 413, 'Expect: 100-continue with a body over the limit: 413, no go-ahead');
}

# Keep-alive: several requests on one connection, even split byte by byte.
{
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    my $n = 0;
    for (1 .. 5) {
        print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
        my $r = Clusterd::read_response($s);
        $n++ if $r && $r->[0] == 200;
    }
    is($n, 5, 'five requests on one keep-alive connection');
    $s->autoflush(1);
    print $s $_ for split //, "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
    my $r = Clusterd::read_response($s);
    is($r && $r->[0], 200, 'a request sent one byte at a time');
    # Chunked request body on a GET is read and ignored.
    print $s "GET /dummy HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
    $r = Clusterd::read_response($s);
    is($r && $r->[0], 200, 'a chunked request body is consumed');
    # Pipelined: two requests in one write, two answers in order.
    print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\nGET /dummy/delay?ms=1 HTTP/1.1\r\nHost: t\r\n\r\n";
    my $r1 = Clusterd::read_response($s);
    my $r2 = Clusterd::read_response($s);
    ok($r1 && $r2 && !exists json_decode($r1->[2])->{delayed_ms}
        && json_decode($r2->[2])->{delayed_ms} == 1, 'pipelined requests answered in order');
}

# No descriptor leaks across fork: a worker shares no pipe or socket with the
# master or the other worker but its own slot's listening socket, and holds
# nothing of the master's event loop (its signalfd).
sub fd_targets {
    my $pid = shift;
    my %t;
    for my $fd (glob "/proc/$pid/fd/*") {
        my ($n) = $fd =~ m{(\d+)$};
        next if $n <= 2;
        my $l = readlink $fd or next;
        $t{$l}++;
    }
    return \%t;
}
my $m = fd_targets($c->pid);
my ($w0, $w1) = map { fd_targets($_) } @workers;
my @shared01 = grep { /^(socket|pipe):/ && $w1->{$_} } keys %$w0;
is(scalar @shared01, 0, 'the workers share no socket or pipe');
for my $w ($w0, $w1) {
    my @shared = grep { /^(socket|pipe):/ && $m->{$_} } keys %$w;
    is(scalar @shared, 1, 'a worker shares exactly one socket with the master (its listener)');
    ok(!$w->{'anon_inode:[signalfd]'}, "a worker does not hold the master's signalfd");
    ok(($w->{'anon_inode:[eventpoll]'} // 0) == 1, 'a worker has one epoll instance, its own');
}

is($c->stop('TERM') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
