# The health service for load balancers, and drain_delay_ms: on SIGQUIT the
# health check fails first while every route still serves (keep-alive
# connections are closed after their next reply), and only then does the
# cluster stop accepting.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode);

my $routes = [ { prefix => '/dummy', service => 'dummy' }, { prefix => '/healthz', service => 'health' } ];

sub keepalive {
    my ($port) = @_;
    return IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10) or die "connect: $!";
}
sub ask {
    my ($s, $path) = @_;
    print $s "GET $path HTTP/1.1\r\nHost: t\r\n\r\n";
    return Clusterd::read_response($s);
}

{
    my $c = Clusterd->new(config => { routes => $routes, drain_delay_ms => 1500 })->start;
    my ($st, $h, $body) = $c->get('/healthz');
    is($st, 200, 'healthy: 200');
    is_deeply(json_decode($body), { status => 'ok', generation => 1 }, '{"status":"ok","generation":1}');
    is($h->{'cache-control'}, 'no-store', 'not cacheable');
    ($st) = $c->get('/healthz/x');
    is($st, 404, 'nothing below the prefix');
    ($st) = $c->get('/healthz', method => 'POST');
    is($st, 405, 'GET and HEAD only');

    my $ka = keepalive($c->port);
    my $r = ask($ka, '/dummy');
    ok($r && $r->[0] == 200 && ($r->[1]{connection} // '') !~ /close/, 'a keep-alive connection');

    my @workers = $c->workers;
    my $from = $c->log_size;
    my $t0 = time;
    $c->signal('QUIT');
    ok($c->wait_log(qr/graceful shutdown in 1500 ms \(drain_delay_ms\)/, 5, $from), 'SIGQUIT starts the drain delay');
    # Both workers are told: every new connection's health check fails.
    my %seen;
    ok(poll_until(5, sub {
        my ($st, undef, $b) = $c->get('/healthz');
        return $st == 503 && (json_decode($b) // {})->{status} eq 'draining';
    }), 'the health check fails at once: 503 {"status":"draining"}');
    my $fails = 0;
    for (1 .. 10) { my ($st) = $c->get('/healthz'); $fails++ if $st == 503 }
    is($fails, 10, '... on every worker');
    ($st, $h, $body) = $c->get('/dummy');
    is($st, 200, 'everything else is still served');
    $r = ask($ka, '/dummy');
    ok($r && $r->[0] == 200, 'the keep-alive connection is still served');
    like($r->[1]{connection} // '', qr/close/, '... with Connection: close');
    is_deeply([$c->workers], \@workers, 'the same workers');
    my $status = $c->wait_exit(20);
    my $took = time - $t0;
    ok(defined $status && $status >> 8 == 0, 'then the master stops gracefully, exit 0');
    ok($took >= 1.5, sprintf('not before drain_delay_ms (%.2f s)', $took));
    like($c->log_text, qr/graceful shutdown: the drain delay is over/, 'the stop follows the delay');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

{
    # Without a delay: a graceful stop fails the check on the connections still open.
    my $c = Clusterd->new(config => { routes => $routes, workers => 1 })->start;
    my $ka = keepalive($c->port);
    my $r = ask($ka, '/healthz');
    is($r && $r->[0], 200, 'healthy');
    my $held = keepalive($c->port);
    print $held "GET /dummy/delay?ms=2000 HTTP/1.1\r\nHost: t\r\n\r\n";
    ok(poll_until(5, sub { my $j = $c->get_json('/dummy'); $j }), 'a request is held');
    $c->signal('QUIT');
    ok($c->wait_log(qr/graceful shutdown: 1 request\(s\) in flight/), 'the worker drains');
    $r = ask($ka, '/healthz');
    is($r && $r->[0], 503, 'an open connection asking during the drain gets 503');
    like($r && $r->[1]{connection} // '', qr/close/, '... and Connection: close');
    $r = Clusterd::read_response($held);
    is($r && $r->[0], 200, 'the held request completes');
    is($c->wait_exit(20) >> 8, 0, 'master exits 0');
}

{
    # SIGTERM during the delay stops at once.
    my $c = Clusterd->new(config => { routes => $routes, drain_delay_ms => 60000 })->start;
    my $from = $c->log_size;
    $c->signal('QUIT');
    ok($c->wait_log(qr/drain_delay_ms/, 5, $from), 'in the drain delay');
    my $t0 = time;
    $c->signal('TERM');
    my $status = $c->wait_exit(10);
    ok(defined $status && time - $t0 < 10, 'SIGTERM cuts the delay short');
}

# A worker reads health through the config checker like any other service.
my $bad = Clusterd->new(config => { routes => [ { prefix => '/h', service => 'health', extra => 1 } ] });
like(`$ENV{CLUSTERD} -t -c @{[$bad->conf]} 2>&1`, qr/routes\[0\]\.extra: unknown key/, 'health takes no options');
done_testing;
