# One worker holds 2000 concurrent delayed requests.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd;

my $N = 2000;
my $c = Clusterd->new(config => { workers => 1 })->start;
my @socks;
for (1 .. $N) {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port, Timeout => 30)
        or last;
    print $s "GET /dummy/delay?ms=1000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    push @socks, $s;
}
is(scalar @socks, $N, "$N connections open");
my ($ok, %pids) = (0);
for my $s (@socks) {
    my $r = Clusterd::read_response($s);
    next unless $r && $r->[0] == 200;
    $ok++;
    $pids{$1} = 1 if $r->[2] =~ /"pid":(\d+)/;
}
is($ok, $N, "all $N delayed requests answered 200");
is(scalar keys %pids, 1, 'all by one worker');
close $_ for @socks;
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
