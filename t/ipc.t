# A worker that sends the master garbage over IPC is logged and replaced.
# The test speaks on the worker's own end of the socketpair: it takes a copy
# of that descriptor with pidfd_getfd(2), as a debugger would.
use strict;
use warnings;
use Test::More;
use POSIX ();
use Clusterd qw(poll_until);

use constant { SYS_pidfd_open => 434, SYS_pidfd_getfd => 438 };
plan skip_all => 'x86_64 Linux only (syscall numbers)' unless `uname -m` =~ /x86_64/;

# The worker's SOCK_SEQPACKET socket is its IPC end.
sub ipc_fd_of {
    my $pid = shift;
    my %seqpacket;
    open my $u, '<', '/proc/net/unix' or return;
    while (<$u>) {
        my @f = split ' ';
        $seqpacket{ $f[6] } = 1 if defined $f[4] && $f[4] eq '0005';
    }
    for my $fd (glob "/proc/$pid/fd/*") {
        my $l = readlink $fd // next;
        return ($fd =~ m{(\d+)$})[0] if $l =~ /^socket:\[(\d+)\]/ && $seqpacket{$1};
    }
    return;
}

sub steal_fd {
    my ($pid, $fd) = @_;
    # +0: syscall() passes strings as pointers, numbers as integers.
    my $pidfd = syscall(SYS_pidfd_open, $pid + 0, 0);
    return if $pidfd < 0;
    my $copy = syscall(SYS_pidfd_getfd, $pidfd + 0, $fd + 0, 0);
    POSIX::close($pidfd);
    return if $copy < 0;
    open(my $h, '+<&=', $copy) or return;
    return $h;
}

my $c = Clusterd->new->start;
my @cases = (
    [ 'not JSON', 'hello there', qr/sent a malformed message \(not one JSON value/ ],
    [ 'oversized', '{' x 8192, qr/sent a malformed message \(message of 8192 bytes/ ],
    [ 'unknown type', '{"type":"gimme"}', qr/sent a malformed message \(unknown type "gimme"\)/ ],
    [ 'a forged ready', '{"type":"ready","pid":1,"slot":0,"generation":1}',
      qr/sent a ready message that is not its own: killing it/ ],
    [ 'a master-only message', '{"type":"reopen"}', qr/sent an unexpected reopen message: killing it/ ],
);
for my $case (@cases) {
    my ($name, $payload, $re) = @$case;
    my ($victim) = $c->workers;
    my ($slot) = $c->log_text =~ /started worker $victim: slot (\d+)/;
    my $fd = ipc_fd_of($victim);
    my $h = $fd && steal_fd($victim, $fd);
    SKIP: {
        skip "cannot take the worker's descriptor (pidfd_getfd)", 4 unless $h;
        my $from = $c->log_size;
        ok(defined send($h, $payload, 0), "$name: sent as worker $victim");
        close $h;
        like($c->wait_log(qr/(worker $victim .*)/, 10, $from), $re, "$name: logged");
        ok($c->wait_log(qr/worker $victim \(slot $slot, generation 1\) died unexpectedly: signal 9/, 10, $from),
            "$name: the worker is killed");
        my $new = $c->wait_log(qr/started worker (\d+): slot $slot,/, 10, $from);
        ok($new && $c->wait_log(qr/worker $new ready/, 10, $from), "$name: and replaced in slot $slot");
    }
    # Let the slot's back-off settle: each case is a new crash of a slot.
    poll_until(10, sub { scalar($c->workers) == 2 });
}
my ($st) = $c->get('/dummy');
is($st, 200, 'still serving');
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
