# Timeouts: idle keep-alive connections and stalled requests are closed; a
# request in service is never timed out; keepalive_timeout_ms 0 closes.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Clusterd qw(poll_until);

my $c = Clusterd->new(config => { workers => 1,
    limits => { read_timeout_ms => 500, keepalive_timeout_ms => 200 } })->start;
sub connect_ { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die }
# Waits (up to $secs) for the server to close; true if it did.
sub closed_within {
    my ($s, $secs) = @_;
    return 0 unless IO::Select->new($s)->can_read($secs);
    return !sysread($s, my $buf, 1);
}

my $s = connect_();
print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
my $r = Clusterd::read_response($s);
is($r && $r->[0], 200, 'a keep-alive request');
print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n";
$r = Clusterd::read_response($s);
is($r && $r->[0], 200, 'a second one right after, on the same connection');
ok(closed_within($s, 10), 'an idle keep-alive connection is closed');

$s = connect_();
print $s "GET /dummy HTTP/1.1\r\nHost: t\r\n";    # and then nothing
ok(closed_within($s, 10), 'a request that stalls halfway is closed');

$s = connect_();
print $s "GET /dummy/delay?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n";
$r = Clusterd::read_response($s);
is($r && $r->[0], 200, 'a request in service longer than both timeouts still completes');

my $d = Clusterd->new(config => { workers => 1, limits => { keepalive_timeout_ms => 0 } })->start;
my ($st, $h) = $d->get('/dummy');
is($h->{connection}, 'close', 'keepalive_timeout_ms 0: every reply closes');
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($d->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report . $d->sanitizer_report, '', 'no sanitizer report');
done_testing;
