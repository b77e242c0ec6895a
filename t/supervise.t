# Supervision of live workers: a hung worker (its loop stopped) is found,
# logged, killed and replaced; workers are recycled after max_requests (with
# jitter) and over max_worker_rss_mb, gracefully, under load, with no
# failed request.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Time::HiRes qw(time);
use Clusterd qw(poll_until json_decode);

sub stop_clients {
    my ($c, @clients) = @_;
    open my $fh, '>', $c->dir . '/stop-clients' or die;
    close $fh;
    return map { Clusterd::client_results(@$_) } @clients;
}

sub clients {
    my ($c, $n, $no_retry) = @_;
    return map { [ Clusterd::client_loop($c->port, '/dummy', $c->dir . '/stop-clients',
        $c->dir . "/client$_", $no_retry), $c->dir . "/client$_" ] } 1 .. $n;
}

# ---- a hung worker ----
{
    my $c = Clusterd->new(config => { heartbeat_interval_ms => 100, worker_timeout_ms => 1000 })->start;
    my @before = $c->workers;
    my @clients = clients($c, 3);
    ok(poll_until(10, sub { @clients == grep { -e "$_->[1].first" } @clients }), 'clients are being served');
    my $victim = $before[0];
    my ($slot) = $c->log_text =~ /started worker $victim: slot (\d+)/;
    my $from = $c->log_size;
    my $t0 = time;
    kill 'STOP', $victim;
    my $line = $c->wait_log(qr/(worker $victim \(slot $slot, generation 1\) is hung: .*)/, 10, $from);
    ok($line, 'the stopped worker is logged as hung') or diag $c->log_text;
    like($line // '', qr/has not answered for \d+ ms \(worker_timeout_ms 1000\)/, '... with how long');
    like($line // '', qr/SIGABRT/, '... and what is done about it');
    my $new = $c->wait_log(qr/started worker (\d+): slot $slot, generation 1/, 10, $from);
    ok($new && $new != $victim, "a new worker is started in slot $slot");
    ok($c->wait_log(qr/worker $new ready/, 10, $from), '... and is ready');
    my $took = time - $t0;
    ok($took < 1.0 + 2, sprintf('replaced within worker_timeout_ms + 2 s (%.2f s)', $took));
    ok($c->wait_log(qr/hung worker $victim \(slot $slot, generation 1\) ended: signal 9/, 10, $from),
        'SIGKILL ends it, since a stopped process takes no SIGABRT');
    ok(!Clusterd::alive($victim), 'it is gone');
    # The other slot served all along; the stopped one's slot serves again.
    my %slots;
    poll_until(10, sub { my $j = $c->get_json('/dummy'); $slots{$j->{slot}} = 1 if $j; keys %slots == 2 });
    is(scalar keys %slots, 2, 'both slots serve');
    my @r = stop_clients($c, @clients);
    is($_->{fail}, 0, "a client served $_->{ok} requests, none failed") or diag explain $_->{errors} for @r;
    unlike(substr($c->log_text, $from), qr/died unexpectedly/, 'nothing else was disturbed');
    is($c->stop('QUIT') >> 8, 0, 'master exits 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

# ---- recycling after max_requests, under clients that never retry ----
{
    my $c = Clusterd->new(config => { heartbeat_interval_ms => 50, max_requests => 300,
        max_requests_jitter => 100, shutdown_timeout_ms => 5000 })->start;
    my @clients = clients($c, 2, 1);
    my $n = poll_until(60, sub {
        my @m = $c->log_text =~ /retires: worker \d+ took its place \(max_requests\)/g;
        @m >= 4 ? scalar @m : undef });
    ok($n, "workers were recycled after max_requests ($n retirements)");
    my @served = $c->log_text =~ /served (\d+) requests, its max_requests: replacing it/g;
    ok(@served && !grep({ $_ < 300 } @served), 'never before 300 requests: ' . join(',', @served));
    ok(!grep({ $_ > 400 } @served), '... nor after 300 + jitter (the worker tells the master at once)');
    my @r = stop_clients($c, @clients);
    for (@r) {
        ok($_->{ok} > 0, "a client that never retries was served $_->{ok} requests");
        is($_->{fail}, 0, '... none failed') or diag explain $_->{errors};
    }
    ok(keys(%{ { map { (split m{/})[0] => 1 } map { keys %{ $_->{seen} } } @r } }) > 2,
        'answers came from more workers than the two slots');
    unlike($c->log_text, qr/died unexpectedly/, 'no worker died');
    ok(poll_until(10, sub { $c->workers == 2 }), 'two workers in the end, once the last retirees exit');
    is($c->stop('QUIT') >> 8, 0, 'master exits 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
}

# ---- max_worker_rss_mb ----
{
    # Below a fresh worker's size: warned about, never a fork loop.
    my $c = Clusterd->new(config => { workers => 1, heartbeat_interval_ms => 50,
        max_worker_rss_mb => 1 })->start;
    ok($c->wait_log(qr/uses \d+ MB as it starts, over max_worker_rss_mb \(1\): it will not be recycled/),
        'a limit below a fresh worker is warned about');
    my ($w) = $c->workers;
    # Twenty heartbeats: nothing happens, which is the point.
    ok(!poll_until(1, sub { $c->log_text =~ /replacing it/ }), '... and that worker is not recycled');
    is_deeply([$c->workers], [$w], '... the same worker serves');
    $c->stop('QUIT');
}
{
    # A worker that grows past the limit is replaced; what it holds completes.
    my $c = Clusterd->new(config => { workers => 1, heartbeat_interval_ms => 50 })->start;
    my ($w) = $c->workers;
    my $rss_mb = (Clusterd::rss_kb($w))[0] / 1024;
    my $limit = int($rss_mb) + 3;
    $c->write_config({ workers => 1, heartbeat_interval_ms => 50, max_worker_rss_mb => $limit,
        shutdown_timeout_ms => 20000 });
    my $from = $c->log_size;
    $c->signal('HUP');
    ok($c->wait_log(qr/ready: generation 2/, 15, $from), "reloaded with max_worker_rss_mb $limit");
    ok(poll_until(10, sub { $c->workers == 1 }), 'one worker');
    ($w) = $c->workers;
    $from = $c->log_size;
    # Thousands of held requests make the worker grow.
    my @socks;
    for (1 .. 3000) {
        my $s = IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $c->port, Timeout => 30) or last;
        print $s "GET /dummy/delay?ms=4000 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
        push @socks, $s;
        last if $c->log_text =~ /worker $w \(slot 0, generation 2\) uses \d+ MB, over max_worker_rss_mb/;
    }
    my $line = $c->wait_log(qr/(worker $w \(slot 0, generation 2\) uses \d+ MB, over max_worker_rss_mb \($limit\): replacing it)/,
        15, $from);
    ok($line, "the worker that grew past $limit MB is replaced") or diag "RSS now " . (Clusterd::rss_kb($w))[0] . " kB";
    ok($c->wait_log(qr/worker $w \(slot 0\) retires: worker \d+ took its place \(max_rss\)/, 15, $from),
        '... once its replacement is ready');
    my $ok = 0;
    for my $s (@socks) {
        my $r = Clusterd::read_response($s);
        $ok++ if $r && $r->[0] == 200;
    }
    is($ok, scalar @socks, 'every request it held was answered 200 (' . scalar(@socks) . ')');
    is($c->stop('QUIT') >> 8, 0, 'master exits 0');
    is($c->sanitizer_report, '', 'no sanitizer report');
}
done_testing;
