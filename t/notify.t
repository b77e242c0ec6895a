# The systemd notify protocol through start, reload, watchdog and stop.
use strict;
use warnings;
use Test::More;
use IO::Socket::UNIX;
use Socket qw(SOCK_DGRAM);
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
ok($ready, 'READY=1 once every worker is ready');
like($ready, qr/^STATUS=2 worker\(s\), generation 1$/m, 'with a STATUS line');
ok($c->log_text =~ /ready: generation 1/, 'READY=1 came with the ready log line');
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
done_testing;
