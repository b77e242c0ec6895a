# socketio across hosts through Redis: two clusterd masters share a
# redis-server (Debian's, started here on a free port), deliver to each
# other's clients exactly once, take broadcasts from the official
# @socket.io/redis-emitter, share rooms with a Node.js socket.io server on
# the official Redis adapter, and survive a Redis restart: local delivery
# goes on while it is down, each worker says so once, and they reconnect.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use JSON::PP;
use Clusterd qw(poll_until json_decode);
use File::Temp ();
use SioDrive;

my ($redis_bin) = grep { -x } map { "$_/redis-server" } split /:/, $ENV{PATH};
plan skip_all => 'redis-server is not installed (./bootstrap --test installs it)' unless $redis_bin;

my $sio = SioDrive::DIR();
my $true = JSON::PP::true;

sub free_port {
    my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die "$!";
    return $s->sockport;
}

my $rport = free_port();
my $rdir = File::Temp::tempdir('clusterd-redis-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $redis_pid;
sub start_redis {
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDOUT, '>>', "$rdir/redis.log" or die;
        open STDERR, '>&', \*STDOUT or die;
        exec $redis_bin, '--port', $rport, '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
            '--dir', $rdir;
        die "exec: $!";
    }
    $redis_pid = $pid;
    # ready when it answers PING
    return poll_until(10, sub {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $rport) or return 0;
        print $s "PING\r\n";
        my $l = <$s> // '';
        return $l =~ /^\+PONG/;
    });
}
sub stop_redis {
    return unless $redis_pid;
    kill 'TERM', $redis_pid;
    waitpid($redis_pid, 0);
    undef $redis_pid;
}
END { stop_redis() }

ok(start_redis(), "redis-server is up on 127.0.0.1:$rport");
my $url = "redis://127.0.0.1:$rport";
my $route = { prefix => '/socket.io', service => 'socketio', redis => $url, publish_token => 'token-123456' };
my @hosts = map {
    Clusterd->new(config => { heartbeat_interval_ms => 100,
        routes => [ { prefix => '/metrics', service => 'metrics' }, $route ] })->start
} 1 .. 2;

sub metric {
    my ($c, $name) = @_;
    my (undef, undef, $body) = $c->get('/metrics');
    return $body =~ /^clusterd_\Q$name\E\{route="\/socket\.io"\} (\d+)$/m ? $1 : -1;
}
for my $i (0, 1) {
    ok(poll_until(15, sub { metric($hosts[$i], 'socketio_redis_up') == 2 }),
        "host $i: both workers are connected to Redis");
}

my $d = SioDrive->new;
for my $i (0, 1) {
    my $e = $d->call(cmd => 'many', prefix => "h$i", n => 10, url => 'http://127.0.0.1:' . $hosts[$i]->port,
        onconnect => [ { event => 'join', args => ['room'] } ], timeout_ms => 15000, deadline => 20);
    is($e && $e->{connected}, 10, "10 clients on host $i, in the room");
}

