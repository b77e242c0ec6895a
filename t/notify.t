# The systemd notify protocol through start, reload, watchdog and stop.
use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);
use Errno qw(EAGAIN);
use Clusterd qw(poll_until);

my $c = Clusterd->new;
my $path = $c->dir . '/notify.sock';
my $sock = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $path) or die "bind $path: $!";
$sock->blocking(0);
my @msgs;
sub drain_msgs {
    while (defined(my $from = $sock->recv(my $buf, 4096))) {
        last unless length $buf;
        push @msgs, $buf;
    }
}
# Waits for a datagram matching $re; returns it.
sub wait_msg {
    my ($re) = @_;
    return poll_until(15, sub {
        drain_msgs();
        for my $i (0 .. $#msgs) {
            if ($msgs[$i] =~ $re) { return splice(@msgs, $i, 1) }
        }
        return undef;
    });
}

local $ENV{NOTIFY_SOCKET} = $path;
local $ENV{WATCHDOG_USEC} = 200000;
$c->start;
my $ready = wait_msg(qr/^READY=1/m);
ok($ready, 'READY=1 at start');
like($ready, qr/^STATUS=2 worker\(s\), generation 1$/m, 'with a STATUS line');
ok(wait_msg(qr/^WATCHDOG=1$/), 'WATCHDOG=1 at half of WATCHDOG_USEC');
ok(wait_msg(qr/^WATCHDOG=1$/), 'and again');

@msgs = ();
$c->signal('HUP');
my $reloading = wait_msg(qr/^RELOADING=1/m);
ok($reloading, 'RELOADING=1 when a reload starts');
like($reloading, qr/^MONOTONIC_USEC=\d+$/m, 'with MONOTONIC_USEC');
like(wait_msg(qr/^READY=1/m), qr/generation 2/, 'READY=1 when the new generation is ready');

# A failed reload still answers READY=1, or systemd would wait for it.
$c->write_config({ workers => 'many' });
$c->signal('HUP');
ok(wait_msg(qr/^RELOADING=1/m), 'RELOADING=1 for a bad config');
like(wait_msg(qr/^READY=1/m), qr/STATUS=reload failed: .*workers/, 'READY=1 with the reason');

$c->signal('TTIN');
like(wait_msg(qr/^STATUS=/m), qr/STATUS=3 worker\(s\)/, 'STATUS follows the worker count');

$c->signal('QUIT');
ok(wait_msg(qr/^STOPPING=1$/m), 'STOPPING=1');
is($c->wait_exit(20), 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');

# READY=1 is sent only once the master has logged that every worker is ready.
# The master's sendto blocks while the notify socket's queue is full: fill it
# before the start and read nothing, so READY=1 cannot leave. If the ready
# lines still reach the log meanwhile, they were written before READY=1 was
# sent; a master that sent first would be stuck before logging them.
{
    my $d = Clusterd->new;
    my $p = $d->dir . '/notify-full.sock';
    my $rx = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Local => $p) or die "bind $p: $!";
    $rx->blocking(0);
    # A sender's own buffer can fill first: the queue is full when a fresh
    # socket cannot send even one datagram.
    my (@fill, $full);
    while (!$full && @fill < 1000) {
        my $f = IO::Socket::UNIX->new(Type => SOCK_DGRAM, Peer => $p) or die "connect $p: $!";
        $f->blocking(0);
        my $n = 0;
        $n++ while defined $f->send('filler');
        $! == EAGAIN or die "send to $p: $!";
        $full = $n == 0;
        push @fill, $f;
    }
    ok($full, 'the notify socket is full before the start');
    local $ENV{NOTIFY_SOCKET} = $p;
    delete local $ENV{WATCHDOG_USEC};   # only READY=1 may be the first datagram
    $d->launch;
    ok($d->wait_log(qr/ready: generation 1, 2 worker\(s\)/),
        'the master logs "ready: generation 1, 2 worker(s)" before it sends READY=1');
    my @workers_ready = $d->log_text =~ /worker \d+ ready: slot \d+, generation 1$/mg;
    is(scalar @workers_ready, 2, 'after both workers said they are ready');
    # Now let it through: the first datagram after the fillers is READY=1.
    my $first = poll_until(15, sub {
        while (defined $rx->recv(my $buf, 4096)) { return $buf if $buf ne 'filler' }
        return undef;
    });
    like($first // '', qr/^READY=1$/m, 'READY=1 is its first datagram once the queue drains');
    is($d->stop('QUIT') >> 8, 0, 'that master exits 0 too');
}
done_testing;
