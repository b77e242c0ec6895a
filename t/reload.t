# SIGHUP: a new route appears with zero failed requests under load; a broken
# config is refused and the old one keeps serving.
use strict;
use warnings;
use Test::More;
use Clusterd qw(poll_until json_decode);

my $c = Clusterd->new(config => { shutdown_timeout_ms => 5000 })->start;
my $pid = $c->pid;
my ($st) = $c->get('/new');
is($st, 404, '/new is not routed yet');

my $stop = $c->dir . '/stop-clients';
my @clients = map { [ Clusterd::client_loop($c->port, '/dummy', $stop, $c->dir . "/client$_"), $c->dir . "/client$_" ] } 1 .. 4;
# And two that never retry, like wrk: retiring workers must not close a
# keep-alive connection under a request that is on its way.
my @strict = map { [ Clusterd::client_loop($c->port, '/dummy', $stop, $c->dir . "/strict$_", 1), $c->dir . "/strict$_" ] } 1 .. 2;

# Reload several times under load; each must switch generation cleanly.
for my $gen (2 .. 4) {
    my $from = $c->log_size;
    $c->write_config({ shutdown_timeout_ms => 5000, routes => [
        { prefix => '/dummy', service => 'dummy' },
        { prefix => '/new', service => 'dummy' } ] });
    $c->signal('HUP');
    ok($c->wait_log(qr/ready: generation $gen, 2 worker\(s\), retiring the previous generation/, 20, $from),
        "generation $gen is ready and the old one retires");
    ok($c->wait_log(qr/generation @{[$gen - 1]}\) exited: exit code 0.*\n(?s:.*)generation @{[$gen - 1]}\) exited: exit code 0/, 20, $from),
        'both old workers exit cleanly');
}
my $j = $c->get_json('/new');
ok($j && $j->{service} eq 'dummy', 'the new route answers');
is($j->{generation}, 4, 'from the newest generation');

open my $fh, '>', $stop or die;
close $fh;
my %gens;
for my $cl (@clients) {
    my $r = Clusterd::client_results(@$cl);
    ok($r->{ok} > 0, "client served $r->{ok} requests");
    is($r->{fail}, 0, 'and none failed') or diag explain $r->{errors};
    $gens{ (split m{/}, $_)[1] } = 1 for keys %{ $r->{seen} };
}
ok(keys %gens >= 2, 'the clients were served across generations: ' . join(',', sort keys %gens));
for my $cl (@strict) {
    my $r = Clusterd::client_results(@$cl);
    ok($r->{ok} > 0, "a client that never retries served $r->{ok} requests");
    is($r->{fail}, 0, 'and none failed') or diag explain $r->{errors};
}

# A broken config: logged, the old one keeps serving, same master.
my @workers = $c->workers;
my $from = $c->log_size;
$c->write_config('{ "listen": ["127.0.0.1:0"], "routes": [ { "prefix": "/x", "service": "nope" } ] }');
$c->signal('HUP');
my $err = $c->wait_log(qr/reload failed, keeping the current configuration: (.*)/, 10, $from);
like($err, qr/\Q@{[$c->conf]}\E: routes\[0\]\.service: unknown service "nope"/,
    'the error names the file, the key and the problem');
is($c->pid, $pid, 'same master');
is_deeply([$c->workers], \@workers, 'same workers');
($st) = $c->get('/new');
is($st, 200, 'the old config keeps serving');

# Invalid JSON too.
$from = $c->log_size;
$c->write_config('{ "listen": [ ');
$c->signal('HUP');
like($c->wait_log(qr/reload failed, keeping the current configuration: (.*)/, 10, $from),
    qr/invalid JSON/, 'invalid JSON is refused');
($st) = $c->get('/dummy');
is($st, 200, 'still serving');

is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
