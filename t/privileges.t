# Started as root with "user" and "group", the workers drop to them and
# cannot get root back; the master stays root.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until);

plan skip_all => 'needs root (CI runs as root)' if $> != 0;
my ($uid, $gid) = (getpwnam('nobody'))[2, 3];
my $ggid = getgrnam('nogroup');
plan skip_all => 'no user nobody / group nogroup' unless defined $uid && defined $ggid;

sub ids {
    my $pid = shift;
    open my $f, '<', "/proc/$pid/status" or return;
    my %s = map { /^(\w+):\s*(.*)$/ ? ($1, $2) : () } <$f>;
    return { uid => [split /\s+/, $s{Uid}], gid => [split /\s+/, $s{Gid}],
        groups => [split /\s+/, $s{Groups} // ''] };
}

my $c = Clusterd->new(config => { user => 'nobody', group => 'nogroup',
    access_log => '/dev/null' });
# The temp dir must be readable by the workers for nothing; logs go to stderr.
$c->start;
my @w = $c->workers;
is(scalar @w, 2, 'two workers');
for my $pid (@w) {
    my $id = ids($pid);
    is_deeply($id->{uid}, [($uid) x 4], "worker $pid: real, effective, saved and fs uid are nobody");
    is_deeply($id->{gid}, [($ggid) x 4], "worker $pid: all gids are nogroup");
    ok(!grep({ $_ == 0 } @{ $id->{groups} }), "worker $pid: no supplementary root group");
}
my $m = ids($c->pid);
is($m->{uid}[1], 0, 'the master stays root');
my ($st) = $c->get('/dummy');
is($st, 200, 'the workers serve');
# A reload (which binds as root) still works, and its workers drop too.
$c->write_config({ user => 'nobody', group => 'nogroup', access_log => '/dev/null',
    listen => ['127.0.0.1:0'] });
my $from = $c->log_size;
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2/, 15, $from), 'reload works');
ok(poll_until(10, sub { my @n = $c->workers; @n == 2 && !grep({ my $x = $_; grep { $_ == $x } @w } @n) }),
    'new workers replaced the old');
is(ids(($c->workers)[0])->{uid}[1], $uid, 'new workers dropped to nobody too');

# A graceful stop goes over IPC: no signal crosses the uid boundary.
my @last = $c->workers;
$c->signal('QUIT');
is($c->wait_exit(20), 0, 'graceful stop of unprivileged workers');
ok(poll_until(5, sub { !grep { Clusterd::alive($_) } @last }), 'no worker left');
is($c->sanitizer_report, '', 'no sanitizer report');

# Signalling a worker that changed uid needs the master's root (CAP_KILL):
# without it kill() fails with EPERM and the worker never stops.
my %nobody = (user => 'nobody', group => 'nogroup', access_log => '/dev/null');

# Fast stop: the master sends each worker SIGTERM, and nothing else tells
# them to stop (no IPC message), so an exit proves the signals arrived.
{
    my $f = Clusterd->new(config => { %nobody })->start;
    my @fw = $f->workers;
    ok(@fw == 2 && !grep({ ids($_)->{uid}[1] != $uid } @fw), 'fast stop: two workers running as nobody');
    $f->signal('TERM');
    is($f->wait_exit(20), 0, 'SIGTERM: the master exits 0');
    ok(poll_until(5, sub { !grep { Clusterd::alive($_) } @fw }), 'no worker left');
    my $log = $f->log_text;
    # (SIGTERM, or SIGKILL if one took FAST_STOP_KILL_MS: both need CAP_KILL)
    is(scalar(() = $log =~ /worker \d+ \(slot \d, generation 1\) exited: /g), 2,
        "the master's signals stopped both workers");
}

# Graceful stop that times out: a worker still holding a request when
# shutdown_timeout_ms runs out gets SIGKILL from the master.
{
    my $k = Clusterd->new(config => { %nobody, workers => 1, shutdown_timeout_ms => 300 })->start;
    my ($kw) = $k->workers;
    is(ids($kw)->{uid}[1], $uid, 'timeout: the worker runs as nobody');
    my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $k->port) or die "connect: $!";
    print $s "GET /dummy/delay?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n";
    ok(poll_until($Clusterd::DEADLINE, sub {
        my $conns = $k->worker_conns->{$kw} || [];
        return @$conns == 1 && $conns->[0]{rx_queue} == 0;
    }), 'the worker holds a 60 s request');
    $k->signal('QUIT');
    is($k->wait_exit(20), 0, 'SIGQUIT: the master exits 0 long before the request would end');
    like($k->log_text, qr/worker $kw \(slot 0\) did not exit in time: killing it/, 'the master sends SIGKILL when shutdown_timeout_ms runs out');
    like($k->log_text, qr/worker $kw \(slot 0, generation 1\) exited: signal 9\b/, 'it died of SIGKILL');
    ok(!Clusterd::alive($kw), 'no worker left');
    close $s;
}

# A user that does not exist is a config error.
my $d = Clusterd->new(config => { user => 'no-such-user-xyz' });
my $out = `$ENV{CLUSTERD} -t -c @{[$d->conf]} 2>&1`;
like($out, qr/: user: no such user "no-such-user-xyz"/, 'unknown user is a config error');
done_testing;
