# The bus between workers when one of them does not read: SIGSTOP one
# worker, publish 10 MB through the other; the master keeps answering
# (-s status), the running worker's clients get everything at once, and
# once the stopped worker runs again its clients get everything too, in
# order: the master queued it for them and never waited.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode);
use SioDrive;

my $true = JSON::PP::true;
my $c = Clusterd->new(config => { heartbeat_interval_ms => 100, worker_timeout_ms => 0, routes => [
    # a resumed worker sends its clients 10 MB at once: their queues must hold it
    { prefix => '/socket.io', service => 'socketio', max_payload_bytes => 200000,
      send_queue_bytes => 64 << 20 } ] })->start;
my $url = 'http://127.0.0.1:' . $c->port;
my $d = SioDrive->new;
my $e = $d->call(cmd => 'many', prefix => 'c', n => 20, url => $url, timeout_ms => 15000,
    onconnect => [ { event => 'join', args => ['room'] } ], deadline => 20);
is($e && $e->{connected}, 20, '20 clients in the room');
my @w = $c->workers;
my $by = $c->worker_conns;
ok(@w == 2 && @{ $by->{ $w[0] } || [] } && @{ $by->{ $w[1] } || [] }, 'on both workers');

# Stop one worker. A publisher that lands on it would hang: keep the one that connects.
my $stopped = $w[1];
kill 'STOP', $stopped;
my $pub;
for my $i (1 .. 20) {
    $e = $d->call(cmd => 'connect', id => "p$i", url => $url, timeout_ms => 1000,
        opts => { reconnection => JSON::PP::false });
    if ($e && $e->{ev} eq 'connect') { $pub = "p$i"; last }
    $d->cmd(cmd => 'close', id => "p$i", forget => $true);
}
ok($pub, 'a publisher on the running worker');

my $pad = 'x' x 50000;
my $t0 = time;
for my $n (0 .. 199) {
    $d->cmd(cmd => 'emit', id => $pub, event => 'publish', nowait => $true,
        args => [ { room => 'room', event => 'm', data => { n => $n, pad => $pad } } ]);
}
$e = $d->call(cmd => 'emit', id => $pub, event => 'publish', ack => $true, timeout_ms => 30000,
    args => [ { room => 'room', event => 'done', data => { n => 0 } } ], deadline => 40);
is_deeply($e && $e->{args}, [ { ok => $true } ], '200 publishes of 50 kB handed on (10 MB, far over the socket buffers)');
my $pidf = $c->dir . '/clusterd.pid';
my $s0 = time;
my $st = `$ENV{CLUSTERD} -c @{[$c->conf]} -p $pidf -s status --json 2>&1`;
my $took = time - $s0;
ok(json_decode($st), sprintf('the master answers -s status meanwhile (%.2f s)', $took));
ok($took < 5, '... promptly');

# The running worker's clients get everything; the stopped one's nothing yet.
my $here = @{ $by->{ $w[0] } };
my $done = 0;
poll_until(30, sub {
    $e = $d->call(cmd => 'counts', prefix => 'c');
    return ($done = $e->{events}{done}{clients_with} // 0) >= $here;
});
is($done, $here, "the running worker's $here clients got it all, the others not yet");

kill 'CONT', $stopped;
$e = $d->call(cmd => 'waitfor', prefix => 'c', event => 'done', timeout_ms => 30000, deadline => 40);
ok($e && $e->{ok}, 'once the stopped worker runs again, its clients get it all too');
$e = $d->call(cmd => 'counts', prefix => 'c', expect => { m => 200 });
is($e && $e->{events}{m}{in_order}, 20, 'every client got the 200 messages, in order');
is_deeply([ $c->workers ], \@w, 'no worker was replaced');

$d->close;
$c->stop;
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
