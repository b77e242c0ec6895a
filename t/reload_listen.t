# A reload keeps the sockets of addresses that stay, binds new ones, and
# closes dropped ones once no worker uses them.
use strict;
use warnings;
use Test::More;
use IO::Socket::INET;
use Clusterd qw(poll_until);

my $c = Clusterd->new->start;
my $port = $c->port;
sub inodes {
    my $pid = shift;
    return { map { (readlink($_) // '') =~ /^socket:\[(\d+)\]/ ? ($1 => 1) : () } glob "/proc/$pid/fd/*" };
}
my $before = inodes($c->pid);

# Add a second address: a free port picked by the kernel for the test.
my $probe = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
my $port2 = $probe->sockport;
close $probe;
my $from = $c->log_size;
$c->write_config({ listen => ['127.0.0.1:0', "127.0.0.1:$port2"] });
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 2/, 15, $from), 'reloaded with a second address');
my ($st) = Clusterd::http_get($port2, '/dummy');
is($st, 200, 'the new address serves');
($st) = $c->get('/dummy');
is($st, 200, 'the old one still does');
my $after = inodes($c->pid);
is(scalar(grep { $after->{$_} } grep { $before->{$_} } keys %$before) >= 2, 1,
    "the kept address's sockets are the same sockets (no rebind)");
like(substr($c->log_text, $from), qr/listening on 127\.0\.0\.1:$port2/, 'the new address is logged');
unlike(substr($c->log_text, $from), qr/listening on 127\.0\.0\.1:$port /, 'the kept one is not bound again');

# Drop the first address: its sockets close once the old generation is gone.
$from = $c->log_size;
$c->write_config({ listen => ["127.0.0.1:$port2"] });
$c->signal('HUP');
ok($c->wait_log(qr/ready: generation 3/, 15, $from), 'reloaded without the first address');
ok($c->wait_log(qr/closing the socket of 127\.0\.0\.1:0 for slot 1/, 15, $from), 'its sockets are closed');
ok(poll_until(10, sub { !IO::Socket::INET->new(PeerAddr => '127.0.0.1', PeerPort => $port) }),
    'connections to the dropped address are refused');
($st) = Clusterd::http_get($port2, '/dummy');
is($st, 200, 'the remaining address serves');

# A reload whose new address cannot be bound keeps the old config whole.
my $busy = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0, Listen => 1) or die;
$from = $c->log_size;
$c->write_config({ listen => ["127.0.0.1:$port2", '127.0.0.1:' . $busy->sockport] });
$c->signal('HUP');
like($c->wait_log(qr/reload failed, keeping the current configuration: (.*)/, 10, $from),
    qr/listen 127\.0\.0\.1:\d+: another process already listens on 127\.0\.0\.1:\d+/,
    'an address in use elsewhere fails the reload');
($st) = Clusterd::http_get($port2, '/dummy');
is($st, 200, 'and the old config serves on');

$c->{port} = $port2;
is($c->stop('QUIT') >> 8, 0, 'master exits 0');
is($c->sanitizer_report, '', 'no sanitizer report');
done_testing;
