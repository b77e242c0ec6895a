# The socketio service with the official socket.io-client (t/sio/drive.js):
# connect, namespaces, join and publish across both workers with the
# sender left out, acks both ways, binary, emit from a back end, a message
# over max_payload_bytes, then a reload and a kill -9: the clients come
# back by themselves and receive again.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);
use SioDrive;

my $TOKEN = 'test-token-123';
my $route = { prefix => '/socket.io', service => 'socketio', namespaces => ['/admin'],
    max_payload_bytes => 100000, publish_token => $TOKEN, reconnect_spread_ms => 1000 };
my $c = Clusterd->new(config => { heartbeat_interval_ms => 100, shutdown_timeout_ms => 5000,
    routes => [ { prefix => '/metrics', service => 'metrics' }, $route ] })->start;
my $url = 'http://127.0.0.1:' . $c->port;
my $d = SioDrive->new;

sub post_emit {
    my ($body, $auth) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die "connect: $!";
    print $s "POST /socket.io/emit HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" .
        "Content-Type: application/json\r\nContent-Length: " . length($body) . "\r\n" .
        ($auth ? "Authorization: Bearer $auth\r\n" : '') . "\r\n$body";
    my $r = Clusterd::read_response($s);
    return $r ? $r->[0] : 0;
}

# ---- connecting ----
my $e = $d->call(cmd => 'connect', id => 'a', url => $url);
is($e && $e->{ev}, 'connect', 'the official client connects over WebSocket');
like($e->{sid} // '', qr/^[A-Za-z0-9_-]{20}$/, '... with a Socket.IO sid');
$e = $d->call(cmd => 'connect', id => 'adm', url => $url, nsp => '/admin', auth => { token => 'x' });
is($e && $e->{ev}, 'connect', 'to a listed namespace, with an auth payload');
$e = $d->call(cmd => 'connect', id => 'bad', url => $url, nsp => '/nope');
is($e && $e->{ev}, 'connect_error', 'an unknown namespace: connect_error');
is($e->{message}, 'Invalid namespace', '... "Invalid namespace"');

# ---- acks ----
$e = $d->call(cmd => 'emit', id => 'a', event => 'join', args => ['lobby'], ack => JSON::PP::true);
is_deeply($e && $e->{args}, [ { ok => JSON::PP::true } ], 'join is acked {"ok":true}');
$e = $d->call(cmd => 'emit', id => 'a', event => 'join', args => [ 'x' x 201 ], ack => JSON::PP::true);
like($e && $e->{args}[0]{error}, qr/1 to 200 bytes/, 'a room name of 201 bytes: an error ack');
$e = $d->call(cmd => 'emit', id => 'a', event => 'nosuch', args => [1], ack => JSON::PP::true);
is_deeply($e && $e->{args}, [ { error => 'unknown event' } ], 'an unknown event with an ack: "unknown event"');
$e = $d->call(cmd => 'emit', id => 'a', event => 'leave', args => ['lobby'], ack => JSON::PP::true);
is_deeply($e && $e->{args}, [ { ok => JSON::PP::true } ], 'leave is acked');
my $acks;
for my $i (1 .. 101) {
    $e = $d->call(cmd => 'emit', id => 'adm', event => 'join', args => ["r$i"], ack => JSON::PP::true);
    $acks = $e->{args}[0] if $i == 100 || $i == 101;
    last unless $e && $e->{ev} eq 'ack';
}
like($acks && $acks->{error}, qr/too many rooms/, 'the 101st room: an error ack');

# ---- 40 clients on both workers, one room ----
my $N = 40;
$e = $d->call(cmd => 'many', prefix => 'c', n => $N, url => $url, timeout_ms => 20000,
    onconnect => [ { event => 'join', args => ['room'] } ], deadline => 40);
is($e && $e->{connected}, $N, "$N clients connected and joined");
my $by = $c->worker_conns;
my @held = map { scalar @{ $by->{$_} || [] } } $c->workers;
ok(@held == 2 && $held[0] > 0 && $held[1] > 0, "both workers hold some of them (@held)");

# a publishes 20 messages: every client of the room gets all, in order; a gets none
$d->call(cmd => 'emit', id => 'a', event => 'join', args => ['room'], ack => JSON::PP::true);
for my $n (0 .. 19) {
    $e = $d->call(cmd => 'emit', id => 'a', event => 'publish',
        args => [ { room => 'room', event => 'news', data => { n => $n } } ], ack => JSON::PP::true);
    is_deeply($e->{args}, [ { ok => JSON::PP::true } ], 'publish is acked') if $n == 0;
}
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'news', count => 20, timeout_ms => 15000, deadline => 20);
ok($e && $e->{ok}, 'every client got 20 messages');
$e = $d->call(cmd => 'counts', prefix => 'c', expect => { news => 20 });
is($e && $e->{events}{news}{in_order}, $N, 'each got exactly 20, in publish order');
$e = $d->call(cmd => 'counts', id => 'a');
ok(!$e->{events}{news}, 'the sender got none of its own');
$e = $d->call(cmd => 'counts', id => 'adm');
ok(!$e->{events}{news}, 'a socket outside the room got none');

