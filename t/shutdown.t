# SIGQUIT finishes in-flight requests, answers the connections already
# queued and refuses new ones; SIGTERM stops promptly; a master killed with
# SIGKILL takes its workers with it. No process is left behind.
use strict;
use warnings;
use Test::More;
use IO::Select;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Clusterd qw(poll_until);

sub send_delayed {
    my ($port, $n, $ms) = @_;
    my @s;
    for (1 .. $n) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) or die "connect: $!";
        print $s "GET /dummy/delay?ms=$ms HTTP/1.1\r\nHost: t\r\n\r\n";
        push @s, $s;
    }
    return @s;
}

# --- graceful ---
{
    my $c = Clusterd->new->start;
    my @workers = $c->workers;
    my @socks = send_delayed($c->port, 20, 3000);
    # In flight: the workers accepted all 20 connections and read the request
    # bytes (nothing left in the sockets' receive queues), and no answer has
    # come back yet (the delay is 3 s). Then quit.
    my $conns;
    ok(poll_until($Clusterd::DEADLINE, sub {
        $conns = $c->worker_conns;
        my @all = map { @$_ } values %$conns;
        return @all == 20 && !grep { $_->{rx_queue} } @all;
    }), 'the workers accepted the 20 connections and read their requests')
        or diag explain $conns;
    is(scalar(keys %$conns), 2, 'both workers hold some of them');
    my @answered = IO::Select->new(@socks)->can_read(0);
    is(scalar @answered, 0, 'no answer yet when SIGQUIT is sent');
    $c->signal('QUIT');
    my $ok = 0;
    for my $s (@socks) {
        my $r = Clusterd::read_response($s);
        $ok++ if $r && $r->[0] == 200 && $r->[2] =~ /"delayed_ms":3000/;
    }
    is($ok, 20, 'SIGQUIT: all 20 in-flight requests completed with 200');
    my $status = $c->wait_exit(20);
    ok(defined $status && $status >> 8 == 0, 'master exited 0 after the graceful stop');
    ok(poll_until(5, sub { !grep { Clusterd::alive($_) } @workers }), 'no worker left');
    ok(!-e $c->dir . '/clusterd.pid', 'pid file removed');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

# --- graceful: what is queued is answered, a new connection is refused ---
# The master closes its copies of the listening sockets as the stop begins;
# the worker takes in what is queued on its own, then closes them too. A
# balancer's new connection is then refused at once (and sent to another
# host), instead of waiting for no one and being reset when the master exits.
sub listening {
    my ($pid, $port) = @_;
    open my $fh, '<', "/proc/$pid/net/tcp" or return 0;
    while (<$fh>) {
        my @f = split;
        return 1 if @f > 3 && $f[1] =~ /:([0-9A-F]{4})$/ && hex($1) == $port && $f[3] eq '0A';
    }
    return 0;
}
{
    my $c = Clusterd->new(config => { workers => 1, shutdown_timeout_ms => 60000 })->start;
    my ($w) = $c->workers;
    my ($held) = send_delayed($c->port, 1, 5000);    # the worker drains for 5 s
    ok(poll_until($Clusterd::DEADLINE, sub {
        my @all = map { @$_ } values %{ $c->worker_conns };
        return @all == 1 && !$all[0]{rx_queue};
    }), 'a request in flight');
    kill 'STOP', $w;
    my @queued = send_delayed($c->port, 5, 0);       # queued: the worker is stopped
    my $from = $c->log_size;
    $c->signal('QUIT');
    ok($c->wait_log(qr/master: graceful shutdown/, $Clusterd::DEADLINE, $from), 'SIGQUIT');
    like(substr($c->log_text, $from), qr/closing the socket of \S+ for slot 0/,
        '... the master closes its copy of the listening socket at once');
    kill 'CONT', $w;
    my $ok = grep { my $r = Clusterd::read_response($_); $r && $r->[0] == 200 } @queued;
    is($ok, 5, 'the 5 connections queued when the stop began are answered');
    ok(poll_until(3, sub { !listening($c->pid, $c->port) }),
        'the worker closes its copy too, while it still drains: nothing listens');
    ok(!IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port) && $!{ECONNREFUSED},
        'a new connection is refused');
    my $r = Clusterd::read_response($held);
    ok($r && $r->[0] == 200, 'the request in flight completes');
    my $status = $c->wait_exit(20);
    ok(defined $status && $status >> 8 == 0, 'master exited 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

# --- fast ---
{
    my $c = Clusterd->new->start;
    my @workers = $c->workers;
    my @socks = send_delayed($c->port, 5, 30000);
    my $t0 = time;
    $c->signal('TERM');
    my $status = $c->wait_exit(20);
    my $took = time - $t0;
    ok(defined $status && $status >> 8 == 0, 'SIGTERM: master exited 0');
    ok($took < 10, sprintf('promptly, with 30 s requests pending (%.2f s)', $took));
    ok(poll_until(5, sub { !grep { Clusterd::alive($_) } @workers }), 'no worker left');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

# --- master killed: workers follow ---
{
    my $c = Clusterd->new->start;
    my @workers = $c->workers;
    is(scalar @workers, 2, 'two workers');
    kill 'KILL', $c->pid;
    $c->wait_exit(10);
    my $t0 = time;
    ok(poll_until(10, sub { !grep { Clusterd::alive($_) } @workers }), 'workers exit when the master dies');
    ok(time - $t0 < 2, sprintf('within 2 s (%.3f s)', time - $t0));
}
done_testing;
