# A readmongo result of 100,000 documents (about 50 MB of JSON) streams
# out while the worker's resident memory grows by less than 32 MB, and a
# client that stops reading stops the cursor too (back-pressure).
use strict;
use warnings;
use Test::More;
use File::Temp qw(tempdir);
use IO::Socket::INET;
use Socket qw(SOL_SOCKET SO_RCVBUF pack_sockaddr_in inet_aton);
use IO::Select;
use Time::HiRes qw(time sleep);
use Clusterd qw(poll_until json_decode);
use MongoTest qw(rss_kb);

my $N = 100_000;
my $PAD = 'x' x 400;

# AddressSanitizer keeps freed memory in quarantine (256 MB by default):
# under a sanitizer build that would count as growth of the worker. A
# small quarantine keeps the measure about our code, not the sanitizer's.
$ENV{ASAN_OPTIONS} = join ':', grep { length } $ENV{ASAN_OPTIONS} // '', 'quarantine_size_mb=4';

my $dir = tempdir('stream-t-XXXXXX', TMPDIR => 1, CLEANUP => 1);
my $seed = "$dir/seed.json";
{
    open my $fh, '>', $seed or die;
    print $fh '{"app":{"big":[';
    for my $i (0 .. $N - 1) {
        printf $fh '%s{"_id":{"$oid":"%024x"},"seq":{"$numberInt":"%d"},'
            . '"at":{"$date":{"$numberLong":"%d"}},"pad":"%s"}',
            $i ? ',' : '', $i + 1, $i, 1600000000000 + $i, $PAD;
    }
    # 20 documents of 1 MB: more than one server batch (16 MB) holds
    print $fh '],"large":[';
    for my $i (0 .. 19) {
        printf $fh '%s{"_id":{"$numberInt":"%d"},"pad":"%s"}', $i ? ',' : '', $i, 'y' x 1_000_000;
    }
    print $fh "]}}\n";
    close $fh or die;
}
my $m = MongoTest->start(seed_file => $seed);
my $c = Clusterd->new(config => { workers => 1, routes => [
    { prefix => '/mongo', service => 'readmongo', database => 'app', collections => ['big', 'large'],
      uri => $m->uri(serverSelectionTimeoutMS => 5000), max_limit => $N * 2,
      max_time_ms => 600000, threads => 2 },
    { prefix => '/short', service => 'readmongo', database => 'app', collections => ['big', 'large'],
      uri => $m->uri(serverSelectionTimeoutMS => 5000), max_limit => $N * 2,
      max_time_ms => 600000, threads => 2, stream_timeout_ms => 1500 },
    # every client of its pool belongs to a thread
    { prefix => '/tight', service => 'readmongo', database => 'app', collections => ['big', 'large'],
      uri => $m->uri(serverSelectionTimeoutMS => 5000, maxPoolSize => 2), max_limit => $N * 2,
      max_time_ms => 600000, threads => 2 },
] })->start;
my ($worker) = $c->workers;

# Warm up: the threads, the client pool and the allocator's arenas exist
# before the baseline. (A small result: a whole one would hide growth.)
my ($st) = $c->get('/mongo/big?limit=2000');
is($st, 200, 'warm-up query');

my ($base) = rss_kb($worker);
# Resets the peak (VmHWM) to the current size; if that fails the peak
# since start counts, which only makes the test stricter.
if (open my $cr, '>', "/proc/$worker/clear_refs") { print $cr "5\n"; close $cr }

