# MongoDB down: readmongo answers 503 within the server-selection timeout,
# not later; MongoDB back: 200 again from the same workers, nothing
# restarted. A worker killed with -9 is replaced, and the replacement
# serves readmongo.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode);
use MongoTest;

my $SELECTION_MS = 1000;     # libmongoc's default is 30 s

my $m = MongoTest->start(seed => { app => { users => [ map { { _id => $_ } } 1 .. 5 ] } });
my %route = (service => 'readmongo', database => 'app', collections => ['users'],
    uri => $m->uri(serverSelectionTimeoutMS => $SELECTION_MS, connectTimeoutMS => 1000,
        socketTimeoutMS => 5000));
my $c = Clusterd->new(config => { workers => 2, routes => [
    { prefix => '/dummy', service => 'dummy' },
    { %route, prefix => '/mongo' },
    { %route, prefix => '/one', threads => 1 },
] })->start;
my @workers = $c->workers;
is(scalar @workers, 2, 'two workers');

# $n answers in a row with status $want (each worker gets its share).
sub all_answer {
    my ($want, $n) = @_;
    my $in_a_row = 0;
    return poll_until($Clusterd::DEADLINE * 2, sub {
        my ($st) = $c->get('/mongo/users');
        $in_a_row = $st == $want ? $in_a_row + 1 : 0;
        return $in_a_row >= $n;
    });
}
ok(all_answer(200, 10), 'MongoDB up: 200');

# ---- down ----
$m->fault(refuse => 1);
my $slowest = 0;
for my $path ('/mongo/users', '/mongo/users/1', '/mongo/users/_count', '/mongo/users', '/mongo/users') {
    my $t0 = time;
    my ($st, undef, $body) = $c->get($path);
    my $took = time - $t0;
    $slowest = $took if $took > $slowest;
    my $j = json_decode($body);
    is($st, 503, "MongoDB down: $path is 503");
    is($j && $j->{error}{code}, 'mongo_unavailable', '... code mongo_unavailable');
    like($j && $j->{error}{message}, qr/^MongoDB is unreachable: \S/,
        '... the message says why');
}
# Many at once, more than the threads: a query that waited in the queue
# while another found MongoDB gone fails then, not a selection later.
my @socks = map {
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die "connect: $!";
    print $s "GET /one/users HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    $s;
} 1 .. 12;
my $t0 = time;
my (%status, $all_slowest);
for my $s (@socks) {
    my $r = Clusterd::read_response($s);
    $status{ $r ? $r->[0] : 0 }++;
    # Read in turn: an answer counts as late as the one before it, never earlier.
    $all_slowest = time - $t0;
}
is_deeply(\%status, { 503 => 12 }, '12 queries at once on one thread each: all 503');
$slowest = $all_slowest if $all_slowest > $slowest;
note sprintf 'slowest 503: %.3f s (serverSelectionTimeoutMS %d ms)', $slowest, $SELECTION_MS;
# Generous for a loaded box, and far below the 30 s of the default.
ok($slowest < 5, sprintf('each 503 came within the selection timeout (slowest %.3f s)', $slowest));

# ---- back ----
$m->fault(refuse => 0);
ok(all_answer(200, 10), 'MongoDB back: 200 again');
is_deeply([$c->workers], \@workers, 'from the same workers: nothing was restarted');
unlike($c->log_text, qr/died unexpectedly|exited/, 'no worker exited');

# ---- a worker killed with -9 ----
# Kill both, one after the other: every worker is then a replacement, so
# the answers below can only come from replacements.
for my $victim (@workers) {
    my $from = $c->log_size;
    my ($slot) = $c->log_text =~ /started worker $victim: slot (\d+)/;
    kill 'KILL', $victim;
    my $new = $c->wait_log(qr/started worker (\d+): slot $slot,/, undef, $from);
    ok($new && $new != $victim, "worker $victim killed: $new replaces it in slot $slot");
    ok($c->wait_log(qr/worker $new ready: slot $slot/, undef, $from), '... and is ready');
}
my @now = $c->workers;
is(scalar(grep { my $w = $_; grep { $_ == $w } @workers } @now), 0, 'both workers are replacements');
ok(all_answer(200, 10), 'the replacements serve readmongo');
my ($st, undef, $body) = $c->get('/mongo/users/_count');
is_deeply([$st, json_decode($body)], [200, { count => 5 }], 'with the right answers');

# QUIT: a graceful stop, so the worker's cleanup runs under the sanitizers.
is($c->stop('QUIT') >> 8, 0, 'master exits 0 after a graceful stop');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
