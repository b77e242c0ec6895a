# Strict HTTP/1.1 framing (RFC 9112): each request that a lenient parser
# reads differently from a proxy in front is refused, and the bytes behind
# it are never answered as a request of their own (no smuggling).
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Clusterd qw(json_decode);

my $c = Clusterd->new(config => {
    routes => [ { prefix => '/dummy', service => 'dummy' } ],
})->start;

# Everything the worker sends on one connection until it closes it:
# a list of [status, error code or undef].
sub exchange {
    my ($raw) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die $!;
    print $s $raw;
    shutdown($s, 1);             # the worker sees the end of our input
    my ($all, $sel, $deadline) = ('', IO::Select->new($s), time + 10);
    while (time < $deadline && $sel->can_read(1)) {
        my $n = sysread($s, $all, 65536, length $all);
        last unless $n;
    }
    my @got;
    my $pos = 0;
    while (substr($all, $pos) =~ m{\AHTTP/1\.1 (\d{3}) [^\r]*\r\n(.*?)\r\n\r\n}s) {
        my ($status, $head) = ($1, $2);
        $pos += $+[0];
        my ($len) = $head =~ /^content-length:\s*(\d+)/mi;
        my $body = substr($all, $pos, $len // 0);
        $pos += $len // 0;
        my $j = eval { json_decode($body) };
        push @got, [ $status, $j && $j->{error} ? $j->{error}{code} : undef,
                     $j && $j->{error} ? $j->{error}{message} : undef ];
    }
    return @got;
}

my $smuggled = "GET /dummy/smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
for my $case (
    [ 'whitespace before the colon of Transfer-Encoding', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding : chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" ],
    [ 'whitespace before the colon of Content-Length', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello" ],
    [ 'chunk data not followed by CRLF', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n" ],
    [ 'a space inside a header name', 400,
      "GET /dummy HTTP/1.1\r\nHost: x\r\nX Forwarded: a\r\n\r\n" ],
    [ 'Transfer-Encoding: identity, then chunked', 501,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" ],
    [ 'Transfer-Encoding: gzip, chunked', 501,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" ],
    [ 'both Content-Length and Transfer-Encoding', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" ],
    [ 'two different Content-Length', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" ],
    [ 'Transfer-Encoding in HTTP/1.0', 400,
      "POST /dummy HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n" ],
    [ 'HTTP/1.9', 505, "GET /dummy HTTP/1.9\r\nHost: x\r\n\r\n" ],
    [ 'HTTP/1.1 with no Host', 400, "GET /dummy HTTP/1.1\r\n\r\n" ],
    [ 'HTTP/1.1 with two Host headers', 400, "GET /dummy HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" ],
    [ 'an absolute-form target with no path', 400, "GET http://host HTTP/1.1\r\nHost: host\r\n\r\n" ],
    [ 'a bare LF inside a header value', 400, "GET /dummy HTTP/1.1\r\nHost: x\r\nX-A: a\nb\r\n\r\n" ],
    [ 'a head line ended by a bare CR', 400, "GET /dummy HTTP/1.1\r\nHost: x\r\n\rX-A: b\r\n\r\n" ],
    [ 'a head line ended by a bare LF', 400, "GET /dummy HTTP/1.1\nHost: x\r\n\r\n" ],
    [ 'the last chunk followed by a bare LF', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\n\n" ],
    [ 'a trailer line ended by a bare LF', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n0\r\nX-T: 1\n\r\n" ],
    [ 'a tab in the request target', 400, "GET /dummy\tx HTTP/1.1\r\nHost: x\r\n\r\n" ],
    [ 'chunk data followed by a bare LF', 400,
      "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\n0\r\n\r\n" ],
) {
    my ($name, $want, $raw) = @$case;
    my @got = exchange($raw . $smuggled);
    is(scalar @got, 1, "$name: one answer, the request behind it is not served");
    is($got[0] && $got[0][0], $want, "  ... and it is $want");
}

# A chunk size that overflows is called what it is.
{
    my @got = exchange("POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "fffffffffffffffffff\r\nx\r\n0\r\n\r\n");
    is($got[0] && $got[0][0], 400, 'chunk size overflow: 400');
    like($got[0] && $got[0][2], qr/chunk/i, '  ... and the message speaks of the chunk size');
    unlike($got[0] && $got[0][2], qr/content-length/i, '  ... not of Content-Length');
}

# What is well framed still works: keep-alive goes on after each of these.
{
    my @got = exchange("POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        . "5\r\nhello\r\n0\r\n\r\n"
        . "POST /dummy HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n0\r\n\r\n"
        . "POST /dummy HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"
        . "GET /dummy HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
        . "GET http://x/dummy HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    # dummy takes GET and HEAD only: a well-framed POST is a 405 on a connection that goes on
    is_deeply([ map { $_->[0] } @got ], [ 405, 405, 405, 200, 200 ],
        'chunked, Content-Length, HTTP/1.0 without Host and an absolute-form target all answered in turn');
}

$c->stop;
done_testing;
