# While MongoDB is slow, the rest of the worker stays fast: with more slow
# readmongo queries in flight than the worker has threads, /dummy requests
# sent after them are answered before any of them. And when the queue in
# front of the threads is full, a request gets 503 at once.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);
use MongoTest;

my $DELAY_MS = 6000;     # far longer than a /dummy round trip, even under ASan

my $m = MongoTest->start(seed => { app => { users => [ map { { _id => $_, n => $_ } } 1 .. 20 ] } });
my %common = (service => 'readmongo', database => 'app', collections => ['users'],
    # A slow server: the driver must not give up on its sockets first.
    uri => $m->uri(serverSelectionTimeoutMS => 5000, socketTimeoutMS => 60000),
    max_time_ms => 60000);
# A worker whose threads wait on MongoDB is not hung: only its loop counts.
my $c = Clusterd->new(config => { workers => 1, heartbeat_interval_ms => 100,
    worker_timeout_ms => 1000, routes => [
    { prefix => '/dummy', service => 'dummy' },
    { %common, prefix => '/mongo', threads => 2, queue_limit => 100 },
    { %common, prefix => '/one', threads => 1, queue_limit => 1 },
] })->start;
my ($worker) = $c->workers;

sub send_get {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    return $s;
}
sub answered_yet { IO::Select->new($_[0])->can_read(0) ? 1 : 0 }
sub finish {
    my ($s) = @_;
    my $r = Clusterd::read_response($s);
    close $s;
    return $r ? @$r : (0, {}, '');
}

# ---- slow queries do not block the loop ----
$m->fault(delay_ms => $DELAY_MS, maxtime => 0);
$m->control('/stats?reset=1');
my @slow = map { send_get("/mongo/users?sort=%7B%22n%22%3A1%7D&limit=$_") } 1 .. 3;
# Both threads are inside a find, and a third query waits in the queue.
ok(poll_until($Clusterd::DEADLINE, sub { $m->count_of('find') >= 2 }),
    'two slow finds are running on the two threads');
my $dummies = 0;
for (1 .. 10) {
    my $j = $c->get_json('/dummy');
    $dummies++ if $j && $j->{pid} == $worker;
}
is($dummies, 10, '/dummy answers, on the same worker, while they run');
is(scalar(grep { answered_yet($_) } @slow), 0, '... before any of the slow queries');
my @got = map { [finish($_)] } @slow;
is_deeply([map { $_->[0] } @got], [200, 200, 200], 'then the slow queries answer 200');
is_deeply([map { scalar @{ json_decode($_->[2])->{documents} } } @got], [1, 2, 3],
    'with their documents');

# ---- a full queue is 503 at once ----
$m->control('/stats?reset=1');
my $first = send_get('/one/users');
ok(poll_until($Clusterd::DEADLINE, sub { $m->count_of('find') >= 1 }),
    'one query runs on the only thread of /one');
# Its queue holds one more: of these three, one waits and two are refused.
my @more = map { send_get('/one/users') } 1 .. 3;
my @refused;
ok(poll_until($Clusterd::DEADLINE, sub { (grep { answered_yet($_) } @more) >= 2 }),
    'two answers come back at once');
ok(!answered_yet($first), '... while the running query is still slow');
for my $s (@more) {
    next unless answered_yet($s);
    my ($st, undef, $body) = finish($s);
    push @refused, [$st, json_decode($body)];
    $s = undef;
}
is(scalar @refused, 2, 'two requests refused');
for my $r (@refused) {
    is($r->[0], 503, 'refused with 503');
    is($r->[1]{error}{code}, 'overloaded', 'code overloaded');
    like($r->[1]{error}{message}, qr/^too many queries are waiting for MongoDB \(queue_limit 1\)/,
        'the message names the limit');
}
my ($queued) = grep { defined } @more;
is((finish($first))[0], 200, 'the running query answers 200');
is((finish($queued))[0], 200, 'the queued one too');
$m->clear;
is_deeply([$c->workers], [$worker], 'the same worker throughout');

# ---- a graceful stop waits for the queries in flight ----
# Three on two threads (one still queued), and one whose client hangs up:
# the worker stops its threads and frees it all (the sanitizer build checks).
$m->fault(delay_ms => 2000, maxtime => 0);
$m->control('/stats?reset=1');
@slow = map { send_get('/mongo/users?limit=1') } 1 .. 3;
ok(poll_until($Clusterd::DEADLINE, sub { $m->count_of('find') >= 2 }), 'slow queries running');
my $quitter = send_get('/mongo/users?limit=1');
close $quitter;
$c->signal('QUIT');
is_deeply([map { (finish($_))[0] } @slow], [200, 200, 200], 'SIGQUIT: the queries in flight answer 200');
my $status = $c->wait_exit($Clusterd::DEADLINE * 2);
ok(defined $status && $status >> 8 == 0, 'then the master exits 0');
like($c->log_text, qr/worker $worker \(slot 0, generation 1\) exited: exit code 0/,
    'the worker exited cleanly');
unlike($c->log_text, qr/is hung/, 'six-second queries on its threads never made the worker look hung');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
