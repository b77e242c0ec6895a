# A slot whose workers keep dying backs off; the other slot keeps serving.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time);
use Clusterd qw(poll_until);

my $c = Clusterd->new->start;
my ($victim_slot, $other_slot) = (1, 0);
my $from = 0;
my @forks;   # times at which slot 1 got a new worker
my $killed = 0;
# Kill each new worker of slot 1 as soon as it appears, 6 times.
while ($killed < 6) {
    my $pid = $c->wait_log(qr/started worker (\d+): slot $victim_slot,/, 20, $from) or last;
    push @forks, time;
    $from = index($c->log_text, "started worker $pid:") + 1;
    kill 'KILL', $pid;
    $killed++;
    my ($st) = $c->get('/dummy');
    ok($st == 200, "slot $other_slot serves while slot $victim_slot crashes ($killed)");
}
is($killed, 6, 'killed six workers of the slot');
my $last = $c->wait_log(qr/started worker (\d+): slot $victim_slot,/, 20, $from);
push @forks, time;
ok($last, 'the slot is restarted again after the back-off');
my @gaps = map { $forks[$_] - $forks[$_ - 1] } 1 .. $#forks;
diag sprintf 'gaps between forks: %s', join ' ', map { sprintf '%.3f', $_ } @gaps;
# Policy: 0, 100, 200, 400, 800, 1600 ms. Allow slack for a loaded box but
# demand growth: the last gap is well above the first ones.
ok($gaps[-1] >= 1.2, sprintf('the last gap is at least 1.2 s (%.3f)', $gaps[-1]));
ok($gaps[-1] > 4 * $gaps[1], 'gaps grow');
like($c->log_text, qr/slot $victim_slot restarts too often: next worker in 1600 ms/,
    'the back-off is logged');
# Left alone, the worker forked last serves: new connections land on either
# slot's socket, so ask until one lands on the victim's. Its fork is behind
# us, so the deadline only covers its start-up (a further back-off would be
# 3200 ms, and the policy's cap is 10 s).
my $served = poll_until($Clusterd::DEADLINE, sub {
    my $j = $c->get_json('/dummy');
    return $j && $j->{slot} == $victim_slot ? $j : undef;
});
ok($served && $served->{pid} == $last,
    "slot $victim_slot serves again once left alone, from the worker forked last ($last)")
    or diag explain $served;
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
