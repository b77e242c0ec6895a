# SIGQUIT finishes in-flight requests; SIGTERM stops promptly; a master
# killed with SIGKILL takes its workers with it. No process is left behind.
use strict;
use warnings;
use Test::More;
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
    my @socks = send_delayed($c->port, 20, 1500);
    # Wait until both workers hold requests (their stats say so), then quit.
    ok(poll_until(10, sub { $c->log_size && scalar(@socks) == 20 }), 'requests sent');
    # The requests reached the workers once their connections are accepted;
    # a /dummy answer from each worker after sending proves the loop saw them.
    my %seen;
    poll_until(10, sub { my $j = $c->get_json('/dummy'); $seen{$j->{pid}} = 1 if $j; keys %seen == 2 });
    $c->signal('QUIT');
    my $ok = 0;
    for my $s (@socks) {
        my $r = Clusterd::read_response($s);
        $ok++ if $r && $r->[0] == 200 && $r->[2] =~ /"delayed_ms":1500/;
    }
    is($ok, 20, 'SIGQUIT: all 20 in-flight requests completed with 200');
    my $status = $c->wait_exit(20);
    ok(defined $status && $status >> 8 == 0, 'master exited 0 after the graceful stop');
    ok(poll_until(5, sub { !grep { Clusterd::alive($_) } @workers }), 'no worker left');
    ok(!-e $c->dir . '/clusterd.pid', 'pid file removed');
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
