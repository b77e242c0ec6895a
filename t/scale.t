# SIGTTIN / SIGTTOU add and remove a worker.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until);

my $c = Clusterd->new->start;
is(scalar($c->workers), 2, 'two workers');
my $from = $c->log_size;
$c->signal('TTIN');
ok($c->wait_log(qr/worker \d+ ready: slot 2,/, 10, $from), 'SIGTTIN starts a worker in slot 2');
ok(poll_until(10, sub { $c->workers == 3 }), 'three workers');
my %slots;
poll_until(20, sub { my $j = $c->get_json('/dummy'); $slots{$j->{slot}} = 1 if $j; keys %slots == 3 });
is(scalar keys %slots, 3, 'all three slots answer');

$from = $c->log_size;
$c->signal('TTOU');
ok($c->wait_log(qr/removing the worker of slot 2/, 10, $from), 'SIGTTOU removes slot 2');
ok(poll_until(10, sub { $c->workers == 2 }), 'two workers again');
ok($c->wait_log(qr/closing the socket of 127\.0\.0\.1:0 for slot 2/, 10, $from),
    "and the slot's socket is closed");
$c->signal('TTOU');
ok(poll_until(10, sub { $c->workers == 1 }), 'one worker');
$from = $c->log_size;
$c->signal('TTOU');
ok($c->wait_log(qr/not removing the last worker/, 10, $from), 'the last worker stays');
is(scalar($c->workers), 1, 'one worker');
for (1 .. 20) {
    my ($st) = $c->get('/dummy');
    is($st, 200, 'served by the remaining worker') if $_ == 20;
}
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
