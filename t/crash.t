# A worker killed with -9 is replaced in its slot within a second, and a
# client loop running meanwhile loses nothing but what was in flight on it.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Clusterd qw(poll_until);

my $c = Clusterd->new->start;
my @before = $c->workers;
is(scalar @before, 2, 'two workers');

my $stop = $c->dir . '/stop-clients';
my @clients = map { [ Clusterd::client_loop($c->port, '/dummy', $stop, $c->dir . "/client$_"), $c->dir . "/client$_" ] } 1 .. 3;
# Let the clients get going: each has an answer before the kill.
ok(poll_until($Clusterd::DEADLINE, sub { !grep { !-e "$_->[1].first" } @clients }),
    'each client has had an answer before the kill');

my $from = $c->log_size;
my $victim = $before[0];
my ($slot) = $c->log_text =~ /started worker $victim: slot (\d+)/;
my $t0 = time;
kill 'KILL', $victim;
my $new = $c->wait_log(qr/started worker (\d+): slot $slot, generation 1/, 10, $from);
ok($new && $new != $victim, "a replacement was forked for slot $slot");
# The replacement serves within a second: it says it is ready, then answers.
ok($c->wait_log(qr/worker $new ready: slot $slot/, 10, $from), 'the replacement reported ready');
my $served = poll_until(10, sub {
    my $j = $c->get_json('/dummy');
    return $j && $j->{pid} == $new;
});
my $elapsed = time - $t0;
ok($served, 'the replacement answers requests');
# The issue's bound; the benchmark measures the real figure (milliseconds).
ok($elapsed < 1, sprintf('kill -9 to a request served by the replacement in %.3f s (< 1 s)', $elapsed));
like($c->log_text, qr/worker $victim \(slot $slot, generation 1\) died unexpectedly: signal 9/,
    'the death is logged with pid, slot and signal');

open my $fh, '>', $stop or die;
close $fh;
for my $cl (@clients) {
    my $r = Clusterd::client_results(@$cl);
    ok($r->{ok} > 0, "client served $r->{ok} requests");
    # At most the one request that was in flight on the killed worker may fail.
    ok($r->{fail} <= 1, "client saw $r->{fail} failure(s)") or diag explain $r->{errors};
}

my @after = $c->workers;
is(scalar @after, 2, 'still two workers');
ok(!grep({ $_ == $victim } @after), 'the killed worker is gone');

is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
