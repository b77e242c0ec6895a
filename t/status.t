# clusterd -s status [--json]: one line per worker (slot, pid, generation,
# state, uptime, requests, connections, RSS) and the master's, from the
# master's status socket; for the master's user and root only.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);

my $c = Clusterd->new(config => { heartbeat_interval_ms => 100 })->start;
my $pidf = $c->dir . '/clusterd.pid';
sub status { my $o = `$ENV{CLUSTERD} -c @{[$c->conf]} -p $pidf -s status @_ 2>&1`; return ($? >> 8, $o) }
sub doc { my ($rc, $o) = status('--json'); return $rc == 0 ? json_decode($o) : undef }

my ($rc, $text) = status();
is($rc, 0, '-s status exits 0');
like($text, qr/^SLOT\s+PID\s+GEN\s+STATE\s+UPTIME\s+REQUESTS\s+CONNS\s+RSS$/m, 'a header');
for my $w ($c->workers) {
    like($text, qr/^\d+\s+$w\s+1\s+ready\s+\d+s\s+\d+\s+\d+\s+[\d.]+ MB$/m, "a line for worker $w");
}
like($text, qr/^master @{[$c->pid]}, generation 1, 2 worker\(s\), running, up \d+s; last reload: none$/m,
    "the master's line");

my $d = doc();
ok($d, '--json prints one JSON object');
is_deeply([sort { $a <=> $b } map { $_->{pid} } @{ $d->{workers} }], [$c->workers], 'every worker, by pid');
is_deeply([map { $_->{slot} } @{ $d->{workers} }], [0, 1], 'in slot order');
ok(!grep({ $_->{rss_bytes} < 100_000 } @{ $d->{workers} }), 'with their RSS');
is($d->{master}{pid}, $c->pid, "the master's pid");

# Requests and open connections, as the workers' heartbeats report them.
$c->get('/dummy') for 1 .. 7;
ok(poll_until(10, sub { my $d = doc(); my $n = 0; $n += $_->{requests} for @{ $d->{workers} }; $n == 7 }),
    'requests served: 7 in all');
my @conns = map { IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die } 1 .. 3;
print $_ "GET /dummy HTTP/1.1\r\nHost: t\r\n\r\n" for @conns;
Clusterd::read_response($_) for @conns;
ok(poll_until(10, sub { my $d = doc(); my $n = 0; $n += $_->{connections} for @{ $d->{workers} }; $n == 3 }),
    'open connections: 3 in all');
close $_ for @conns;

# A failed reload, then a good one with a worker still retiring.
my $from = $c->log_size;
$c->write_config('{ "listen": [ ');
$c->signal('HUP');
$c->wait_log(qr/reload failed/, 10, $from);
$d = doc();
is($d->{master}{last_reload}{result}, 'failed', 'a failed reload is reported');
like($d->{master}{last_reload}{error}, qr/invalid JSON/, '... with its error');
like($d->{master}{last_reload}{at}, qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/, '... and when');
my $held = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
print $held "GET /dummy/delay?ms=3000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
ok(poll_until(10, sub { my $d = doc(); grep { $_->{in_flight} } @{ $d->{workers} } }), 'a request is held');
$c->write_config({ heartbeat_interval_ms => 100 });
$from = $c->log_size;
$c->signal('HUP');
$c->wait_log(qr/ready: generation 2/, 15, $from);
$d = doc();
is($d->{master}{last_reload}{result}, 'ok', 'a good reload is reported');
is($d->{master}{generation}, 2, 'the new generation');
ok((grep { $_->{state} eq 'retiring' && $_->{generation} == 1 } @{ $d->{workers} }),
    'the worker holding a request is shown retiring');
($rc, $text) = status();
like($text, qr/^\d+\s+\d+\s+1\s+retiring\s/m, '... in the table too');
like($text, qr/last reload: ok at \S+Z$/m, '... with the last reload');
Clusterd::read_response($held);

# Misuse, and other users.
($rc, $text) = status();
my ($rc2, $o2) = (`$ENV{CLUSTERD} -c @{[$c->conf]} -p $pidf --json 2>&1`, $? >> 8);
is($o2, 1, '--json without -s status is an error');
like($rc2, qr/--json goes with -s status only/, '... saying so');
SKIP: {
    skip 'needs root to run as another user', 2 if $> != 0;
    system("setpriv --reuid=65534 --regid=65534 --clear-groups test -x $ENV{CLUSTERD}") == 0
        or skip 'nobody cannot run the binary from here', 2;
    # The pid file readable by all: the refusal must come from the master itself.
    chmod 0755, $c->dir;
    chmod 0644, $c->conf;
    my $out = `setpriv --reuid=65534 --regid=65534 --clear-groups $ENV{CLUSTERD} -c @{[$c->conf]} -p $pidf -s status 2>&1`;
    is($? >> 8, 1, 'another user is refused');
    like($out, qr/the status of this master is for uid 0 and root only, not uid 65534/, '... with a clear message');
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
