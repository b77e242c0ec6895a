# Chaos, bounded to about 40 s: steady keep-alive and new-connection load on
# /dummy and readmongo while, all at once, workers are killed with -9, the
# master reloads in storms, workers are added and removed, the MongoDB test
# server goes away and comes back, and slowloris clients trickle headers.
# The master lives through it all; failed requests are at most those in
# flight at each kill; the master's descriptors and memory do not grow; no
# process is left over; and /metrics adds up to what happened.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use POSIX ();
use Time::HiRes qw(time sleep);
use Clusterd qw(poll_until json_decode);
use MongoTest;

my $SECS = 30;
$SIG{PIPE} = 'IGNORE';       # slowloris sockets the server closed are written to
srand(20261202);             # the same chaos every run: a failure can be replayed

my $m = MongoTest->start(seed => { app => { users => [ map { { _id => "u$_", n => $_ } } 1 .. 50 ] } });
my $c = Clusterd->new(config => {
    workers => 2,
    limits => { header_timeout_ms => 1000, keepalive_timeout_ms => 10000 },
    routes => [
        { prefix => '/dummy', service => 'dummy' },
        { prefix => '/metrics', service => 'metrics' },
        { prefix => '/mongo', service => 'readmongo', database => 'app', collections => ['users'],
          uri => $m->uri(serverSelectionTimeoutMS => 500, connectTimeoutMS => 500), max_time_ms => 1000 },
    ],
})->start;
my $port = $c->port;
my $dir = $c->dir;
my $master = $c->pid;

sub fds_of { my @f = glob "/proc/$_[0]/fd/*"; return scalar @f }
sub metric {
    my ($text, $re) = @_;
    my $sum = 0;
    $sum += $1 while $text =~ /^$re (\d+(?:\.\d+)?(?:e\+\d+)?)$/mg;
    return $sum;
}

# Warm up, then the master's baseline: descriptors and memory.
$c->get('/dummy') for 1 .. 5;
$c->get('/mongo/users/u1');
my $fds0 = fds_of($master);
my ($rss0) = Clusterd::rss_kb($master);

# ---- load: keep-alive clients (Clusterd::client_loop) and new-connection clients ----
my @ka = map { Clusterd::client_loop($port, '/dummy', "$dir/stop", "$dir/ka$_") } 1 .. 4;
sub fresh_client {
    my ($path, $out) = @_;
    my $parent = $$;
    my $pid = fork // die;
    return $pid if $pid;
    my ($ok, $fail, @errors) = (0, 0);
    while (!-e "$dir/stop" && kill(0, $parent)) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port, Timeout => 10);
        my $r;
        if ($s) {
            print $s "GET $path HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
            $r = Clusterd::read_response($s);
        }
        if ($r && ($r->[0] == 200 || ($path =~ /mongo/ && $r->[0] == 503))) { $ok++ }
        else { $fail++; push @errors, sprintf('%.3f %s', time, $r ? "status $r->[0]" : $s ? 'no answer' : "connect: $!") }
    }
    open my $fh, '>', $out or die;
    print $fh "ok $ok\nfail $fail\n", map { "error $_\n" } @errors;
    close $fh;
    POSIX::_exit(0);
}
my @fresh = (fresh_client('/dummy', "$dir/fresh1"), fresh_client('/dummy', "$dir/fresh2"),
             fresh_client('/mongo/users/u2', "$dir/fresh3"));

# ---- chaos ----
my %did = (kill => 0, hup => 0, ttin => 0, ttou => 0, mongo => 0, slowloris => 0);
my @slow;
my $workers = 2;
my $end = time + $SECS;
my $alive = 1;
while (time < $end) {
    my $what = int rand 6;
    if ($what == 0 || $what == 1) {
        my @w = $c->workers;
        if (@w) { kill 'KILL', $w[rand @w]; $did{kill}++ }
    } elsif ($what == 2) {
        $c->signal('HUP') for 1 .. 1 + int rand 3;    # a storm: they may coalesce
        $did{hup}++;
        $workers = 2;                                # a reload takes the file's number again
    } elsif ($what == 3) {
        if ($workers < 4 && rand() < 0.5) { $c->signal('TTIN'); $workers++; $did{ttin}++ }
        elsif ($workers > 1) { $c->signal('TTOU'); $workers--; $did{ttou}++ }
    } elsif ($what == 4) {
        $m->fault(refuse => 1);
        sleep 0.3;
        $m->fault(refuse => 0);
        $did{mongo}++;
    } else {
        for (1 .. 20) {
            my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or next;
            print $s "GET /dummy HTTP/1.1\r\nHost: t\r\nX-Slow: ";
            push @slow, $s;
        }
        $did{slowloris}++;
    }
    $alive &&= kill(0, $master) && !Clusterd::is_zombie($master);
    sleep 0.3 + rand 0.4;
    syswrite($_, 'x') for @slow;                 # the trickle
}
note join ', ', map { "$_ $did{$_}" } sort keys %did;
ok($alive, 'the master lived through it all');
close $_ for @slow;

