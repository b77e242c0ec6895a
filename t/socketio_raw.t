# The socketio service at the byte level, with a hand-made WebSocket client:
# Engine.IO's handshake errors, the open packet, pings and their timeout,
# and what no real client sends (unmasked frames, bad UTF-8, absurd
# lengths, fragmented control frames, broken packets): each gets a clean
# close or a 400, never a crash. Also POST /emit and a client that stops
# reading while others go on.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);
use WsRaw;

# Writing to a connection the server has just closed is part of the test.
$SIG{PIPE} = 'IGNORE';

my $TOKEN = 'test-token-123';
my $c = Clusterd->new(config => {
    heartbeat_interval_ms => 100,
    routes => [
        { prefix => '/metrics', service => 'metrics' },
        { prefix => '/socket.io', service => 'socketio', namespaces => ['/admin'],
          ping_interval_ms => 400, ping_timeout_ms => 400, connect_timeout_ms => 1500,
          max_payload_bytes => 100000, send_queue_bytes => 262144, publish_token => $TOKEN },
    ] })->start;
my $port = $c->port;
my @workers = $c->workers;

sub post {
    my ($path, $body, $headers) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
    print $s "POST $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: application/json\r\n" .
        "Content-Length: " . length($body) . "\r\n" . ($headers // '') . "\r\n" . $body;
    my $r = Clusterd::read_response($s);
    close $s;
    return $r ? @$r : (0, {}, '');
}

sub metric {
    my ($name, $label) = @_;
    my (undef, undef, $body) = $c->get('/metrics');
    my $re = $label ? qr/^clusterd_\Q$name\E\{route="\/socket\.io",\Q$label\E\} (\d+)$/m
                    : qr/^clusterd_\Q$name\E\{route="\/socket\.io"\} (\d+)$/m;
    return $body =~ $re ? $1 : 0;
}

# ---- Engine.IO's handshake errors: 400 and its own JSON body ----
for my $case (
    [ 'transport=polling', '/socket.io/?EIO=4&transport=polling', 0, 'Transport unknown' ],
    [ 'no transport', '/socket.io/?EIO=4', 0, 'Transport unknown' ],
    [ 'EIO=3', '/socket.io/?EIO=3&transport=websocket', 5, 'Unsupported protocol version' ],
    [ 'no EIO', '/socket.io/?transport=websocket', 5, 'Unsupported protocol version' ],
    [ 'a sid', '/socket.io/?EIO=4&transport=websocket&sid=abc', 1, 'Session ID unknown' ],
    [ 'no Upgrade', '/socket.io/?EIO=4&transport=websocket', 3, 'Bad request', '' ],
) {
    my ($name, $path, $code, $msg, $headers) = @$case;
    my ($st, $h, $body) = $c->get($path, defined $headers ? (headers => $headers) : ());
    is($st, 400, "$name: 400");
    is_deeply(json_decode($body), { code => $code, message => $msg }, "$name: Engine.IO's error body");
}
{
    my ($st, undef, $body) = post('/socket.io/?EIO=4&transport=websocket', '');
    is($st, 400, 'a POST handshake: 400');
    is(json_decode($body)->{code}, 2, '... Bad handshake method');
    my $w = WsRaw->connect($port, key => 'short');
    is($w->status, 400, 'a Sec-WebSocket-Key that is not 16 bytes: 400');
    $w = WsRaw->connect($port, headers => "Upgrade: websocket\r\nConnection: Upgrade\r\n" .
        "Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n");
    is($w->status, 400, 'WebSocket version 8: 400');
    is($w->headers->{'sec-websocket-version'}, '13', '... naming the version we speak');
    ($st) = $c->get('/socket.io/nothing');
    is($st, 404, 'another path under the route: 404');
    ($st, my $h) = $c->get('/socket.io/emit');
    is($st, 405, 'GET emit: 405');
    is($h->{allow}, 'POST', '... Allow: POST');
}

# ---- the handshake and the open packet ----
my $w = WsRaw->connect($port);
is($w->status, 101, 'the upgrade: 101');
is($w->headers->{'sec-websocket-accept'}, 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'the RFC 6455 accept key');
my $open = json_decode($w->open_session(no_connect => 1) // '{}');
like($open->{sid} // '', qr/^[A-Za-z0-9_-]{20}$/, 'open packet: a sid');
is_deeply([ @$open{qw(upgrades pingInterval pingTimeout maxPayload)} ], [ [], 400, 400, 100000 ],
    'open packet: no upgrades, and the route\'s ping interval, timeout and max payload');

# ---- pings: answered, the connection lives; unanswered, it is closed ----
my $f = $w->next_frame(3);
is($f && $f->{payload}, '2', 'the server pings');
$w->send_text('3');
$f = $w->next_frame(3);
is($f && $f->{payload}, '2', 'and pings again after a pong');
my $t0 = Time::HiRes::time();
ok($w->wait_eof(5), 'no pong: the connection is closed');
my $took = Time::HiRes::time() - $t0;
ok($took < 2.5, sprintf('... within the ping timeout (%.2f s)', $took));
ok(poll_until(5, sub { metric('socketio_disconnects_total', 'reason="ping_timeout"') >= 1 }),
    'counted as a ping timeout');

# ---- no CONNECT within connect_timeout_ms: closed ----
$w = WsRaw->connect($port);
$w->{autopong} = 1;
$w->open_session(no_connect => 1);
is($w->wait_close(5), 1000, 'no CONNECT in time: close 1000');

# ---- namespaces ----
$w = WsRaw->connect($port);
$w->{autopong} = 1;
$w->open_session(no_connect => 1);
$w->send_text('40/nope,');
$f = $w->next_frame(3);
is($f && $f->{payload}, '44/nope,{"message":"Invalid namespace"}', 'an unknown namespace: CONNECT_ERROR');
$w->send_text('40/admin,{"token":"x"}');
$f = $w->next_frame(3);
like($f && $f->{payload}, qr{^40/admin,\{"sid":"[A-Za-z0-9_-]{20}"\}$}, 'a listed namespace: CONNECT with a sid');
$w->send_text('421["join","x"]');
is($w->wait_close(3), 1002, 'an event for "/", not connected to: close 1002');

# ---- what no client sends ----
my @bad = (
    [ 'an unmasked frame', sub { $_[0]->send_text('40', mask => 0) }, [1002] ],
    [ 'bad UTF-8 in a text frame', sub { $_[0]->send_text("4\xff\xfe") }, [1007] ],
    # wslay answers an error in a frame's header with a close frame that has no status code (0)
    [ 'a length of 2^63', sub { $_[0]->send_raw(WsRaw::frame('', len => 2**63)) }, [0, 1002, 1009] ],
    [ 'a fragmented ping', sub { $_[0]->send_raw(WsRaw::frame('x', opcode => 9, fin => 0)) }, [0, 1002] ],
    [ 'a message over max_payload_bytes', sub { $_[0]->send_text('4' . ('x' x 100001)) }, [1009] ],
    [ 'RSV bits without an extension', sub { $_[0]->send_text('40', rsv => 4) }, [1002] ],
    [ 'an unknown Socket.IO type', sub { $_[0]->send_text('49') }, [1002] ],
    [ 'an event that is not an array', sub { $_[0]->send_text('40'); $_[0]->send_text('42{"a":1}') }, [1002] ],
    [ 'a reserved event name', sub { $_[0]->send_text('40'); $_[0]->send_text('42["connect"]') }, [1002] ],
    [ 'JSON with trailing bytes', sub { $_[0]->send_text('40'); $_[0]->send_text('42["a"]x') }, [1002] ],
    [ 'a client ping (v3)', sub { $_[0]->send_text('2') }, [1002] ],
    [ 'binary with no packet waiting', sub { $_[0]->send_binary("\x01") }, [1002] ],
    [ 'eleven attachments', sub { $_[0]->send_text('40'); $_[0]->send_text('4511-["a"]') }, [1002] ],
    [ 'text while attachments are due', sub { $_[0]->send_text('40');
        $_[0]->send_text('451-["a",{"_placeholder":true,"num":0}]'); $_[0]->send_text('42["a"]') }, [1002] ],
    [ 'CONNECT_ERROR from a client', sub { $_[0]->send_text('44{}') }, [1002] ],
);
for my $b (@bad) {
    my ($name, $send, $codes) = @$b;
    my $x = WsRaw->connect($port);
    $x->{autopong} = 1;
    $x->open_session(no_connect => 1);
    $send->($x);
    my $code = $x->wait_close(5);
    ok(defined $code && grep({ $_ == $code } @$codes), "$name: closed (" . ($code // 'no close') . ")");
}
{
    my $x = WsRaw->connect($port);
    $x->open_session(no_connect => 1);
    $x->send_text('1');
    my $code = $x->wait_close(5);
    ok(defined $code, 'an Engine.IO close packet from the client closes the connection');
}
is(scalar $c->workers, scalar @workers, 'no worker died');
is_deeply([ $c->workers ], [ @workers ], '... they are the same workers');

# ---- POST emit ----
my ($st, $h, $body) = post('/socket.io/emit', '{"event":"e","data":1}');
is($st, 401, 'emit without the token: 401');
is(json_decode($body)->{error}{code}, 'unauthorized', '... a JSON error');
($st) = post('/socket.io/emit', '{"event":"e","data":1}', "Authorization: Bearer wrong-token-123\r\n");
is($st, 401, 'with a wrong token: 401');
my $auth = "Authorization: Bearer $TOKEN\r\n";
($st) = post('/socket.io/emit', '{"event":', $auth);
is($st, 400, 'a malformed body: 400');
($st) = post('/socket.io/emit', '{"event":"connect"}', $auth);
is($st, 400, 'a reserved event: 400');
($st) = post('/socket.io/emit', '{"room":"","event":"e"}', $auth);
is($st, 400, 'an empty room: 400');
($st) = post('/socket.io/emit', '{"event":"e","data":"' . ('x' x 100000) . '"}', $auth);
is($st, 413, 'over max_payload_bytes: 413');

# Two readers in room "feed" (a quick one and one that stops reading) and one
# outside it; every emit reaches the quick one, in order. On a server of its
# own with the default pings, so that only its send queue can cut the one
# that stops reading, however slow the machine.
my $first = $c;
is_deeply([ $c->workers ], [ @workers ], 'the same workers after all that');
$c->stop;
$c = Clusterd->new(config => { heartbeat_interval_ms => 100, routes => [
    { prefix => '/metrics', service => 'metrics' },
    { prefix => '/socket.io', service => 'socketio', max_payload_bytes => 100000,
      send_queue_bytes => 262144, publish_token => $TOKEN } ] })->start;
$port = $c->port;
@workers = $c->workers;
my $quick = WsRaw->connect($port);
$quick->{autopong} = 1;
$quick->open_session;
my $slow = WsRaw->connect($port, rcvbuf => 4096);
$slow->open_session;
my $other = WsRaw->connect($port);
$other->{autopong} = 1;
$other->open_session;
for my $x ($quick, $slow) {
    $x->send_text('420["join","feed"]');
    my $a = $x->next_frame(3);
    is($a && $a->{payload}, '430[{"ok":true}]', 'join is acked');
}
($st, undef, $body) = post('/socket.io/emit', '{"room":"feed","event":"hello","data":{"n":-1}}', $auth);
is($st, 200, 'emit with the token: 200');
is_deeply(json_decode($body), { ok => JSON::PP::true() }, '... {"ok":true}');
$f = $quick->next_frame(3);
is($f && $f->{payload}, '42["hello",{"n":-1}]', 'a socket in the room receives it');
$f = $slow->next_frame(3);
is($f && $f->{payload}, '42["hello",{"n":-1}]', 'so does the other');
# $slow reads no more. 200 emits of 50 kB: 10 MB, far over its send queue and the kernel's buffers.
my $pad = 'y' x 50000;
my $sent = 0;
for my $n (0 .. 199) {
    my ($s2) = post('/socket.io/emit', qq({"room":"feed","event":"bulk","data":{"n":$n,"pad":"$pad"}}), $auth);
    $sent++ if $s2 == 200;
    # the quick one reads as it goes (a reader, not a buffer)
    drain_quick();
}
sub drain_quick {
    $quick->fill(Time::HiRes::time() + 0.001);
    while (my $g = $quick->parse_one) {
        if ($g->{payload} eq '2') { $quick->send_text('3'); next }
        push @{ $quick->{got} }, $g;
    }
    # the one outside the room answers its pings meanwhile
    $other->fill(Time::HiRes::time() + 0.001);
    while (my $g = $other->parse_one) { $other->send_text('3') if $g->{payload} eq '2' }
}
is($sent, 200, '200 emits accepted');
my @seen;
poll_until(20, sub {
    drain_quick();
    @seen = map { $_->{payload} =~ /^42\["bulk",\{"n":(\d+),/ ? $1 : () } @{ $quick->{got} || [] };
    return @seen >= 200;
});
diag("the reader got " . scalar(@seen) . " frames; others: " . join(' ', map { substr($_->{payload}, 0, 20) } grep { $_->{payload} !~ /bulk/ } @{ $quick->{got} || [] })) if @seen != 200;
is_deeply(\@seen, [ 0 .. 199 ], 'the reading client got all 200, in order');
ok(poll_until(10, sub { metric('socketio_disconnects_total', 'reason="send_queue"') >= 1 }),
    'the one that stopped reading was cut at send_queue_bytes');
# What it finds when it reads again: what was sent, then the close (1008) or the end.
my $code = $slow->wait_close(20);
ok(defined $code && ($code == 1008 || $code == -1), 'it finds its connection closed (' . ($code // 'no') . ')');
$other->send_text('420["join","elsewhere"]');
$f = $other->next_frame(3);
is($f && $f->{payload}, '430[{"ok":true}]', 'a socket outside the room was never disturbed');

is_deeply([ $c->workers ], [ @workers ], 'the same workers at the end');

# ---- a graceful stop: each connection is told 1001, going away ----
{
    my @ws = map { my $x = WsRaw->connect($port); $x->{autopong} = 1; $x->open_session; $x } 1 .. 4;
    $c->signal('QUIT');
    my @codes = map { $_->wait_close(10) // 'none' } @ws;
    is_deeply(\@codes, [ 1001, 1001, 1001, 1001 ], 'SIGQUIT: every WebSocket is closed with 1001');
    is($c->wait_exit, 0, 'and the server exits with status 0');
}

# ---- max_connections: the next upgrade is refused with 503, not accepted and dropped ----
{
    my $one = Clusterd->new(config => { workers => 1, routes => [
        { prefix => '/socket.io', service => 'socketio', max_connections => 2 } ] })->start;
    my @held = map { my $x = WsRaw->connect($one->port); $x->open_session; $x } 1 .. 2;
    is_deeply([ map { $_->status } @held ], [ 101, 101 ], 'max_connections 2: two upgrades');
    my $third = WsRaw->connect($one->port);
    is($third->status, 503, 'the third is refused with 503');
    is(json_decode($third->body)->{error}{code}, 'overloaded', '... a JSON error "overloaded"');
    $held[0]->close;
    ok(poll_until(10, sub { WsRaw->connect($one->port)->status == 101 }),
        'once one has gone, a new one is taken');
    $one->stop;
}
$c->stop;
is($c->sanitizer_report, '', 'no sanitizer report');
is($first->sanitizer_report, '', 'none from the first server either');
undef $c;
undef $first;    # the subs above hold it: let it go before Test::More does
done_testing;