# A connection whose receive buffer is 1 MB: a fixed size turns the
# kernel's autotuning off, which may grow it up to tcp_rmem's maximum
# (32 MB on some machines), so that what the kernel holds for a client
# that reads nothing is bounded here, whatever the machine's settings.
sub small_buffered {
    my $x = IO::Socket::INET->new(Proto => 'tcp') or die "socket: $!";
    setsockopt($x, SOL_SOCKET, SO_RCVBUF, 1 << 20) or die "SO_RCVBUF: $!";
    connect($x, pack_sockaddr_in($c->port, inet_aton('127.0.0.1'))) or die "connect: $!";
    return $x;
}
# Starts a list of 15 MB and reads its first 1 MB, no more: its answer
# waits in the worker for a reader who may never come.
sub stalled_list {
    my ($path) = @_;
    my $x = small_buffered();
    print $x "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    my ($got, $xsel, $end) = ('', IO::Select->new($x), time + $Clusterd::DEADLINE);
    while (length $got < 1 << 20 && time < $end) {
        next unless $xsel->can_read(0.5);
        last unless sysread($x, $got, 1 << 16, length $got);
    }
    return ($x, $got);
}
my $s = small_buffered();
print $s "GET /mongo/big?limit=$N HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
my $sel = IO::Select->new($s);
my $raw = '';
# Reads until $want bytes are in (or EOF, or $secs pass): 1 at EOF.
sub read_some {
    my ($want, $secs) = @_;
    my $end = time + $secs;
    while (length $raw < $want && time < $end) {
        next unless $sel->can_read(0.5);
        return 1 unless sysread($s, $raw, 1 << 20, length $raw);
    }
    return 0;
}

# A slow client: read 1 MB, then nothing for two seconds.
read_some(1 << 20, $Clusterd::DEADLINE * 4);
ok(length $raw >= 1 << 20, 'the first megabyte arrives');
my $getmores = $m->count_of('getMore');
my $max_getmores = $getmores;
my $end = time + 2;
while (time < $end) {
    $max_getmores = $m->count_of('getMore');
    sleep 0.1;
}
# 100 getMores fetch it all; the kernel's socket buffers hold a few MB.
cmp_ok($max_getmores - $getmores, '<', 30,
    'while the client reads nothing, the cursor stops (' . ($max_getmores - $getmores)
    . ' getMores of ' . int($N / 1000) . ')');

# Now read it all.
ok(read_some(1 << 30, $Clusterd::DEADLINE * 8), 'the whole result arrives');
close $s;
my ($now, $peak) = rss_kb($worker);
my $growth_mb = ($peak - $base) / 1024;
note sprintf 'worker RSS: %.1f MB before, peak %.1f MB, growth %.1f MB; %.1f MB of HTTP read',
    $base / 1024, $peak / 1024, $growth_mb, length($raw) / 1048576;
cmp_ok($growth_mb, '<', 32, sprintf('RSS grew by %.1f MB (< 32 MB)', $growth_mb));

my ($head, $body) = split /\r\n\r\n/, $raw, 2;
like($head, qr{^HTTP/1\.1 200}, 'status 200');
like($head, qr/^Transfer-Encoding: chunked/mi, 'chunked');
my $json = '';
while ($body =~ /\G([0-9a-fA-F]+)\r\n/gc) {
    my $len = hex $1;
    last if $len == 0;
    $json .= substr($body, pos($body), $len);
    pos($body) = pos($body) + $len + 2;
}
ok(length($json) > 40 << 20, sprintf('%.1f MB of JSON', length($json) / 1048576));
like(substr($json, 0, 20), qr/^\{"documents":\[\{/, 'starts as a document list');
like(substr($json, -10), qr/\}\]\}$/, 'ends as a document list');
my @seq = $json =~ /"seq" : (\d+)/g;
is(scalar @seq, $N, "$N documents");
is_deeply([@seq[0, 1, -1]], [0, 1, $N - 1], 'in order');
my $in_order = 1;
$seq[$_] == $_ or $in_order = 0 for 0 .. $#seq;
ok($in_order, 'every document once, in order');
undef $json;
undef $raw;

