# The command line: -t, -s, -V, -h, overrides and bad flags.
use strict;
use warnings;
use Test::More;
use POSIX ();
use File::Temp ();
use Clusterd qw(poll_until);

my $bin = $ENV{CLUSTERD};
sub run { my $out = `@_ 2>&1`; return ($? >> 8, $out) }

my $c = Clusterd->new;
my ($rc, $out) = run($bin, '-t', '-c', $c->conf);
is($rc, 0, '-t on a good config exits 0');
is($out, "ok\n", 'and prints ok');
($rc, $out) = run($bin, '--test-config', '--config', "$ENV{TOP_SRCDIR}/conf/production.conf");
is($rc, 0, 'the example config that make install installs is valid');
# (conf/clusterd.conf, the demo's, is checked by t/demo.t, from the top of the tree)

$c->write_config({ workers => 0 });
($rc, $out) = run($bin, '-t', '-c', $c->conf);
is($rc, 1, '-t on a bad config exits 1');
is($out, 'clusterd: ' . $c->conf . ": workers: 0 is out of range (1 to 1024)\n",
    'one line naming file, key and problem');
($rc, $out) = run($bin, '-t', '-c', '/nonexistent.conf');
is($rc, 1, 'missing config exits 1');
like($out, qr{^clusterd: /nonexistent\.conf: No such file or directory\n\z}, 'and says so');

($rc, $out) = run($bin, '--bogus');
is($rc, 1, 'an unknown flag exits 1');
like($out, qr/usage: clusterd/, 'with the usage');
($rc, $out) = run($bin, '-w', 'lots', '-t', '-c', $c->conf);
is($rc, 1, 'bad -w exits 1');
like($out, qr/-w: "lots" is not a number/, 'and says why');
($rc, $out) = run($bin, '-s', 'explode', '-c', $c->conf);
is($rc, 1, 'unknown -s signal exits 1');
($rc, $out) = run($bin, 'extra');
is($rc, 1, 'a stray argument exits 1');
($rc, $out) = run($bin, '-V');
like($out, qr/^clusterd \d+\.\d+\.\d+$/, '-V prints the version');
is($rc, 0, '-V exits 0');
($rc, $out) = run($bin, '-h');
is($rc, 0, '-h exits 0');
like($out, qr/--$_\b/, "--help lists --$_") for qw(config workers listen pid-file test-config signal version help);

# A stale pid file from a dead process is taken over.
{
    my $e = Clusterd->new;
    my $dead = fork // die;
    POSIX::_exit(0) if $dead == 0;
    waitpid($dead, 0);
    open my $p, '>', $e->dir . '/clusterd.pid' or die;
    print $p "$dead\n";
    close $p;
    $e->start;
    open $p, '<', $e->dir . '/clusterd.pid' or die;
    chomp(my $now = <$p>);
    is($now, $e->pid, 'a stale pid file is replaced');
    is($e->stop('QUIT') >> 8, 0, 'and that master stops cleanly');
}

# Overrides: -w and -l replace the file's values.
$c->write_config({});
my $d = Clusterd->new(args => ['-w', '1', '-l', '127.0.0.1:0', '-l', '[::1]:0']);
$d->start;
is(scalar($d->workers), 1, '-w 1 overrides workers');
like($d->log_text, qr/listening on \[::1\]:\d+ \(\[::1\]:0\)/, '-l adds an IPv6 address');
my ($port6) = $d->log_text =~ /listening on \[::1\]:(\d+)/;
SKIP: {
    my $s = IO::Socket::IP->new(PeerHost => '::1', PeerPort => $port6) if eval { require IO::Socket::IP };
    skip 'no IPv6 loopback', 1 unless $s;
    print $s "GET /dummy HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    my $r = Clusterd::read_response($s);
    is($r && $r->[0], 200, 'served over IPv6');
}

# -s through the pid file.
my $pidf = $d->dir . '/clusterd.pid';
ok(poll_until(5, sub { -s $pidf }), 'pid file written');
open my $fh, '<', $pidf or die;
chomp(my $pid = <$fh>);
is($pid, $d->pid, 'pid file holds the master pid');
# A second master on the same pid file refuses to start.
($rc, $out) = run($bin, '-c', $d->conf, '-p', $pidf, '-l', '127.0.0.1:0');
is($rc, 1, 'a second master with the same pid file exits 1');
like($out, qr/already running \(pid $pid\)/, 'and names the running one');
my $from = $d->log_size;
($rc) = run($bin, '-c', $d->conf, '-p', $pidf, '-s', 'reload');
is($rc, 0, '-s reload exits 0');
ok($d->wait_log(qr/ready: generation 2,/, 10, $from), '-s reload reloads');
($rc) = run($bin, '-c', $d->conf, '-p', $pidf, '-s', 'quit');
is($rc, 0, '-s quit exits 0');
my $status = $d->wait_exit(20);
is($status, 0, '-s quit stops the master');
($rc, $out) = run($bin, '-c', $d->conf, '-p', $pidf, '-s', 'reload');
is($rc, 1, '-s with no master running exits 1');
like($out, qr/pid file/, 'and says why');
# A stale pid file naming a live process that is not clusterd (this test):
# -s must see that no master holds the file, and signal nobody.
{
    open my $p, '>', $pidf or die;
    print $p "$$\n";
    close $p;
    local $SIG{HUP} = sub { die "clusterd -s signalled the pid in a stale file\n" };
    ($rc, $out) = run($bin, '-c', $d->conf, '-p', $pidf, '-s', 'reload');
    is($rc, 1, '-s with a stale pid file exits 1');
    like($out, qr/is stale: no clusterd is running with it/, 'and says the file is stale');
}

# readmongo is a module, loaded only when a route names it; when it cannot be
# found the error says where it was looked for.
{
    my $dir = File::Temp::tempdir('clusterd-mod-XXXXXX', TMPDIR => 1, CLEANUP => 1);
    system('cp', $bin, "$dir/clusterd") == 0 or die;
    my $m = Clusterd->new(config => { routes => [ { prefix => '/m', service => 'readmongo',
        uri => 'mongodb://127.0.0.1:1', database => 'd', collections => ['c'] } ] });
    local $ENV{CLUSTERD_MODULE_DIR} = "$dir/none";
    ($rc, $out) = run("$dir/clusterd", '-t', '-c', $m->conf);
    is($rc, 1, 'a readmongo route without its module is an error');
    like($out, qr/routes\[0\]\.service: "readmongo": its module readmongo\.so is not in \$CLUSTERD_MODULE_DIR, beside the program, nor in \S+/,
        '... saying where it looked');
    delete local $ENV{CLUSTERD_MODULE_DIR};
    ($rc, $out) = run($bin, '-t', '-c', $m->conf);
    is($rc, 0, 'found beside the program (a build tree)') or diag $out;
}
done_testing;