sub emitter {
    my @args = @_;
    local $ENV{NODE_PATH} = join ':', "$sio/node_modules", $ENV{NODE_PATH} // ();
    open(my $fh, '-|', 'node', "$sio/emitter.js", '--redis', $url, @args) or die "emitter: $!";
    my @lines = <$fh>;
    close $fh;
    return json_decode($lines[-1] // '') // { ok => 0, error => "@lines" };
}

# Subscriptions are confirmed asynchronously: probe until both hosts' clients hear.
my $ready = poll_until(20, sub {
    emitter('--room', 'room', '--event', 'probe', '--data', '1');
    my $e = $d->call(cmd => 'waitfor', ids => [ map({ "h0$_" } 0 .. 9), map({ "h1$_" } 0 .. 9) ],
        event => 'probe', timeout_ms => 300, deadline => 5);
    return $e && $e->{ok};
});
ok($ready, 'a broadcast from the official redis-emitter reaches the clients of both hosts');
$d->call(cmd => 'reset', prefix => $_) for qw(h0 h1);

# A client of host 0 publishes: host 0's and host 1's clients get each message once, in order.
$d->call(cmd => 'connect', id => 'pub', url => 'http://127.0.0.1:' . $hosts[0]->port);
for my $n (0 .. 9) {
    $d->call(cmd => 'emit', id => 'pub', event => 'publish',
        args => [ { room => 'room', event => 'news', data => { n => $n } } ], ack => $true);
}
for my $i (0, 1) {
    $d->call(cmd => 'waitfor', prefix => "h$i", event => 'news', count => 10, timeout_ms => 10000, deadline => 15);
    my $e = $d->call(cmd => 'counts', prefix => "h$i", expect => { news => 10 });
    is($e && $e->{events}{news}{in_order}, 10, "host $i: each client got the 10 messages once, in order");
}
# an emit posted to host 1 reaches host 0
my $body = '{"room":"room","event":"posted"}';
my ($st) = Clusterd::http_get($hosts[1]->port, '/socket.io/emit', method => 'POST',
    headers => "Authorization: Bearer token-123456\r\nContent-Length: " . length($body) . "\r\n\r\n$body");
is($st, 200, 'an emit posted to host 1');
my $e = $d->call(cmd => 'waitfor', prefix => 'h0', event => 'posted', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, '... reaches the clients of host 0');
$e = $d->call(cmd => 'counts', prefix => 'h0');
is($e && $e->{events}{posted}{total}, 10, '... once each');

# binary through Redis, and the emitter with no room
$d->call(cmd => 'quiet', id => 'h15', on => JSON::PP::false);
ok(emitter('--room', 'room', '--event', 'bin', '--bin', 'AAEC/w==')->{ok}, 'the emitter sends a binary');
ok(emitter('--event', 'all', '--data', '{"n":0}')->{ok}, 'and an event to every socket');
$e = $d->expect(sub { $_[0]{ev} eq 'event' && $_[0]{id} eq 'h15' && $_[0]{event} eq 'bin' }, 10);
is_deeply($e && $e->{args}, [ { '$bin' => 'AAEC/w==' } ], 'a binary from the emitter arrives intact');
$e = $d->call(cmd => 'waitfor', prefix => 'h1', event => 'all', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'the emitter with no room reaches every socket');
$d->call(cmd => 'quiet', id => 'h15', on => $true);

# ---- a Node.js socket.io server on the official Redis adapter shares the room ----
{
    local $ENV{NODE_PATH} = join ':', "$sio/node_modules", $ENV{NODE_PATH} // ();
    open(my $nh, '-|', 'node', "$sio/nodehub.js", '--port', '0', '--redis', $url, '--lifetime', '120')
        or die "nodehub: $!";
    my $line = <$nh>;
    my $r = json_decode($line // '');
    ok($r && $r->{ready}, 'a Node.js socket.io server with the Redis adapter is up');
    my $nurl = "http://127.0.0.1:$r->{port}";
    $e = $d->call(cmd => 'connect', id => 'node', url => $nurl,
        onconnect => [ { event => 'join', args => ['room'] } ]);
    ok($e && $e->{ev} =~ /connect|onconnect_done/, 'a client of the Node.js server joins the room');
    $d->call(cmd => 'reset', prefix => $_) for qw(h0 h1);
    $d->call(cmd => 'emit', id => 'pub', event => 'publish',
        args => [ { room => 'room', event => 'fromc', data => { n => 0 } } ], ack => $true);
    $e = $d->call(cmd => 'waitfor', id => 'node', event => 'fromc', timeout_ms => 10000, deadline => 15);
    ok($e && $e->{ok}, 'a publish on clusterd reaches the Node.js server\'s client');
    $d->call(cmd => 'emit', id => 'node', event => 'publish',
        args => [ { room => 'room', event => 'fromnode', data => { n => 0 } } ], ack => $true);
    $e = $d->call(cmd => 'waitfor', prefixes => undef, ids => [ map({ "h0$_" } 0 .. 9), map({ "h1$_" } 0 .. 9) ],
        event => 'fromnode', timeout_ms => 10000, deadline => 15);
    ok($e && $e->{ok}, 'a publish on the Node.js server reaches clusterd\'s clients on both hosts');
    $d->call(cmd => 'close', id => 'node');
    kill 'TERM', $r->{pid} if $r && $r->{pid};
    close $nh;
}

# ---- Redis goes away and comes back ----
my @from = map { $_->log_size } @hosts;
stop_redis();
for my $i (0, 1) {
    ok(poll_until(15, sub { metric($hosts[$i], 'socketio_redis_up') == 0 }), "host $i: its workers see Redis down");
}
$d->call(cmd => 'reset', prefix => $_) for qw(h0 h1);
for my $n (0 .. 4) {
    $d->call(cmd => 'emit', id => 'pub', event => 'publish',
        args => [ { room => 'room', event => 'during', data => { n => $n } } ], ack => $true);
}
$e = $d->call(cmd => 'waitfor', prefix => 'h0', event => 'during', count => 5, timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'with Redis down, host 0 still delivers to its own clients');
ok(start_redis(), 'redis-server restarted on the same port');
for my $i (0, 1) {
    ok(poll_until(20, sub { metric($hosts[$i], 'socketio_redis_up') == 2 }), "host $i: both workers reconnected");
    my $log = substr($hosts[$i]->log_text, $from[$i]);
    my %down;
    $down{$1}++ while $log =~ /^\S+ \[warn\] (\d+) [^:]*: redis \S+: down/mg;
    ok(keys %down >= 1 && !grep({ $_ != 1 } values %down),
        "host $i: each worker logged the outage once (" . join(',', values %down) . ')');
    like($log, qr/redis \S+: up again after/, "host $i: and that it is back");
}
$d->call(cmd => 'reset', prefix => $_) for qw(h0 h1);
$ready = poll_until(20, sub {
    $d->call(cmd => 'emit', id => 'pub', event => 'publish',
        args => [ { room => 'room', event => 'after', data => { n => 0 } } ], ack => $true);
    my $e2 = $d->call(cmd => 'waitfor', prefix => 'h1', event => 'after', timeout_ms => 300, deadline => 5);
    return $e2 && $e2->{ok};
});
ok($ready, 'after the restart, host 0\'s publishes reach host 1 again');

$d->close;
for my $c (@hosts) {
    $c->stop;
    is($c->sanitizer_report, '', 'no sanitizer report');
}
done_testing;