# binary data keeps its bytes
$d->call(cmd => 'reset', prefix => 'c');
$d->call(cmd => 'quiet', id => 'c0', on => JSON::PP::false);
$d->call(cmd => 'emit', id => 'a', event => 'publish',
    args => [ { room => 'room', event => 'blob', data => { '$bin' => 'AAEC/w==' } } ], ack => JSON::PP::true);
$e = $d->expect(sub { $_[0]{ev} eq 'event' && $_[0]{id} eq 'c0' && $_[0]{event} eq 'blob' }, 10);
is_deeply($e && $e->{args}, [ { '$bin' => 'AAEC/w==' } ], 'a binary attachment arrives as binary, intact');
$d->call(cmd => 'quiet', id => 'c0', on => JSON::PP::true);

# ---- emit from a back end ----
is(post_emit('{"room":"room","event":"e1","data":1}'), 401, 'emit without the token: 401');
is(post_emit('{"room":"room","event":"e1","data":{"n":0}}', $TOKEN), 200, 'emit with the token: 200');
is(post_emit('{"event":"e2","data":{"n":0}}', $TOKEN), 200, 'an emit to every socket: 200');
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'e1', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'the room got the emit');
$e = $d->call(cmd => 'waitfor', ids => [ 'a', 'c0' ], event => 'e2', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'an emit with no room reaches every socket');
$d->call(cmd => 'reset', prefix => 'c');
# 30 emits posted one after the other, through whichever worker: in order everywhere
for my $n (0 .. 29) { post_emit(qq({"room":"room","event":"seq","data":{"n":$n}}), $TOKEN) }
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'seq', count => 30, timeout_ms => 15000, deadline => 20);
$e = $d->call(cmd => 'counts', prefix => 'c', expect => { seq => 30 });
is($e && $e->{events}{seq}{in_order}, $N, 'emits posted in turn arrive in that order at every client');

# a message just under max_payload_bytes crosses the bus whole, to every client
$d->call(cmd => 'emit', id => 'a', event => 'publish',
    args => [ { room => 'room', event => 'big', data => { n => 0, pad => 'z' x 99000 } } ], ack => JSON::PP::true);
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'big', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'a publish of 99 kB (max_payload_bytes 100000) reaches every client');

# ---- over max_payload_bytes: that client is cut, the others stay ----
$e = $d->call(cmd => 'connect', id => 'big', url => $url, opts => { reconnection => JSON::PP::false });
$d->cmd(cmd => 'emit', id => 'big', event => 'publish', args => [ { room => 'room', event => 'x', data => 'y' x 150000 } ]);
$e = $d->expect(sub { $_[0]{ev} eq 'disconnect' && $_[0]{id} eq 'big' }, 10);
ok($e, 'a message over max_payload_bytes: its client is disconnected (' . ($e ? $e->{reason} : 'no') . ')');
$e = $d->call(cmd => 'counts', prefix => 'c');
is($e && $e->{connected}, $N, 'the others are still connected');

# ---- reload: every client is told to go (1001), comes back, and receives ----
$d->call(cmd => 'reset', prefix => 'c');
my $from = $c->log_size;
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2, 2 worker\(s\)/, 20, $from), 'reloaded');
$e = $d->call(cmd => 'waitfor', prefix => 'c', state => 'disconnected', timeout_ms => 10000, deadline => 15);
$e = $d->call(cmd => 'waitfor', prefix => 'c', state => 'ready', timeout_ms => 20000, deadline => 25);
ok($e && $e->{ok}, 'all came back to the new generation and joined again');
$e = $d->call(cmd => 'counts', prefix => 'c');
is($e && $e->{life}{reconnect}, $N, "each of the $N reconnected once");
ok($c->wait_log(qr/generation 1\) exited: exit code 0(?s:.*)generation 1\) exited: exit code 0/, 20, $from),
    'the old workers exited once their sockets were closed');
$d->call(cmd => 'waitfor', id => 'a', state => 'ready', timeout_ms => 20000);
$d->call(cmd => 'emit', id => 'a', event => 'join', args => ['room'], ack => JSON::PP::true);
$d->call(cmd => 'emit', id => 'a', event => 'publish',
    args => [ { room => 'room', event => 'after', data => { n => 0 } } ], ack => JSON::PP::true);
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'after', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'after the reload, a publish reaches every client');

# ---- kill -9 of a worker: its clients reconnect to the others or its replacement ----
$d->call(cmd => 'reset', prefix => 'c');
my ($victim) = $c->workers;
$from = $c->log_size;
kill 'KILL', $victim;
ok($c->wait_log(qr/worker \d+ ready: slot/, 20, $from), 'a replacement is ready');
$e = $d->call(cmd => 'waitfor', prefix => 'c', state => 'ready', timeout_ms => 20000, deadline => 25);
ok($e && $e->{ok}, 'every client is connected again');
$d->call(cmd => 'waitfor', id => 'a', state => 'ready', timeout_ms => 20000);
$d->call(cmd => 'emit', id => 'a', event => 'join', args => ['room'], ack => JSON::PP::true);
$d->call(cmd => 'emit', id => 'a', event => 'publish',
    args => [ { room => 'room', event => 'after9', data => { n => 0 } } ], ack => JSON::PP::true);
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'after9', timeout_ms => 10000, deadline => 15);
ok($e && $e->{ok}, 'after the kill, a publish reaches every client');

$d->close;
$c->stop;
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
