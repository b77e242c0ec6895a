# One owner per port: a second master (or anything else) already listening
# on an address makes clusterd refuse it, at start and on reload, whatever
# way the address is written; a master that cannot start says why on
# stderr even when its error_log is a file.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until);

my $a = Clusterd->new->start;
my $port = $a->port;
ok($port, "a first master listens on 127.0.0.1:$port");

sub try_start {
    my ($cfg) = @_;
    my $b = Clusterd->new(config => $cfg);
    my $log = $b->dir . '/error.log';
    $b->write_config({ %$cfg, error_log => $log });
    my $out = `$ENV{CLUSTERD} -c @{[$b->conf]} -p @{[$b->dir]}/b.pid 2>&1`;
    return ($? >> 8, $out, -e $log ? Clusterd::slurp($log) : '');
}

for my $addr ("127.0.0.1:$port", "0.0.0.0:$port", ":$port") {
    my ($rc, $out, $log) = try_start({ listen => [$addr] });
    is($rc, 1, "a second master on $addr exits 1");
    like($out, qr/cannot start: listen \Q$addr\E: another process already listens on [\d.]+:$port/,
        '... saying so on stderr, though its error_log is a file');
    like($log, qr/another process already listens/, '... and in its log');
}
# Nothing was disturbed.
my ($st) = $a->get('/dummy');
is($st, 200, 'the first master still serves');

# A locked pid file: the reason on stderr too.
{
    my $b = Clusterd->new;
    $b->write_config({ error_log => $b->dir . '/error.log' });
    my $out = `$ENV{CLUSTERD} -c @{[$b->conf]} -p @{[$a->dir]}/clusterd.pid 2>&1`;
    is($? >> 8, 1, 'a master whose pid file is locked exits 1');
    like($out, qr/cannot start: .*already running/, '... with the reason on stderr');
}

# Written two ways in one config: the same address.
{
    my $b = Clusterd->new(config => { listen => [':18099', '0.0.0.0:18099'] });
    my $out = `$ENV{CLUSTERD} -t -c @{[$b->conf]} 2>&1`;
    like($out, qr/listen\[1\]: duplicate address "0.0.0.0:18099" \(0\.0\.0\.0:18099, as ":18099" before it\)/,
        '":P" and "0.0.0.0:P" are one address');
}

# On reload: an address someone else holds is refused, the old config serves on.
{
    my $other = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 5, ReuseAddr => 1)
        or die "listen: $!";
    my $held = $other->sockport;
    my $from = $a->log_size;
    my @workers = $a->workers;
    $a->write_config({ listen => ['127.0.0.1:' . $port, "127.0.0.1:$held"] });
    $a->signal('HUP');
    like($a->wait_log(qr/reload failed, keeping the current configuration: (.*)/, 10, $from) // '',
        qr/listen 127\.0\.0\.1:$held: another process already listens on 127\.0\.0\.1:$held/,
        'a reload adding an address in use elsewhere fails, naming it');
    is_deeply([$a->workers], \@workers, 'the same workers serve');
    ($st) = $a->get('/dummy');
    is($st, 200, '... the old config');
    # An address it already has, written another way, is no conflict.
    $from = $a->log_size;
    $a->write_config({ listen => ["127.0.0.1:$port"] });
    $a->signal('HUP');
    ok($a->wait_log(qr/ready: generation 2/, 15, $from), 'a reload keeping its own address works');
}
is($a->stop('QUIT') >> 8, 0, 'master exits 0');
is($a->sanitizer_report, '', 'no sanitizer report');
done_testing;
