# Gets by ObjectId that wait for a thread are answered by one find
# ({_id: {$in: [...]}}): each answer is byte for byte the one its own find
# gives, missing ids are 404, duplicates and other collections are right,
# string ids and get_batch 1 go alone, get_batch caps a batch, a batch the
# server cut short (over 16 MB) answers the rest alone, and an error of the
# shared find is every get's error.
#
# The queue is lined up without timing: the test server holds the finds
# (hold=1) while the only thread waits in the first, until the route's
# queue depth shows every get waiting, then lets them go.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Clusterd qw(poll_until json_decode);
use MongoTest qw(oid);

my @ids = map { sprintf '65b000000000000000%06x', $_ } 1 .. 40;
my @missing = map { sprintf '65bfff00000000000000%04x', $_ } 1 .. 4;
my @other = map { sprintf '65c000000000000000%06x', $_ } 1 .. 3;
my @big = map { sprintf '65d000000000000000%06x', $_ } 1 .. 3;
my $mb6 = 'x' x (6 * 1024 * 1024);
my $m = MongoTest->start(seed => { app => {
    items => [ (map { { _id => oid($ids[$_]), n => $_, name => "item $_" } } 0 .. $#ids),
        { _id => 's1', n => -1 } ],
    other => [ map { { _id => oid($other[$_]), o => $_ } } 0 .. $#other ],
    big => [ map { { _id => oid($_), blob => $mb6 } } @big ],
} });
my %common = (service => 'readmongo', database => 'app', collections => ['*'],
    uri => $m->uri(serverSelectionTimeoutMS => 5000), threads => 1, max_time_ms => 60000);
my $c = Clusterd->new(config => { workers => 1, routes => [
    { prefix => '/metrics', service => 'metrics' },
    { %common, prefix => '/mongo' },
    { %common, prefix => '/one', get_batch => 1 },
    { %common, prefix => '/eight', get_batch => 8 },
    { %common, prefix => '/four', threads => 4 },
] })->start;

# libmongoc would keep its counters in /dev/shm/mongoc-PID, left behind by
# a process killed with -9 and refused, with a warning, to the next with
# that pid: clusterd tells it not to.
ok(!-e '/dev/shm/mongoc-' . $c->pid, 'no libmongoc counters file in /dev/shm for the master');
ok(!grep({ -e "/dev/shm/mongoc-$_" } $c->workers), '... nor for a worker');

sub send_get {
    my ($path) = @_;
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die "connect: $!";
    print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    return $s;
}
sub finish {
    my ($s) = @_;
    my $r = Clusterd::read_response($s);
    close $s;
    return $r ? [$r->[0], $r->[2]] : [0, ''];
}
sub metric {
    my ($name, $route) = @_;
    my (undef, undef, $text) = $c->get('/metrics');
    return $text =~ /^clusterd_\Q$name\E\{route="\Q$route\E"\} (\d+)$/m ? $1 : -1;
}

# With the finds held: the first path's get takes a thread and its find is
# held, then the other paths are sent and wait (the queue depth shows them
# all). Their sockets, the first's first.
sub line_up {
    my ($route, $lead, @paths) = @_;
    $m->control('/stats?reset=1');
    $m->fault(hold => 1, cmds => 'find');
    my $first = send_get("$route$lead");
    ok(poll_until($Clusterd::DEADLINE, sub { $m->count_of('find') >= 1 }),
        "$route: the first get holds the thread");
    my @s = map { send_get("$route$_") } @paths;
    ok(poll_until($Clusterd::DEADLINE, sub { metric('readmongo_queue_depth', $route) == @paths }),
        "$route: the other " . scalar(@paths) . ' wait');
    return ($first, @s);
}

# The paths' answers once released, with the finds and killCursors they cost.
sub lined_up {
    my @s = line_up(@_);
    $m->fault(hold => 0);
    my @got = map { finish($_) } @s;
    my $st = $m->stats->{commands};
    return (\@got, $st->{find} // 0, $st->{killCursors} // 0);
}

# What each path answers alone, one at a time (a batch of one: its own find).
sub alone {
    my ($route, @paths) = @_;
    return [ map { my ($st, undef, $b) = $c->get("$route$_"); [$st, $b] } @paths ];
}

# ---- one find for the waiting gets of a collection ----
my @paths = ((map { "/items/$_" } @ids[0 .. 29]), "/items/$ids[3]", "/items/$ids[3]",
    "/items/$ids[7]", (map { "/items/$_" } @missing), '/items/s1', '/items/nope',
    (map { "/other/$_" } @other));
my ($got, $finds) = lined_up('/mongo', "/items/$ids[39]", @paths);
my $want = alone('/mongo', "/items/$ids[39]", @paths);
is_deeply($got, $want, 'every answer is the one its own find gives, byte for byte');
is(scalar(grep { $_->[0] == 200 } @$got), 1 + 33 + 1 + 3, '... 200 for every id that exists');
is(scalar(grep { $_->[0] == 404 } @$got), 5, '... 404 for the missing ones');
is(json_decode($got->[4][1])->{_id}{'$oid'}, $ids[3], '... each its own document');
is(json_decode($got->[31][1])->{_id}{'$oid'}, $ids[3], '... a duplicate too');
is($finds, 5, 'finds: the first, one per collection, one per string id');
# The master's figures follow the workers' heartbeats.
ok(poll_until($Clusterd::DEADLINE,
    sub { metric('readmongo_batched_gets_total', '/mongo') == 33 + 4 + 3 }),
    'readmongo_batched_gets_total counts the gets that shared a find');

# ---- four threads: still one find of gets per collection under way ----
# The other threads leave the gets waiting for the find under way, and are
# free for other queries meanwhile.
@paths = map { "/items/$_" } @ids[0 .. 19];
my ($held, @four) = line_up('/four', "/items/$ids[39]", @paths);
my ($cst, undef, $cbody) = $c->get('/four/items/_count');
is_deeply([$cst, json_decode($cbody)], [200, { count => 41 }], '... while a count has a thread at once');
is($m->count_of('find'), 1, '... and no other find started');
$m->fault(hold => 0);
$got = [map { finish($_) } $held, @four];
is_deeply($got, alone('/four', "/items/$ids[39]", @paths), '... the same answers');
# Two: the first and one for the 20. A thread that the release caught
# between taking a get from the queue and leaving it waiting runs it in a
# find of its own, so three at most.
my $four_finds = $m->count_of('find') - 21;
ok($four_finds == 2 || $four_finds == 3, "... from the first find and one or two more ($four_finds)");

# ---- other queries are not kept waiting by a stream of gets ----
# One thread: a get's find is held, three gets wait for it, a count waits
# in the queue. Then every find takes 2 s. The count runs before the
# three gets' find, not after it.
my ($lead, @gets) = line_up('/mongo', "/items/$ids[39]", (map { "/items/$_" } @ids[0 .. 2]),
    '/items/_count');
my $count = pop @gets;
$m->fault(delay_ms => 2000, maxtime => 0);
$m->fault(hold => 0);
my $cr = finish($count);
is_deeply([$cr->[0], json_decode($cr->[1])], [200, { count => 41 }], '... the count answers');
is(scalar(grep { IO::Select->new($_)->can_read(0) } @gets), 0, '... before the three gets');
is_deeply([map { finish($_)->[0] } $lead, @gets], [200, 200, 200, 200], '... which answer then');
$m->clear;

# ---- get_batch 1: no batches ----
@paths = map { "/items/$_" } @ids[0 .. 9];
($got, $finds) = lined_up('/one', "/items/$ids[39]", @paths);
is_deeply($got, alone('/one', "/items/$ids[39]", @paths), 'get_batch 1: the same answers');
is($finds, 11, '... a find for each');


# ---- get_batch 8: batches of 8 at most ----
@paths = map { "/items/$_" } @ids[0 .. 19];
($got, $finds) = lined_up('/eight', "/items/$ids[39]", @paths);
is_deeply($got, alone('/eight', "/items/$ids[39]", @paths), 'get_batch 8: the same answers');
is($finds, 1 + 3, '... 20 waiting gets in 3 finds (8, 8, 4)');
ok(poll_until($Clusterd::DEADLINE, sub { metric('readmongo_batched_gets_total', '/eight') == 20 }),
    '... all 20 counted as batched');
is(metric('readmongo_batched_gets_total', '/one'), 0, 'and with get_batch 1, none (the same heartbeat)');

# ---- a batch cut short by the 16 MB of a reply ----
@paths = map { "/big/$_" } @big;
my $kills;
($got, $finds, $kills) = lined_up('/mongo', "/items/$ids[39]", @paths);
is_deeply([map { $_->[0] } @$got], [200, 200, 200, 200], 'three documents of 6 MB: all 200');
is_deeply([map { json_decode($_->[1])->{_id}{'$oid'} } @$got[1 .. 3]], \@big,
    '... each with its own');
# (ok, not is: a failure would print 6 MB)
ok($got->[3][1] eq qq({ "_id" : { "\$oid" : "$big[2]" }, "blob" : "$mb6" }), '... whole');
is($finds, 1 + 1 + 1, '... the batch answered two, the third had a find of its own');
is($kills, 1, '... and the cursor the batch left open was killed');

# ---- an error of the shared find is every get's ----
@paths = map { "/items/$_" } @ids[0 .. 4];
my @s = line_up('/mongo', "/items/$ids[39]", @paths);
$m->fault(error => 2, errmsg => 'bad value');
$m->fault(hold => 0);
$got = [map { finish($_) } @s];
is($m->count_of('find'), 2, '... two finds');
my ($st, undef, $alone) = $c->get("/mongo/items/$ids[0]");
is($st, 502, 'a get alone with that error: 502');
is_deeply([map { $_->[0] } @$got], [(502) x 6], 'every get of the batch: 502');
is_deeply([map { $_->[1] } @$got[1 .. 5]], [($alone) x 5], '... with the error a get alone gets');
$m->clear;

# QUIT: a graceful stop, so the worker's cleanup runs under the sanitizers.
is($c->stop('QUIT') >> 8, 0, 'master exits 0 after a graceful stop');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
