# Pipelining: requests queued behind a slow one, a client that half-closes,
# a client that never reads (memory stays bounded), absolute-form targets.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Socket qw(SHUT_WR);
use Clusterd qw(poll_until json_decode);

# Under ASan, freed memory waits in a quarantine (256 MB by default) and
# counts as resident: keep it small, so that RSS measures what is held.
local $ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'quarantine_size_mb=4';
my $c = Clusterd->new(config => { workers => 1,
    limits => { keepalive_timeout_ms => 500, read_timeout_ms => 5000 } })->start;
my ($worker) = $c->workers;
sub connect_ { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die "$!" }
sub count_replies {
    my ($s, $want) = @_;
    my $n = 0;
    while ($n < $want) {
        my $r = Clusterd::read_response($s) or last;
        $n++ if $r->[0] == 200;
    }
    return $n;
}
my $get = "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";

# Behind a request in service, past the keep-alive timeout.
my $s = connect_();
print $s "GET /dummy/delay?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n$get";
my $r1 = Clusterd::read_response($s);
my $r2 = Clusterd::read_response($s);
ok($r1 && $r1->[2] =~ /"delayed_ms":1500/, 'the slow request is answered');
ok($r2 && $r2->[0] == 200 && $r2->[2] !~ /delayed_ms/,
    'the request queued behind it too, though it waited longer than keepalive_timeout_ms');

# Half-close after sending: everything sent is answered.
my $N = 20000;
$s = connect_();
print $s $get x $N;
shutdown($s, SHUT_WR);
is(count_replies($s, $N), $N, "$N pipelined requests then a half-close: all answered");
ok(!defined Clusterd::read_response($s), 'then the connection closes');
$s = connect_();
print $s "GET /dummy/delay?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n$get";
shutdown($s, SHUT_WR);
is(count_replies($s, 2), 2, 'a half-close behind a request in service: both answered');

# A client that sends without reading: the worker stops reading it rather
# than buffering its replies without bound.
my ($rss0) = Clusterd::rss_kb($worker);
$s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port, Blocking => 0) or die;
IO::Select->new($s)->can_write(5);
my ($sent, $chunk) = (0, $get x 1000);
my $sel = IO::Select->new($s);
while ($sent < 200_000_000) {
    last unless $sel->can_write(2);       # the worker stopped reading us
    my $n = syswrite($s, $chunk);
    $sent += $n if $n;
}
my $grown = (Clusterd::rss_kb($worker))[0] - $rss0;
ok($sent < 200_000_000, sprintf('the worker stopped reading a client that reads nothing (after %.1f MB)', $sent / 1e6));
ok($grown < 20_000, "and its memory grew by $grown kB only");
my ($st) = $c->get('/dummy');
is($st, 200, 'other clients are served meanwhile');
$s->blocking(1);
my $answered = count_replies($s, int($sent / length $get));
is($answered, int($sent / length $get), "once it reads, all $answered requests are answered");
close $s;

# absolute-form targets: the path starts after the authority.
for my $case ([ 'http://host/dummy', 200 ], [ 'http://host?a=/dummy', 400 ], [ 'http://host', 400 ],
              [ 'http://host/dummy?x=1', 200 ]) {
    my ($target, $want) = @$case;
    my ($code) = $c->get($target);
    is($code, $want, "absolute-form $target is $want");
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