# Let things settle, then stop the load.
$m->fault(refuse => 0);
ok(poll_until(20, sub { scalar($c->workers) == $workers }), "it settles at $workers workers")
    or diag "workers now: " . join(' ', $c->workers) . "\n" . join '', grep { /master/ } (split /^/, $c->log_text)[-15 .. -1];
sleep 1;
open my $f, '>', "$dir/stop" or die;
close $f;
my %ka = (ok => 0, fail => 0);
for my $i (0 .. $#ka) {
    my $r = Clusterd::client_results($ka[$i], "$dir/ka" . ($i + 1));
    $ka{ok} += $r->{ok};
    $ka{fail} += $r->{fail};
    diag "keep-alive client: $_" for @{ $r->{errors} }[0 .. ($#{ $r->{errors} } < 4 ? $#{ $r->{errors} } : 4)];
}
my %fr = (ok => 0, fail => 0);
for my $i (0 .. $#fresh) {
    waitpid($fresh[$i], 0);
    open my $fh, '<', "$dir/fresh" . ($i + 1) or next;
    my %kinds;
    while (<$fh>) {
        $fr{$1} += $2 if /^(ok|fail) (\d+)/;
        $kinds{$1}++ if /^error \S+ (.*)/;
    }
    diag "new-connection client $i: $_ x $kinds{$_}" for sort keys %kinds;
}
my $clients = @ka + @fresh;
note "keep-alive: $ka{ok} ok, $ka{fail} failed; new connections: $fr{ok} ok, $fr{fail} failed";
cmp_ok($ka{ok} + $fr{ok}, '>', 1000, 'the load went on throughout');
# A kill loses what the killed worker was doing: at most one request per
# client; a keep-alive client also sees its connection cut once per kill
# and per retired generation only if it was mid-request.
cmp_ok($ka{fail} + $fr{fail}, '<=', $did{kill} * $clients,
    "failed requests ($ka{fail} + $fr{fail}) at most those in flight at $did{kill} kills");

# ---- the master did not grow ----
my $fds1 = fds_of($master);
my ($rss1) = Clusterd::rss_kb($master);
# each worker beyond the first two has its IPC socket, its bus socket and its slot's
# listening socket
cmp_ok($fds1, '<=', $fds0 + 3 * ($workers > 2 ? $workers - 2 : 0),
    "the master's descriptors: $fds0 before, $fds1 after, at $workers workers");
cmp_ok($rss1 - $rss0, '<', 8192, sprintf("the master's memory: %.1f MB before, %.1f MB after",
    $rss0 / 1024, $rss1 / 1024));

# ---- /metrics adds up ----
my ($st, undef, $text) = $c->get('/metrics');
is($st, 200, '/metrics answers');
# A kill of a worker already retiring is no crash: the log tells which were.
my $crash = metric($text, 'clusterd_worker_restarts_total\{reason="crash"\}');
my $died = () = $c->log_text =~ /died unexpectedly: signal 9/g;
is($crash, $died, "crash restarts counted: $crash, as many as the log's unexpected deaths");
cmp_ok($died, '<=', $did{kill}, "  ... of $did{kill} kills");
my $scale = metric($text, 'clusterd_worker_restarts_total\{reason="scale"\}');
is($scale, $did{ttou}, "scale restarts: one per worker removed ($did{ttou})");
my $reloads = metric($text, 'clusterd_reloads_total\{result="ok"\}');
ok($reloads >= 1 && $reloads <= $did{hup} * 3, "reloads: $reloads, from $did{hup} storms");
# Counted when a reply is made, before the client can see it: every 200 a
# client got is in, those of workers killed since included.
my $served = metric($text, 'clusterd_requests_total\{service="dummy",code="2xx"\}');
cmp_ok($served, '>=', $ka{ok}, "dummy 2xx counted ($served) cover the keep-alive clients' $ka{ok}");

# ---- nothing left over ----
my @kids = $c->children;
is($c->stop('QUIT') >> 8, 0, 'master exits 0 after a graceful stop');
ok(poll_until(10, sub { !grep { kill 0, $_ } @kids }), 'no worker is left behind');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