# A client that goes away mid-stream stops its cursor: the worker kills it
# on the server and frees the rest (the sanitizer build checks the frees).
$m->control('/stats?reset=1');
$s = small_buffered();
$sel = IO::Select->new($s);
print $s "GET /mongo/big?limit=$N HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
$raw = '';
read_some(1 << 20, $Clusterd::DEADLINE * 4);
ok(length $raw >= 1 << 20, 'another stream begins');
close $s;
ok(poll_until($Clusterd::DEADLINE, sub {
    my $st = $m->stats;
    return ($st->{commands}{killCursors} // 0) >= 1 && $st->{cursors} == 0;
}), 'when its client hangs up, the cursor is killed on the server');
cmp_ok($m->count_of('getMore'), '<', 50, 'long before the end of the result');
($st) = $c->get('/mongo/big?limit=10');
is($st, 200, 'the worker serves on');

# Slow readers hold no thread: with 2 threads, 3 clients that each read a
# little now and then keep 3 cursors open, and every other query of the
# route is answered at once all the while.
{
    my @slow = map {
        my $x = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
        print $x "GET /mongo/big?limit=20000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        $x;
    } 1 .. 3;
    ok(poll_until($Clusterd::DEADLINE, sub { ($m->stats->{cursors} // 0) >= 3 }),
        'three slow readers have their cursors open');
    my ($ok, $slowest) = (0, 0);
    for my $i (1 .. 20) {
        sysread($_, my $b, 1024) for @slow;      # a trickle: 1 KB each, now and then
        my $t0 = time;
        my ($gst) = $c->get('/mongo/big/' . sprintf('%024x', $i));
        my $took = time - $t0;
        $slowest = $took if $took > $slowest;
        $ok++ if $gst == 200;
    }
    is($ok, 20, 'meanwhile every get by id is answered');
    cmp_ok($slowest, '<', 2, sprintf('  ... the slowest in %.2f s: no thread is held by a slow reader', $slowest));
    close $_ for @slow;
    ok(poll_until($Clusterd::DEADLINE, sub { ($m->stats->{cursors} // 0) == 0 }),
        'their cursors are closed when they hang up');
}

# stream_timeout_ms: a stream that a client drags out is cut, and its cursor closed.
{
    my $x = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) or die;
    print $x "GET /short/big?limit=20000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    my ($got, $eof, $t0) = (0, 0, time);
    while (time - $t0 < 15) {
        my $n = sysread($x, my $b, 4096);
        if (!$n) { $eof = 1; last }
        $got += $n;
        sleep 0.05;                              # 80 KB/s at the most: about 10 s in all
    }
    my $took = time - $t0;
    ok($eof, sprintf('a slow stream is cut after %.1f s', $took));
    cmp_ok($took, '>=', 1.4, '  ... not before stream_timeout_ms (1.5 s)');
    ok(poll_until($Clusterd::DEADLINE, sub { ($m->stats->{cursors} // 0) == 0 }), '  ... and its cursor is closed');
    like($c->log_text, qr/a result stream took longer than stream_timeout_ms \(1500 ms\): cut after \d+ bytes/,
        '  ... which the log says');
}

# A list of at most one server batch (limit <= 1000) is one find and no
# cursor: its reply waits in the worker while the client reads the JSON a
# batch at a time.
{
    $m->control('/stats?reset=1');
    my ($lst, $h, $body) = $c->get('/mongo/big?limit=1000&skip=5');
    is($lst, 200, 'a list of 1000 (one server batch): 200');
    is($h->{'transfer-encoding'}, 'chunked', '  ... streamed: its JSON is more than a batch');
    my @seq = $body =~ /"seq" : (\d+)/g;
    is(scalar @seq, 1000, '  ... 1000 documents');
    is_deeply([@seq[0, -1]], [5, 1004], '  ... from skip on, in order');
    my $st = $m->stats;
    is_deeply([map { $st->{commands}{$_} // 0 } qw(find getMore killCursors)], [1, 0, 0],
        '  ... read with one find, no getMore');
}
# A client that stops reading such a list, then hangs up: the reply waits
# in the worker, holding no cursor on the server, and is freed (the
# sanitizer build checks).
{
    $m->control('/stats?reset=1');
    my ($x, $got) = stalled_list('/mongo/large?limit=15');
    like($got, qr{^HTTP/1\.1 200}, 'a list of 15 MB begins');
    my $st = $m->stats;
    is_deeply([$st->{commands}{find} // 0, $st->{commands}{getMore} // 0, $st->{cursors}], [1, 0, 0],
        '  ... one find, and no cursor left open on the server while it waits for its reader');
    close $x;
    my ($gst) = $c->get('/mongo/big/' . sprintf('%024x', 7));
    is($gst, 200, '  ... its reader hangs up: the worker serves on');
}
# As many lists may hold an answer at once as the pool has clients that no
# thread holds, and at least 1: on /tight (maxPoolSize 2, 2 threads), 1,
# where a list with a cursor finds no client at all.
{
    my ($x, $got) = stalled_list('/tight/large?limit=15');
    like($got, qr{^HTTP/1\.1 200}, 'a route whose clients all belong to its threads: a list of 15 MB begins');
    my ($st2, undef, $b2) = $c->get('/tight/big?limit=10');
    is($st2, 503, '  ... a second list meanwhile: 503');
    my $err = json_decode($b2)->{error};
    is($err->{code}, 'overloaded', '  ... "overloaded"');
    like($err->{message}, qr/^too many results are being streamed at once: .*maxPoolSize less threads/,
        '  ... which names the bound');
    my ($st3) = $c->get('/tight/big?limit=2000');
    is($st3, 503, '  ... a list with a cursor finds no client: 503');
    close $x;
    ok(poll_until($Clusterd::DEADLINE, sub { ($c->get('/tight/big?limit=10'))[0] == 200 }),
        '  ... once the first reader hangs up, the next list is answered');
}
# stream_timeout_ms cuts a list that holds its answer too, and frees it.
{
    my $cuts = () = $c->log_text =~ /a result stream took longer than stream_timeout_ms/g;
    my ($x, $got) = stalled_list('/short/large?limit=15');
    like($got, qr{^HTTP/1\.1 200}, 'a list of 15 MB within one batch, its reader stalled');
    ok(poll_until($Clusterd::DEADLINE, sub {
        my $n = () = $c->log_text =~ /a result stream took longer than stream_timeout_ms \(1500 ms\)/g;
        return $n > $cuts;
    }), '  ... is cut at stream_timeout_ms');
    my $rest = '';
    1 while sysread($x, $rest, 1 << 20, length $rest);
    ok(length($got) + length($rest) < 15_000_000, '  ... before its end');
    close $x;
    my ($gst) = $c->get('/short/big/' . sprintf('%024x', 9));
    is($gst, 200, '  ... and the worker serves on');
}
# A list within one batch that the server cuts short (20 MB of documents,
# 16 MB to a batch) is run again with a cursor: the whole result, in order.
{
    $m->control('/stats?reset=1');
    my ($lst, undef, $body) = $c->get('/mongo/large?limit=20');
    is($lst, 200, 'a list of 20 MB within one batch\'s limit: 200');
    my @ids = $body =~ /"_id" : (\d+)/g;
    is_deeply(\@ids, [0 .. 19], '  ... all 20 documents, in order');
    my $st = $m->stats;
    is_deeply([map { $st->{commands}{$_} // 0 } qw(find killCursors getMore)], [2, 1, 1],
        '  ... the cut find\'s cursor killed, then a find and a getMore');
    is($st->{cursors}, 0, '  ... no cursor left open');
}

is(join(',', $c->workers), $worker, 'the same worker throughout');
# QUIT: a graceful stop, so the worker's cleanup runs under the sanitizers.
is($c->stop('QUIT') >> 8, 0, 'master exits 0 after a graceful stop');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
